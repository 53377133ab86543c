package network

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/server4"
	"github.com/kilnproject/kiln/initd/netconf"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// testNet is a veth pair between two fresh, unnamed network namespaces:
// "srv0" in the server namespace, "cli0" in the client one. The calling
// goroutine is locked to its thread and left in the client namespace;
// cleanup returns it and closes both (unnamed namespaces vanish with their
// last reference).
type testNet struct {
	orig, srv, cli netns.NsHandle
	srvH           *netlink.Handle
}

func newTestNet(t *testing.T) *testNet {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create network namespaces")
	}
	runtime.LockOSThread()
	tn := &testNet{}
	var err error
	if tn.orig, err = netns.Get(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		netns.Set(tn.orig)
		if tn.srvH != nil {
			tn.srvH.Close()
		}
		tn.srv.Close()
		tn.cli.Close()
		tn.orig.Close()
		runtime.UnlockOSThread()
	})
	if tn.srv, err = netns.New(); err != nil {
		t.Skipf("cannot create a network namespace here: %v", err)
	}
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "srv0"}, PeerName: "cli0"}
	if err := netlink.LinkAdd(veth); err != nil {
		t.Fatalf("veth: %v", err)
	}
	if tn.cli, err = netns.New(); err != nil {
		t.Fatal(err)
	}
	if tn.srvH, err = netlink.NewHandleAt(tn.srv); err != nil {
		t.Fatal(err)
	}
	cli, err := tn.srvH.LinkByName("cli0")
	if err != nil {
		t.Fatal(err)
	}
	if err := tn.srvH.LinkSetNsFd(cli, int(tn.cli)); err != nil {
		t.Fatal(err)
	}
	srv, _ := tn.srvH.LinkByName("srv0")
	addr, _ := netlink.ParseAddr("10.99.0.1/24")
	if err := tn.srvH.AddrAdd(srv, addr); err != nil {
		t.Fatal(err)
	}
	if err := tn.srvH.LinkSetUp(srv); err != nil {
		t.Fatal(err)
	}
	return tn
}

// dhcpServer hands out 10.99.0.50/24 with a short lease and counts renewals.
type dhcpServer struct {
	mu       sync.Mutex
	requests int
}

func (s *dhcpServer) handle(conn net.PacketConn, peer net.Addr, m *dhcpv4.DHCPv4) {
	var typ dhcpv4.MessageType
	switch m.MessageType() {
	case dhcpv4.MessageTypeDiscover:
		typ = dhcpv4.MessageTypeOffer
	case dhcpv4.MessageTypeRequest:
		typ = dhcpv4.MessageTypeAck
		s.mu.Lock()
		s.requests++
		s.mu.Unlock()
	default:
		return
	}
	srvIP := net.IPv4(10, 99, 0, 1).To4()
	resp, err := dhcpv4.NewReplyFromRequest(m,
		dhcpv4.WithMessageType(typ),
		dhcpv4.WithYourIP(net.IPv4(10, 99, 0, 50)),
		dhcpv4.WithServerIP(srvIP),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(srvIP)),
		dhcpv4.WithOption(dhcpv4.OptSubnetMask(net.CIDRMask(24, 32))),
		dhcpv4.WithOption(dhcpv4.OptRouter(srvIP)),
		dhcpv4.WithOption(dhcpv4.OptDNS(net.IPv4(10, 99, 0, 53))),
		dhcpv4.WithOption(dhcpv4.OptNTPServers(net.IPv4(10, 99, 0, 123))),
		dhcpv4.WithOption(dhcpv4.OptDomainName("test.internal")),
		dhcpv4.WithOption(dhcpv4.OptIPAddressLeaseTime(6*time.Second)),
		dhcpv4.WithOption(dhcpv4.OptRenewTimeValue(2*time.Second)),
	)
	if err != nil {
		return
	}
	conn.WriteTo(resp.ToBytes(), &net.UDPAddr{IP: net.IPv4bcast, Port: dhcpv4.ClientPort})
}

func (s *dhcpServer) count() int { s.mu.Lock(); defer s.mu.Unlock(); return s.requests }

func (tn *testNet) serveDHCP(t *testing.T) *dhcpServer {
	ds := &dhcpServer{}
	// The server socket must be made inside the server namespace.
	if err := netns.Set(tn.srv); err != nil {
		t.Fatal(err)
	}
	srv, err := server4.NewServer("srv0", &net.UDPAddr{IP: net.IPv4zero, Port: dhcpv4.ServerPort}, ds.handle)
	if err2 := netns.Set(tn.cli); err2 != nil {
		t.Fatal(err2)
	}
	if err != nil {
		t.Fatalf("dhcp server: %v", err)
	}
	go srv.Serve()
	t.Cleanup(func() { srv.Close() })
	return ds
}

func TestDHCPInNetns(t *testing.T) {
	tn := newTestNet(t)
	ds := tn.serveDHCP(t)
	root := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// No network-config: DHCP on every NIC with carrier.
	n, err := Apply(ctx, nil, Options{Root: root, Log: t.Logf, DHCPTimeout: 8 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Stop()
	if strings.Join(n.Addresses, ",") != "10.99.0.50/24" || strings.Join(n.NTPServers, ",") != "10.99.0.123" {
		t.Errorf("addresses %v ntp %v", n.Addresses, n.NTPServers)
	}
	h, _ := netlink.NewHandle()
	defer h.Close()
	cli, err := h.LinkByName("cli0")
	if err != nil {
		t.Fatal(err)
	}
	addrs, _ := h.AddrList(cli, netlink.FAMILY_V4)
	if len(addrs) != 1 || addrs[0].IPNet.String() != "10.99.0.50/24" || addrs[0].ValidLft <= 0 || addrs[0].ValidLft > 6 {
		t.Errorf("kernel addresses %+v", addrs)
	}
	routes, _ := h.RouteList(cli, netlink.FAMILY_V4)
	var def bool
	for _, r := range routes {
		if (r.Dst == nil || r.Dst.IP.IsUnspecified()) && r.Gw.Equal(net.IPv4(10, 99, 0, 1)) {
			def = true
		}
	}
	if !def {
		t.Errorf("no default route via 10.99.0.1: %+v", routes)
	}
	b, _ := os.ReadFile(filepath.Join(root, "etc/resolv.conf"))
	if !strings.Contains(string(b), "nameserver 10.99.0.53") || !strings.Contains(string(b), "search test.internal") {
		t.Errorf("resolv.conf %q", b)
	}
	// T1 is 2s: wait for a renewal to reach the server and be applied.
	before := ds.count()
	deadline := time.Now().Add(8 * time.Second)
	for n.Renewals() == 0 && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	if n.Renewals() == 0 || ds.count() <= before {
		t.Fatalf("no renewal: client %d, server requests %d -> %d", n.Renewals(), before, ds.count())
	}
	addrs, _ = h.AddrList(cli, netlink.FAMILY_V4)
	if len(addrs) != 1 || addrs[0].ValidLft < 4 {
		t.Errorf("lifetime not refreshed by the renewal: %+v", addrs)
	}
}

func TestStaticConfigInNetns(t *testing.T) {
	tn := newTestNet(t)
	_ = tn
	h, _ := netlink.NewHandle()
	defer h.Close()
	cli, _ := h.LinkByName("cli0")
	cfg, err := netconf.ParseV2([]byte(`version: 2
ethernets:
  uplink:
    match: {macaddress: "` + cli.Attrs().HardwareAddr.String() + `"}
    set-name: wan0
    mtu: 1400
    addresses: [10.99.0.7/24]
    gateway4: 10.99.0.1
    nameservers: {addresses: [10.99.0.53], search: [lab.internal]}
    routes: [{to: 172.16.0.0/12, via: 10.99.0.254, metric: 50}]
`))
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	n, err := Apply(context.Background(), cfg, Options{Root: root, Log: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Stop()
	wan, err := h.LinkByName("wan0")
	if err != nil {
		t.Fatalf("rename: %v", err)
	}
	if wan.Attrs().MTU != 1400 {
		t.Errorf("mtu %d", wan.Attrs().MTU)
	}
	// Read in the client namespace: this thread's /proc/sys/net is its.
	if b, err := os.ReadFile("/proc/sys/net/ipv4/conf/wan0/arp_ignore"); err != nil || strings.TrimSpace(string(b)) != "1" {
		t.Errorf("wan0 arp_ignore = %q (%v), want 1: it would answer ARP for other links' addresses", b, err)
	}
	if strings.Join(n.Addresses, ",") != "10.99.0.7/24" {
		t.Errorf("addresses %v", n.Addresses)
	}
	routes, _ := h.RouteList(wan, netlink.FAMILY_V4)
	var def, static bool
	for _, r := range routes {
		if r.Dst != nil && r.Dst.String() == "172.16.0.0/12" && r.Gw.Equal(net.IPv4(10, 99, 0, 254)) && r.Priority == 50 {
			static = true
		}
		if (r.Dst == nil || r.Dst.IP.IsUnspecified()) && r.Gw.Equal(net.IPv4(10, 99, 0, 1)) {
			def = true
		}
	}
	if !def || !static {
		t.Errorf("routes %+v", routes)
	}
	b, _ := os.ReadFile(filepath.Join(root, "etc/resolv.conf"))
	if !strings.Contains(string(b), "nameserver 10.99.0.53") {
		t.Errorf("resolv.conf %q", b)
	}
	// A link nothing matches is an error naming it.
	bad := &netconf.Config{Links: []netconf.Link{{ID: "ghost", Kind: netconf.Physical, Match: netconf.Match{MAC: "02:00:00:00:00:99"}}}}
	if n2, err := Apply(context.Background(), bad, Options{Root: root}); err == nil || !strings.Contains(err.Error(), "link ghost: no NIC matches") {
		t.Errorf("unmatched: %v", err)
	} else {
		n2.Stop()
	}
}

// kernelHas probes for a link type (8021q, bonding may be missing on the host kernel).
func kernelHas(h *netlink.Handle, l netlink.Link) error {
	if err := h.LinkAdd(l); err != nil {
		return err
	}
	return h.LinkDel(l)
}

func TestVLANInNetns(t *testing.T) {
	newTestNet(t)
	h, _ := netlink.NewHandle()
	defer h.Close()
	cli, _ := h.LinkByName("cli0")
	if err := kernelHas(h, &netlink.Vlan{LinkAttrs: netlink.LinkAttrs{Name: "probe", ParentIndex: cli.Attrs().Index}, VlanId: 9}); err != nil {
		t.Skipf("this kernel cannot create VLAN links (8021q): %v", err)
	}
	cfg, err := netconf.ParseV2([]byte("version: 2\nethernets:\n  cli0: {}\nvlans:\n  cli0.42:\n    id: 42\n    link: cli0\n    addresses: [192.168.42.2/24]\n"))
	if err != nil {
		t.Fatal(err)
	}
	n, err := Apply(context.Background(), cfg, Options{Root: t.TempDir(), Log: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Stop()
	vl, err := h.LinkByName("cli0.42")
	if err != nil || vl.(*netlink.Vlan).VlanId != 42 || vl.Attrs().ParentIndex != cli.Attrs().Index {
		t.Fatalf("vlan: %v %+v", err, vl)
	}
}

func TestBondInNetns(t *testing.T) {
	newTestNet(t)
	h, _ := netlink.NewHandle()
	defer h.Close()
	if err := kernelHas(h, netlink.NewLinkBond(netlink.LinkAttrs{Name: "probe"})); err != nil {
		t.Skipf("this kernel cannot create bond links (bonding): %v", err)
	}
	cfg, err := netconf.ParseV2([]byte("version: 2\nethernets:\n  cli0: {}\nbonds:\n  bond0:\n    interfaces: [cli0]\n    parameters: {mode: active-backup}\n    addresses: [10.99.0.9/24]\n"))
	if err != nil {
		t.Fatal(err)
	}
	n, err := Apply(context.Background(), cfg, Options{Root: t.TempDir(), Log: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Stop()
	b, err := h.LinkByName("bond0")
	if err != nil || b.(*netlink.Bond).Mode != netlink.BOND_MODE_ACTIVE_BACKUP || b.(*netlink.Bond).Miimon != bondMiimon {
		t.Fatalf("bond: %v %+v", err, b)
	}
	cli, _ := h.LinkByName("cli0")
	if cli.Attrs().MasterIndex != b.Attrs().Index {
		t.Errorf("cli0 not enslaved")
	}
}
