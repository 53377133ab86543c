package network

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/kilnproject/kiln/initd/netconf"
	"github.com/vishvananda/netlink"
)

// Apply with no config takes the prefetched lease: the server answered
// one exchange, and the address, route and renewal are Apply's as usual.
func TestDHCPPrefetchTaken(t *testing.T) {
	tn := newTestNet(t)
	ds := tn.serveDHCP(t)
	p := StartDHCP(Options{Log: t.Logf, DHCPTimeout: 8 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := Apply(ctx, nil, Options{Root: t.TempDir(), Log: t.Logf, Prefetch: p})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Stop()
	if strings.Join(n.Addresses, ",") != "10.99.0.50/24" {
		t.Errorf("addresses %v", n.Addresses)
	}
	if got := ds.count(); got != 1 {
		t.Errorf("server saw %d requests, want the prefetch's one", got)
	}
	h, _ := netlink.NewHandle()
	defer h.Close()
	cli, _ := h.LinkByName("cli0")
	if addrs, _ := h.AddrList(cli, netlink.FAMILY_V4); len(addrs) != 1 || addrs[0].IPNet.String() != "10.99.0.50/24" {
		t.Errorf("kernel addresses %+v", addrs)
	}
	p.Cancel() // taken: nothing to release
	if addrs, _ := h.AddrList(cli, netlink.FAMILY_V4); len(addrs) != 1 {
		t.Errorf("Cancel after Apply touched the addresses: %+v", addrs)
	}
	// A second DHCP Apply asks the server itself.
	n2, err := Apply(ctx, nil, Options{Root: t.TempDir(), Log: t.Logf, Prefetch: p})
	if err != nil {
		t.Fatal(err)
	}
	n2.Stop()
	if got := ds.count(); got != 2 {
		t.Errorf("server saw %d requests after a second Apply, want 2", got)
	}
}

// A seed with its own network config cancels the prefetch: the lease it
// obtained is never configured (and is released, best effort).
func TestDHCPPrefetchCancelledByConfig(t *testing.T) {
	tn := newTestNet(t)
	ds := tn.serveDHCP(t)
	p := StartDHCP(Options{Log: t.Logf, DHCPTimeout: 8 * time.Second})
	deadline := time.Now().Add(10 * time.Second)
	for ds.count() == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if ds.count() != 1 {
		t.Fatal("the prefetch never asked the server")
	}
	<-p.done // the answer is in
	h, _ := netlink.NewHandle()
	defer h.Close()
	cli, _ := h.LinkByName("cli0")
	cfg, err := netconf.ParseV2([]byte(`version: 2
ethernets:
  uplink:
    match: {macaddress: "` + cli.Attrs().HardwareAddr.String() + `"}
    addresses: [10.99.0.7/24]
`))
	if err != nil {
		t.Fatal(err)
	}
	n, err := Apply(context.Background(), cfg, Options{Root: t.TempDir(), Log: t.Logf, Prefetch: p})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Stop()
	addrs, _ := h.AddrList(cli, netlink.FAMILY_V4)
	if len(addrs) != 1 || addrs[0].IPNet.String() != "10.99.0.7/24" {
		t.Errorf("kernel addresses %+v, want only the static one", addrs)
	}
}

// With no NIC at all the prefetch says so and Apply asks again (a driver
// may have bound a NIC since), reporting the same error when there is
// still none.
func TestDHCPPrefetchNoNIC(t *testing.T) {
	tn := newTestNet(t)
	h, _ := netlink.NewHandle()
	defer h.Close()
	cli, _ := h.LinkByName("cli0")
	if err := h.LinkDel(cli); err != nil {
		t.Fatal(err)
	}
	_ = tn
	p := StartDHCP(Options{Log: t.Logf})
	if _, err := p.take(context.Background()); err != errNoNIC {
		t.Fatalf("take: %v, want errNoNIC", err)
	}
	p2 := StartDHCP(Options{Log: t.Logf})
	_, err := Apply(context.Background(), nil, Options{Root: t.TempDir(), Log: t.Logf, Prefetch: p2})
	if err == nil || !strings.Contains(err.Error(), "no NIC found") {
		t.Errorf("Apply: %v, want no NIC found", err)
	}
}
