package podnet

import (
	"fmt"
	"net"
	"net/netip"
	"sort"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// RouteProtocol marks the routes the pod network owns (the rtm_protocol of
// each): they are the ones it may replace or delete, and `ip route show
// proto 77` lists them. iproute2 assigns no name to 77.
const RouteProtocol = netlink.RouteProtocol(77)

// Route is one route of the pod network: a node's pod range via its
// address (host gateway), or, with no Via, a range on the link that holds
// Src (the service range on a node with no default route).
type Route struct {
	Dst  netip.Prefix
	Via  netip.Addr
	Src  netip.Addr // on-link routes: the source address, whose link carries the route
	Node string     // whose pods, or what for
}

func (r Route) String() string {
	if !r.Via.IsValid() {
		return fmt.Sprintf("%s from %s (%s)", r.Dst, r.Src, r.Node)
	}
	return fmt.Sprintf("%s via %s (node %s)", r.Dst, r.Via, r.Node)
}

// ServiceRoutes are the routes a node needs to reach Service addresses
// from its own network namespace (the API server's aggregated APIs, a
// kubelet's probes): a packet to a ClusterIP needs some route before
// kube-proxy's DNAT rewrites it, and a node on an air-gapped network may
// have no default route at all. For each service range of a family with no
// default route, one on-link route from the node address; none where a
// default route exists.
func ServiceRoutes(h *netlink.Handle, services []netip.Prefix, nodeIP netip.Addr) ([]Route, error) {
	var out []Route
	for _, svc := range services {
		if svc.Addr().Is4() != nodeIP.Is4() {
			continue
		}
		family := netlink.FAMILY_V4
		if svc.Addr().Is6() {
			family = netlink.FAMILY_V6
		}
		routes, err := h.RouteListFiltered(family, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
		if err != nil {
			return nil, fmt.Errorf("list routes: %w", err)
		}
		hasDefault := false
		for _, r := range routes {
			if r.Protocol != RouteProtocol && (r.Dst == nil || r.Dst.IP.IsUnspecified() && isZeroMask(r.Dst.Mask)) {
				hasDefault = true
			}
		}
		if !hasDefault {
			out = append(out, Route{Dst: svc.Masked(), Src: nodeIP, Node: "services: no default route"})
		}
	}
	return out, nil
}

func isZeroMask(m net.IPMask) bool {
	ones, _ := m.Size()
	return ones == 0
}

// Routes is the host-gateway plan for node self: a route to every other
// node's pod ranges via that node's InternalIP of the same family. Nodes
// with no pod range yet, or no address of the family, get none.
func Routes(self string, nodes []Node) []Route {
	var out []Route
	for _, n := range nodes {
		if n.Name == self {
			continue
		}
		for _, p := range n.PodCIDRs {
			for _, ip := range n.IPs {
				if ip.Is4() == p.Addr().Is4() {
					out = append(out, Route{Dst: p, Via: ip, Node: n.Name})
					break
				}
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Dst.String() < out[j].Dst.String() })
	return out
}

// Changes is what one reconciliation did, for the log.
type Changes struct {
	Added, Removed []string
	Unreachable    []string // routes that need a node on another subnet (host-gw cannot)
}

// Reconcile makes the kernel's routes of RouteProtocol equal want: each
// route whose gateway is on a directly connected network is added or
// replaced (a gateway that is itself reached through a router would need
// an overlay: reported, not routed), and every route of the protocol not
// wanted any more (a node that left, a range that moved) is deleted.
func Reconcile(h *netlink.Handle, want []Route) (Changes, error) {
	var ch Changes
	have, err := h.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Protocol: RouteProtocol, Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_PROTOCOL|netlink.RT_FILTER_TABLE)
	if err != nil {
		return ch, fmt.Errorf("list routes: %w", err)
	}
	keep := map[string]bool{}
	for _, r := range want {
		dst := &net.IPNet{IP: net.IP(r.Dst.Addr().AsSlice()), Mask: net.CIDRMask(r.Dst.Bits(), r.Dst.Addr().BitLen())}
		if !r.Via.IsValid() {
			link, err := linkOf(h, r.Src)
			if err != nil {
				ch.Unreachable = append(ch.Unreachable, fmt.Sprintf("%s: %v", r, err))
				continue
			}
			keep[dst.String()] = true
			nr := netlink.Route{Dst: dst, Src: net.IP(r.Src.AsSlice()), LinkIndex: link, Scope: netlink.SCOPE_LINK, Protocol: RouteProtocol, Table: unix.RT_TABLE_MAIN}
			if !found(have, nr) {
				if err := h.RouteReplace(&nr); err != nil {
					return ch, fmt.Errorf("route %s: %w", r, err)
				}
				ch.Added = append(ch.Added, r.String())
			}
			continue
		}
		gw := net.IP(r.Via.AsSlice())
		via, err := h.RouteGet(gw)
		if err != nil || len(via) == 0 {
			ch.Unreachable = append(ch.Unreachable, fmt.Sprintf("%s: no route to %s", r, r.Via))
			continue
		}
		if via[0].Gw != nil {
			ch.Unreachable = append(ch.Unreachable, fmt.Sprintf("%s: %s is behind the router %s, not on a shared network", r, r.Via, via[0].Gw))
			continue
		}
		keep[dst.String()] = true
		nr := netlink.Route{Dst: dst, Gw: gw, LinkIndex: via[0].LinkIndex, Protocol: RouteProtocol, Table: unix.RT_TABLE_MAIN}
		if found(have, nr) {
			continue
		}
		if err := h.RouteReplace(&nr); err != nil {
			return ch, fmt.Errorf("route %s: %w", r, err)
		}
		ch.Added = append(ch.Added, r.String())
	}
	for _, r := range have {
		if r.Dst == nil || keep[r.Dst.String()] {
			continue
		}
		if err := h.RouteDel(&r); err != nil {
			return ch, fmt.Errorf("delete route %s: %w", r.Dst, err)
		}
		ch.Removed = append(ch.Removed, fmt.Sprintf("%s via %s", r.Dst, r.Gw))
	}
	return ch, nil
}

// linkOf is the index of the link that holds address a.
func linkOf(h *netlink.Handle, a netip.Addr) (int, error) {
	addrs, err := h.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return 0, err
	}
	for _, ad := range addrs {
		if ip, ok := netip.AddrFromSlice(ad.IP); ok && ip.Unmap() == a {
			return ad.LinkIndex, nil
		}
	}
	return 0, fmt.Errorf("no link has the address %s", a)
}

func found(have []netlink.Route, r netlink.Route) bool {
	for _, h := range have {
		if h.Dst != nil && h.Dst.String() == r.Dst.String() && h.Gw.Equal(r.Gw) && h.LinkIndex == r.LinkIndex {
			return true
		}
	}
	return false
}
