package network

import (
	"context"
	"fmt"
	"strings"
	"sync"
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

// With no NIC there is nothing to prefetch: StartDHCP says so with nil,
// and Apply with it does what it does without one.
func TestDHCPPrefetchNoNIC(t *testing.T) {
	newTestNet(t)
	h, _ := netlink.NewHandle()
	defer h.Close()
	cli, _ := h.LinkByName("cli0")
	if err := h.LinkDel(cli); err != nil {
		t.Fatal(err)
	}
	p := StartDHCP(Options{Log: t.Logf})
	if p != nil {
		t.Fatal("StartDHCP without a NIC returned a prefetch")
	}
	p.Cancel() // nil-safe
	_, err := Apply(context.Background(), nil, Options{Root: t.TempDir(), Log: t.Logf, Prefetch: p})
	if err == nil || !strings.Contains(err.Error(), "no NIC found") {
		t.Errorf("Apply: %v, want no NIC found", err)
	}
}

// A NIC that appears after the prefetch started gets DHCP from Apply.
func TestDHCPPrefetchLateNIC(t *testing.T) {
	tn := newTestNet(t)
	tn.serveDHCP(t)
	p := StartDHCP(Options{Log: t.Logf, DHCPTimeout: 2 * time.Second})
	h, _ := netlink.NewHandle()
	defer h.Close()
	// Both ends in the client namespace: a NIC with carrier and no server.
	if err := h.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "late0"}, PeerName: "late1"}); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var logged []string
	logf := func(f string, a ...any) { mu.Lock(); logged = append(logged, fmt.Sprintf(f, a...)); mu.Unlock() }
	n, err := Apply(context.Background(), nil, Options{Root: t.TempDir(), Log: logf, Prefetch: p, DHCPTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Stop()
	if strings.Join(n.Addresses, ",") != "10.99.0.50/24" {
		t.Errorf("addresses %v", n.Addresses)
	}
	mu.Lock()
	defer mu.Unlock()
	all := strings.Join(logged, "\n")
	if !strings.Contains(all, "dhcp late0") || !strings.Contains(all, "dhcp late1") {
		t.Errorf("the late NICs were not tried:\n%s", all)
	}
}
