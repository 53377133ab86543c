package qemu_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/kilnproject/kiln/qemu"
)

// These tests boot the minimal ISO on a qemu.Switch with a NoCloud
// network-config v2 that needs virtual links (a VLAN, a bond), and check
// from the test's own switch port, with hand-built frames, that the guest
// answers on exactly the link the config put the address on.

// TestVLAN: the address lives on vlan42 over eth0. Tagged (VID 42) ARP and
// ICMP echo get tagged replies; untagged ARP for it gets none.
func TestVLAN(t *testing.T) {
	sw := newSwitch(t)
	mac := qemu.MACFor("vlan-vm")
	ip := netip.MustParseAddr("192.168.42.10")
	netCfg := fmt.Sprintf(`version: 2
ethernets:
  eth0:
    match: {macaddress: %q}
vlans:
  vlan42:
    id: 42
    link: eth0
    addresses: [%s/24]
`, mac, ip)
	vm, line := bootOnSwitch(t, sw, "vlan-vm", netCfg, nicSpec{"vm", mac})
	wantReady(t, line, "vlan-vm", ip.String()+"/24")

	tagged := &station{t: t, sw: sw, ip: netip.MustParseAddr("192.168.42.100"), mac: qemu.MACFor("test-host-vlan"), vid: 42}
	got, from, ok := tagged.arp(ip, 30*time.Second)
	if !ok {
		saveLog(t, vm.Log())
		t.Fatalf("no 802.1Q (VID 42) ARP reply for %s in 30s", ip)
	}
	if !bytes.Equal(got, mac) || from != "vm" {
		t.Fatalf("tagged ARP for %s: answered by %s on port %s, want %s on port vm", ip, got, from, mac)
	}
	t.Logf("VID 42: ARP %s is at %s", ip, got)
	rtt := tagged.ping(ip, mac, "vm")
	t.Logf("VID 42: ICMP echo reply from %s in %s", ip, rtt.Round(time.Millisecond))

	untagged := &station{t: t, sw: sw, ip: netip.MustParseAddr("192.168.42.101"), mac: qemu.MACFor("test-host-untagged")}
	if got, from, ok := untagged.arp(ip, 4*time.Second); ok {
		t.Errorf("untagged ARP for %s was answered by %s on port %s: the VLAN's address leaks onto the untagged network", ip, got, from)
	}
	if t.Failed() {
		saveLog(t, vm.Log())
	}
}

// TestBond: two NICs in an active-backup bond0 that carries the address.
// ARP and ICMP echo are answered with the bond's MAC (the first member's);
// when the active NIC loses its link the bond fails over and the same MAC
// answers from the other NIC's switch port.
func TestBond(t *testing.T) {
	sw := newSwitch(t)
	mac0, mac1 := qemu.MACFor("bond-vm-0"), qemu.MACFor("bond-vm-1")
	ip := netip.MustParseAddr("192.168.43.10")
	netCfg := fmt.Sprintf(`version: 2
ethernets:
  eth0:
    match: {macaddress: %q}
  eth1:
    match: {macaddress: %q}
bonds:
  bond0:
    interfaces: [eth0, eth1]
    parameters: {mode: active-backup}
    addresses: [%s/24]
`, mac0, mac1, ip)
	vm, line := bootOnSwitch(t, sw, "bond-vm", netCfg, nicSpec{"nic0", mac0}, nicSpec{"nic1", mac1})
	wantReady(t, line, "bond-vm", ip.String()+"/24")
	t.Cleanup(func() {
		if t.Failed() {
			saveLog(t, vm.Log())
		}
	})

	st := &station{t: t, sw: sw, ip: netip.MustParseAddr("192.168.43.100"), mac: qemu.MACFor("test-host-bond")}
	got, from, ok := st.arp(ip, 30*time.Second)
	if !ok {
		t.Fatalf("no ARP reply for %s in 30s", ip)
	}
	if !bytes.Equal(got, mac0) || from != "nic0" {
		t.Fatalf("ARP for %s: answered by %s on port %s, want the bond's MAC %s from the active member on port nic0", ip, got, from, mac0)
	}
	t.Logf("ARP: %s is at %s (port %s)", ip, got, from)
	rtt := st.ping(ip, mac0, "nic0")
	t.Logf("ICMP: echo reply from %s in %s via nic0", ip, rtt.Round(time.Millisecond))

	// Pull nic0's cable: only a bond moves the address to nic1.
	if _, err := vm.QMP("set_link", map[string]any{"name": "net0", "up": false}); err != nil {
		t.Fatalf("QMP set_link net0 off: %v", err)
	}
	rtt = st.ping(ip, mac0, "nic1")
	t.Logf("failover: echo reply from %s with %s via nic1 in %s", ip, mac0, rtt.Round(time.Millisecond))
}

func newSwitch(t *testing.T) *qemu.Switch {
	t.Helper()
	sw, err := qemu.NewSwitch()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sw.Close() })
	return sw
}

// nicSpec is one NIC of a VM on the switch: its switch port name and MAC.
type nicSpec struct {
	port string
	mac  net.HardwareAddr
}

// addSwitchNIC gives m a further NIC (netN, in PCI order after net0) on
// a port of sw: Machine itself has one NIC.
func addSwitchNIC(t *testing.T, m *qemu.Machine, sw *qemu.Switch, port string, n int, mac net.HardwareAddr) {
	t.Helper()
	spec, err := sw.NetFor(port)
	if err != nil {
		t.Fatal(err)
	}
	var swPort, vmPort int
	if _, err := fmt.Sscanf(spec, "switch:%d:%d", &swPort, &vmPort); err != nil {
		t.Fatalf("switch spec %q: %v", spec, err)
	}
	m.ExtraArgs = append(m.ExtraArgs,
		"-netdev", fmt.Sprintf("dgram,id=net%d,remote.type=inet,remote.host=127.0.0.1,remote.port=%d,local.type=inet,local.host=127.0.0.1,local.port=%d", n, swPort, vmPort),
		"-device", fmt.Sprintf("%s,netdev=net%d,mac=%s", m.Arch.QEMU.NIC, n, mac))
}

// bootOnSwitch boots the minimal amd64 ISO with every NIC on sw and a
// NoCloud seed (hostname name, the given network-config v2) made by the
// real `kiln seed`, and waits for the ready line.
func bootOnSwitch(t *testing.T, sw *qemu.Switch, name, networkConfig string, nics ...nicSpec) (*qemu.VM, string) {
	t.Helper()
	dir := seedFiles(t, map[string]string{
		"user-data":      "#cloud-config\nhostname: " + name + "\n",
		"meta-data":      "instance-id: " + name + "\n",
		"network-config": networkConfig,
	})
	seed := kilnSeed(t, "--kind", "nocloud", dir)
	m := &qemu.Machine{Arch: mustArch(t, "amd64"), MemoryMiB: 512, CPUs: 1,
		Drives: []qemu.Drive{
			{Path: image("amd64", "iso"), Media: "cdrom", Snapshot: true},
			{Path: seed, Media: "cdrom"},
		}}
	for i, n := range nics {
		if i == 0 {
			spec, err := sw.NetFor(n.port)
			if err != nil {
				t.Fatal(err)
			}
			m.Net, m.MAC = spec, n.mac.String()
			continue
		}
		addSwitchNIC(t, m, sw, n.port, i, n.mac)
	}
	vm, err := m.Start(context.Background())
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(vm.Kill)
	line, err := vm.WaitFor(context.Background(), readyRe, bootTimeout("amd64"))
	if err != nil {
		saveLog(t, vm.Log())
		t.Fatal(err)
	}
	t.Logf("%q after %.1fs wall clock", strings.TrimSpace(line), vm.Elapsed().Seconds())
	return vm, line
}
