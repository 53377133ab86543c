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

// Route is one host-gateway route: a node's pod range via its address.
type Route struct {
	Dst  netip.Prefix
	Via  netip.Addr
	Node string
}

func (r Route) String() string { return fmt.Sprintf("%s via %s (node %s)", r.Dst, r.Via, r.Node) }

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
		dst := &net.IPNet{IP: net.IP(r.Dst.Addr().AsSlice()), Mask: net.CIDRMask(r.Dst.Bits(), r.Dst.Addr().BitLen())}
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

func found(have []netlink.Route, r netlink.Route) bool {
	for _, h := range have {
		if h.Dst != nil && h.Dst.String() == r.Dst.String() && h.Gw.Equal(r.Gw) && h.LinkIndex == r.LinkIndex {
			return true
		}
	}
	return false
}
