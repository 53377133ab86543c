// Package network applies a netconf.Config with netlink: loopback, NIC
// matching and renaming, MTU, bonds, VLANs, static addresses and routes,
// DHCPv4 with renewal, resolv.conf and hosts, and an SNTP clock step.
package network

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/kilnproject/kiln/initd/netconf"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Options for Apply.
type Options struct {
	Root        string // where /etc/resolv.conf goes ("/" on a node)
	Log         func(format string, args ...any)
	DHCPTimeout time.Duration // per DHCP exchange, default 10s
	// CarrierWait bounds the wait for link carrier when no config is given (default 5s).
	CarrierWait time.Duration
	// LoadModule loads a kernel module (bonding, 8021q) before a link that
	// needs it is created; nil loads from /lib/modules of the running kernel.
	LoadModule func(name string) error
	// Prefetch, from StartDHCP, is DHCP begun before the config was known:
	// Apply with no config takes its leases instead of asking again; with
	// a config it is cancelled.
	Prefetch *Prefetch
}

func (o *Options) defaults() {
	if o.DHCPTimeout == 0 {
		o.DHCPTimeout = 10 * time.Second
	}
	if o.CarrierWait == 0 {
		o.CarrierWait = 5 * time.Second
	}
}

// Network is the applied state; Stop ends the DHCP renewal goroutines.
type Network struct {
	h        *netlink.Handle
	log      func(string, ...any)
	loadMod  func(string) error
	mu       sync.Mutex
	renewals int
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	closed   sync.Once

	Addresses   []string // CIDRs configured on non-loopback links
	Nameservers []string
	Search      []string
	NTPServers  []string // from DHCP option 42
	Leases      []*Lease
}

// Renewals counts successful DHCP renewals (for tests and status).
func (n *Network) Renewals() int { n.mu.Lock(); defer n.mu.Unlock(); return n.renewals }

// Stop ends lease renewal.
func (n *Network) Stop() {
	if n.cancel != nil {
		n.cancel()
	}
	n.wg.Wait()
	n.closed.Do(n.h.Close)
}

// Apply configures the network namespace of the calling OS thread (lock it
// when that matters). cfg nil means: DHCP on every NIC with carrier, the
// first lease providing the default route. It returns the state even with
// an error, so the caller can report what did come up.
func Apply(ctx context.Context, cfg *netconf.Config, o Options) (*Network, error) {
	// Route netlink only: the default handle also opens XFRM and netfilter
	// sockets, which fail on a kernel without those modules loaded.
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("netlink: %w", err)
	}
	rctx, cancel := context.WithCancel(context.Background())
	n := &Network{h: h, log: o.Log, cancel: cancel, loadMod: o.LoadModule}
	if n.log == nil {
		n.log = func(string, ...any) {}
	}
	if n.loadMod == nil {
		n.loadMod = (&kernelModules{}).load
	}
	o.defaults()
	if lo, err := h.LinkByName("lo"); err == nil {
		if err := h.LinkSetUp(lo); err != nil {
			return n, fmt.Errorf("lo up: %w", err)
		}
	}
	switch {
	case cfg == nil && o.Prefetch != nil:
		err = n.adopt(ctx, rctx, o)
	case cfg == nil:
		err = n.dhcpAll(ctx, rctx, o)
	default:
		o.Prefetch.Cancel()
		err = n.apply(ctx, rctx, cfg, o)
	}
	n.Nameservers, n.Search = dedup(n.Nameservers), dedup(n.Search)
	if len(n.Nameservers) > 0 || len(n.Search) > 0 {
		if werr := WriteResolvConf(o.Root, n.Nameservers, n.Search); werr != nil {
			err = errors.Join(err, werr)
		}
	}
	return n, err
}

// physicalLinks lists NICs: devices with a MAC that are not virtual ones we made.
func (n *Network) physicalLinks() ([]netlink.Link, error) {
	all, err := n.h.LinkList()
	if err != nil {
		return nil, err
	}
	var out []netlink.Link
	for _, l := range all {
		a := l.Attrs()
		if a.Name == "lo" || len(a.HardwareAddr) != 6 {
			continue
		}
		switch l.Type() {
		case "device", "veth":
			out = append(out, l)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Attrs().Index < out[j].Attrs().Index })
	return out, nil
}

// dhcpAll brings every NIC up, waits briefly for carrier and runs DHCP on
// those that have it, in parallel; the first lease gets the default route
// with the lowest metric.
func (n *Network) dhcpAll(ctx, rctx context.Context, o Options) error {
	links, err := n.upLinks()
	if err != nil {
		return err
	}
	up := n.waitCarrier(ctx, links, o.CarrierWait)
	if len(up) == 0 {
		return fmt.Errorf("network: no NIC has carrier after %v", o.CarrierWait)
	}
	return n.dhcp(ctx, rctx, up, o, 0)
}

// upLinks brings every NIC up and returns them.
func (n *Network) upLinks() ([]netlink.Link, error) {
	links, err := n.physicalLinks()
	if err != nil {
		return nil, err
	}
	if len(links) == 0 {
		return nil, errors.New("network: no NIC found")
	}
	for _, l := range links {
		if err := n.h.LinkSetUp(l); err != nil {
			n.log("network: %s up: %v", l.Attrs().Name, err)
		}
	}
	return links, nil
}

// waitCarrier returns the links that have carrier, waiting up to wait for
// all of them.
func (n *Network) waitCarrier(ctx context.Context, links []netlink.Link, wait time.Duration) []netlink.Link {
	var up []netlink.Link
	deadline := time.Now().Add(wait)
	for {
		up = up[:0]
		for _, l := range links {
			if fresh, err := n.h.LinkByIndex(l.Attrs().Index); err == nil && hasCarrier(fresh.Attrs()) {
				up = append(up, fresh)
			}
		}
		if len(up) == len(links) || time.Now().After(deadline) || ctx.Err() != nil {
			return up
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// hasCarrier reports whether an up link has carrier. IFF_LOWER_UP is the
// driver's carrier as it is now; the operational state follows it through
// the kernel's link watch, which handles a NIC's events at most once a
// second: a NIC probed less than a second before it is brought up stays
// "down" for the rest of that second, with its carrier on.
func hasCarrier(a *netlink.LinkAttrs) bool {
	return a.OperState == netlink.OperUp || a.RawFlags&unix.IFF_LOWER_UP != 0
}

// dhcp runs DHCP on links in parallel; sockets are opened here, on the
// caller's thread and so in its network namespace.
func (n *Network) dhcp(ctx, rctx context.Context, links []netlink.Link, o Options, baseMetric int) error {
	type result struct {
		c     *dhcpClient
		lease *Lease
		err   error
	}
	var clients []*dhcpClient
	var errs []error
	for i, l := range links {
		c, err := n.newDHCPClient(l, o.DHCPTimeout, baseMetric+100+i)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		clients = append(clients, c)
	}
	dctx, cancel := context.WithTimeout(ctx, o.DHCPTimeout)
	defer cancel()
	results := make(chan result, len(clients))
	var mu sync.Mutex
	routed := false
	for _, c := range clients {
		go func(c *dhcpClient) {
			l, err := c.client.Request(dctx, dhcpOptions)
			if err != nil {
				results <- result{c, nil, fmt.Errorf("dhcp %s: %w", c.link.Attrs().Name, err)}
				return
			}
			c.lease = l
			lease := leaseFrom(c.link.Attrs().Name, l)
			mu.Lock()
			first := !routed
			routed = true
			mu.Unlock()
			if first {
				c.metric = baseMetric + 100 // first answer wins the default route
			}
			results <- result{c, lease, n.applyLease(c.link, lease, c.metric, true)}
		}(c)
	}
	got := 0
	for range clients {
		r := <-results
		if r.err != nil {
			errs = append(errs, r.err)
			r.c.client.Close()
			continue
		}
		got++
		n.keep(rctx, r.c, r.lease)
	}
	if got == 0 {
		return errors.Join(errs...)
	}
	for _, e := range errs {
		n.log("network: %v", e)
	}
	return nil
}

// keep records an applied lease and renews it from now on.
func (n *Network) keep(rctx context.Context, c *dhcpClient, lease *Lease) {
	n.Leases = append(n.Leases, lease)
	n.Addresses = append(n.Addresses, lease.Address.String())
	n.Nameservers = append(n.Nameservers, lease.DNS...)
	n.Search = append(n.Search, lease.Search...)
	n.NTPServers = append(n.NTPServers, lease.NTP...)
	n.log("network: dhcp %s: %s via %v, lease %v", lease.Link, lease.Address.String(), lease.Router, lease.LeaseTime)
	n.wg.Add(1)
	go c.renewLoop(rctx, lease, true, &n.wg)
}

// apply configures links in dependency order: physical, bonds, VLANs.
func (n *Network) apply(ctx, rctx context.Context, cfg *netconf.Config, o Options) error {
	nics, err := n.physicalLinks()
	if err != nil {
		return err
	}
	made := map[string]netlink.Link{} // config link ID -> kernel link
	claimed := map[int]bool{}
	var errs []error
	for _, kind := range []string{netconf.Physical, netconf.Bond, netconf.VLAN} {
		for i := range cfg.Links {
			cl := &cfg.Links[i]
			if cl.Kind != kind {
				continue
			}
			l, err := n.setupLink(cl, nics, claimed, made, cfg)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			made[cl.ID] = l
		}
	}
	var dhcpLinks []netlink.Link
	for i := range cfg.Links {
		cl := &cfg.Links[i]
		l, ok := made[cl.ID]
		if !ok {
			continue
		}
		// One link's addresses are not answered for on another (ARP flux):
		// a VLAN's address must not be announced on the untagged network.
		if err := setARPIgnore(l.Attrs().Name); err != nil {
			n.log("network: link %s: %v", cl.ID, err)
		}
		if err := n.configureL3(cl, l); err != nil {
			errs = append(errs, err)
		}
		if cl.DHCP4 {
			dhcpLinks = append(dhcpLinks, l)
		}
		n.Nameservers = append(n.Nameservers, cl.Nameservers...)
		n.Search = append(n.Search, cl.Search...)
	}
	n.Nameservers = append(n.Nameservers, cfg.Nameservers...)
	n.Search = append(n.Search, cfg.Search...)
	for _, r := range cfg.Routes {
		if err := n.addRoute(nil, r); err != nil {
			errs = append(errs, err)
		}
	}
	if len(dhcpLinks) > 0 {
		if err := n.dhcp(ctx, rctx, dhcpLinks, o, 0); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (n *Network) setupLink(cl *netconf.Link, nics []netlink.Link, claimed map[int]bool, made map[string]netlink.Link, cfg *netconf.Config) (netlink.Link, error) {
	var l netlink.Link
	switch cl.Kind {
	case netconf.Physical:
		for _, nic := range nics {
			a := nic.Attrs()
			if claimed[a.Index] {
				continue
			}
			if cl.Match.MAC != "" && !strings.EqualFold(a.HardwareAddr.String(), cl.Match.MAC) {
				continue
			}
			if cl.Match.Name != "" {
				if ok, _ := path.Match(cl.Match.Name, a.Name); !ok {
					continue
				}
			}
			l = nic
			break
		}
		if l == nil {
			return nil, fmt.Errorf("network: link %s: no NIC matches (mac %q, name %q)", cl.ID, cl.Match.MAC, cl.Match.Name)
		}
		claimed[l.Attrs().Index] = true
		if cl.Name != "" && cl.Name != l.Attrs().Name {
			n.h.LinkSetDown(l)
			if err := n.h.LinkSetName(l, cl.Name); err != nil {
				return nil, fmt.Errorf("network: link %s: rename %s to %s: %w", cl.ID, l.Attrs().Name, cl.Name, err)
			}
		}
	case netconf.Bond:
		if err := n.loadMod(bondModule); err != nil {
			// Built into some kernels: say why if the link add fails.
			n.log("network: bond %s: %v", cl.Name, err)
		}
		b := netlink.NewLinkBond(netlink.LinkAttrs{Name: cl.Name})
		if cl.BondMode != "" {
			b.Mode = netlink.StringToBondMode(cl.BondMode)
		}
		// The kernel's default is no link monitoring at all: a bond would
		// never fail over. 100 ms is what the bonding documentation and
		// most network managers use (the config's own interval is not
		// parsed yet).
		b.Miimon = bondMiimon
		err := n.h.LinkAdd(b)
		if errors.Is(err, unix.EEXIST) && n.replaceIdleBond(cl.Name) {
			err = n.h.LinkAdd(b)
		}
		if err != nil {
			return nil, fmt.Errorf("network: bond %s: %w", cl.Name, err)
		}
		bl, err := n.h.LinkByName(cl.Name)
		if err != nil {
			return nil, fmt.Errorf("network: bond %s: %w", cl.Name, err)
		}
		for _, m := range cl.BondMembers {
			ml, ok := made[m]
			if !ok {
				return nil, fmt.Errorf("network: bond %s: member %s was not set up", cl.Name, m)
			}
			n.h.LinkSetDown(ml)
			if err := n.h.LinkSetMasterByIndex(ml, bl.Attrs().Index); err != nil {
				return nil, fmt.Errorf("network: bond %s: enslave %s: %w", cl.Name, ml.Attrs().Name, err)
			}
			n.h.LinkSetUp(ml)
		}
		l = bl
	case netconf.VLAN:
		parent, ok := made[cl.VLANLink]
		if !ok {
			return nil, fmt.Errorf("network: vlan %s: link %s was not set up", cl.Name, cl.VLANLink)
		}
		if err := n.loadMod(vlanModule); err != nil {
			n.log("network: vlan %s: %v", cl.Name, err)
		}
		v := &netlink.Vlan{LinkAttrs: netlink.LinkAttrs{Name: cl.Name, ParentIndex: parent.Attrs().Index}, VlanId: cl.VLANID}
		if err := n.h.LinkAdd(v); err != nil {
			return nil, fmt.Errorf("network: vlan %s: %w", cl.Name, err)
		}
		var err error
		if l, err = n.h.LinkByName(cl.Name); err != nil {
			return nil, fmt.Errorf("network: vlan %s: %w", cl.Name, err)
		}
	}
	if cl.MTU > 0 {
		if err := n.h.LinkSetMTU(l, cl.MTU); err != nil {
			return nil, fmt.Errorf("network: link %s: mtu %d: %w", cl.ID, cl.MTU, err)
		}
	}
	if err := n.h.LinkSetUp(l); err != nil {
		return nil, fmt.Errorf("network: link %s: up: %w", cl.ID, err)
	}
	return n.h.LinkByIndex(l.Attrs().Index)
}

func (n *Network) configureL3(cl *netconf.Link, l netlink.Link) error {
	for _, p := range cl.Addresses {
		ipn := &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
		if err := n.h.AddrReplace(l, &netlink.Addr{IPNet: ipn}); err != nil {
			return fmt.Errorf("network: link %s: address %s: %w", cl.ID, p, err)
		}
		n.Addresses = append(n.Addresses, p.String())
	}
	for _, gw := range []struct {
		ip   net.IP
		bits int
	}{{cl.Gateway4.AsSlice(), 32}, {cl.Gateway6.AsSlice(), 128}} {
		if gw.ip == nil {
			continue
		}
		r := &netlink.Route{LinkIndex: l.Attrs().Index, Gw: gw.ip, Dst: &net.IPNet{IP: make(net.IP, gw.bits/8), Mask: net.CIDRMask(0, gw.bits)}}
		if err := n.h.RouteReplace(r); err != nil {
			return fmt.Errorf("network: link %s: default route via %s: %w", cl.ID, gw.ip, err)
		}
	}
	for _, r := range cl.Routes {
		if err := n.addRoute(l, r); err != nil {
			return fmt.Errorf("network: link %s: %w", cl.ID, err)
		}
	}
	return nil
}

func (n *Network) addRoute(l netlink.Link, r netconf.Route) error {
	rt := &netlink.Route{
		Dst:      &net.IPNet{IP: r.To.Addr().AsSlice(), Mask: net.CIDRMask(r.To.Bits(), r.To.Addr().BitLen())},
		Priority: r.Metric,
	}
	if l != nil {
		rt.LinkIndex = l.Attrs().Index
	}
	if r.Via.IsValid() {
		rt.Gw = r.Via.AsSlice()
	}
	if err := n.h.RouteReplace(rt); err != nil {
		return fmt.Errorf("route %s via %v: %w", r.To, r.Via, err)
	}
	return nil
}

// bondMiimon is the MII link check interval of bonds, in milliseconds.
const bondMiimon = 100

// replaceIdleBond deletes the bond called name if nothing is enslaved to
// it, and reports whether it did. Loading the bonding module creates an
// empty "bond0" by itself (its max_bonds parameter defaults to 1), which
// would otherwise make a configured bond0 fail with "file exists".
func (n *Network) replaceIdleBond(name string) bool {
	old, err := n.h.LinkByName(name)
	if err != nil || old.Type() != "bond" {
		return false
	}
	all, err := n.h.LinkList()
	if err != nil {
		return false
	}
	for _, l := range all {
		if l.Attrs().MasterIndex == old.Attrs().Index {
			return false // someone's bond in use: leave it alone
		}
	}
	return n.h.LinkDel(old) == nil
}

// setARPIgnore makes link answer ARP only for addresses configured on link
// itself (arp_ignore=1) instead of for any address of the host.
func setARPIgnore(link string) error {
	if err := os.WriteFile("/proc/sys/net/ipv4/conf/"+link+"/arp_ignore", []byte("1\n"), 0o644); err != nil {
		return fmt.Errorf("arp_ignore: %w", err)
	}
	return nil
}

// Release stops renewal and removes the DHCP addresses and their default
// routes: used when a seed's network-config replaces the temporary DHCP
// that was brought up to reach a metadata service.
func (n *Network) Release() {
	if n.cancel != nil {
		n.cancel()
	}
	n.wg.Wait()
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, l := range n.Leases {
		link, err := n.h.LinkByName(l.Link)
		if err != nil {
			continue
		}
		a := l.Address
		n.h.AddrDel(link, &netlink.Addr{IPNet: &a}) // the kernel drops routes through it too
	}
	n.closed.Do(n.h.Close)
}
