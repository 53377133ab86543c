package qemu_test

import (
	"bytes"
	"context"
	"encoding/binary"
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

const etherVLAN = 0x8100 // IEEE 802.1Q tag protocol identifier

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
		spec, err := sw.NetFor(n.port)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			m.Net, m.MAC = spec, n.mac.String()
			continue
		}
		// Machine has one NIC; further ones are the same dgram netdev on
		// the command line (netN, in PCI order after net0).
		var swPort, vmPort int
		if _, err := fmt.Sscanf(spec, "switch:%d:%d", &swPort, &vmPort); err != nil {
			t.Fatalf("switch spec %q: %v", spec, err)
		}
		m.ExtraArgs = append(m.ExtraArgs,
			"-netdev", fmt.Sprintf("dgram,id=net%d,remote.type=inet,remote.host=127.0.0.1,remote.port=%d,local.type=inet,local.host=127.0.0.1,local.port=%d", i, swPort, vmPort),
			"-device", fmt.Sprintf("%s,netdev=net%d,mac=%s", m.Arch.QEMU.NIC, i, n.mac))
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

// station is a host on the switch's host port, optionally on a VLAN (vid >
// 0: every frame it sends carries an 802.1Q tag, and it only listens to
// frames with that tag). While waiting it answers ARP requests for its own
// address on its VLAN, so the guest can always reach it.
type station struct {
	t   *testing.T
	sw  *qemu.Switch
	ip  netip.Addr
	mac net.HardwareAddr
	vid int
}

// frame builds an Ethernet frame from the station, tagged when vid > 0.
func (s *station) frame(dst net.HardwareAddr, etherType uint16, payload []byte) []byte {
	if s.vid == 0 {
		return ethernet(dst, s.mac, etherType, payload)
	}
	tag := make([]byte, 4)
	binary.BigEndian.PutUint16(tag[0:2], uint16(s.vid)&0x0fff) // PCP 0, DEI 0
	binary.BigEndian.PutUint16(tag[2:4], etherType)
	return ethernet(dst, s.mac, etherVLAN, append(tag, payload...))
}

// l2 is a received frame split into its addresses, VLAN and payload.
type l2 struct {
	dst, src  net.HardwareAddr
	vid       int // 0 = untagged
	etherType uint16
	payload   []byte
	from      string // switch port
}

func parseFrame(f qemu.Frame) (l2, bool) {
	d := f.Data
	if len(d) < 14 {
		return l2{}, false
	}
	p := l2{dst: d[0:6], src: d[6:12], etherType: binary.BigEndian.Uint16(d[12:14]), payload: d[14:], from: f.From}
	if p.etherType == etherVLAN {
		if len(d) < 18 {
			return l2{}, false
		}
		p.vid = int(binary.BigEndian.Uint16(d[14:16]) & 0x0fff)
		p.etherType = binary.BigEndian.Uint16(d[16:18])
		p.payload = d[18:]
	}
	return p, true
}

// next returns the next frame on the station's VLAN (answering ARP for
// the station on the way); ok is false when nothing came before deadline.
func (s *station) next(deadline <-chan time.Time) (l2, bool) {
	for {
		select {
		case f, open := <-s.sw.Frames():
			if !open {
				s.t.Fatal("switch closed")
			}
			p, ok := parseFrame(f)
			if !ok || p.vid != s.vid {
				continue
			}
			a := p.payload
			if p.etherType == etherARP && len(a) >= 28 && binary.BigEndian.Uint16(a[6:8]) == 1 {
				if tpa, _ := netip.AddrFromSlice(a[24:28]); tpa == s.ip {
					spa, _ := netip.AddrFromSlice(a[14:18])
					sha := net.HardwareAddr(append([]byte(nil), a[8:14]...))
					s.sw.Inject(s.frame(sha, etherARP, arpPacket(2, s.mac, s.ip, sha, spa)))
				}
			}
			return p, true
		case <-deadline:
			return l2{}, false
		}
	}
}

// arp asks who has ip (broadcast, resent each second) and returns the MAC in
// the first reply on the station's VLAN and the port it came from; ok is
// false when none came within.
func (s *station) arp(ip netip.Addr, within time.Duration) (net.HardwareAddr, string, bool) {
	s.t.Helper()
	req := s.frame(net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, etherARP,
		arpPacket(1, s.mac, s.ip, make(net.HardwareAddr, 6), ip))
	giveUp := time.After(within)
	for {
		if err := s.sw.Inject(req); err != nil {
			s.t.Fatal(err)
		}
		resend := time.After(time.Second)
	wait:
		for {
			select {
			case <-giveUp:
				return nil, "", false
			default:
			}
			p, ok := s.next(resend)
			if !ok {
				break wait
			}
			a := p.payload
			if p.etherType != etherARP || len(a) < 28 || binary.BigEndian.Uint16(a[6:8]) != 2 {
				continue
			}
			spa, _ := netip.AddrFromSlice(a[14:18])
			tpa, _ := netip.AddrFromSlice(a[24:28])
			if spa != ip || tpa != s.ip || !bytes.Equal(p.dst, s.mac) {
				continue
			}
			if !bytes.Equal(p.src, a[8:14]) {
				s.t.Fatalf("ARP reply for %s: Ethernet source %s differs from sender %s", ip, p.src, net.HardwareAddr(a[8:14]))
			}
			return net.HardwareAddr(append([]byte(nil), a[8:14]...)), p.from, true
		}
	}
}

// ping sends ICMP echo requests to ip at mac (one a second) until the
// matching echo reply arrives on the station's VLAN; it must come from mac
// on port. It fails the test after 30 s.
func (s *station) ping(ip netip.Addr, mac net.HardwareAddr, port string) time.Duration {
	s.t.Helper()
	const id = 0x6b6e // "kn"
	data := []byte(fmt.Sprintf("kiln netdev echo %s vid %d", ip, s.vid))
	giveUp := time.After(30 * time.Second)
	for seq := uint16(1); ; seq++ {
		sent := time.Now()
		if err := s.sw.Inject(s.frame(mac, etherIPv4, echoRequest(s.ip, ip, id, seq, data))); err != nil {
			s.t.Fatal(err)
		}
		resend := time.After(time.Second)
	wait:
		for {
			select {
			case <-giveUp:
				s.t.Fatalf("no ICMP echo reply from %s (VID %d) via port %s in 30s", ip, s.vid, port)
			default:
			}
			p, ok := s.next(resend)
			if !ok {
				break wait
			}
			ipHdr := p.payload
			if p.etherType != etherIPv4 || len(ipHdr) < 28 {
				continue
			}
			ihl := int(ipHdr[0]&0x0f) * 4
			if ipHdr[0]>>4 != 4 || ihl < 20 || len(ipHdr) < ihl+8 || ipHdr[9] != 1 {
				continue
			}
			src, _ := netip.AddrFromSlice(ipHdr[12:16])
			dst, _ := netip.AddrFromSlice(ipHdr[16:20])
			total := int(binary.BigEndian.Uint16(ipHdr[2:4]))
			if total < ihl+8 || total > len(ipHdr) {
				continue
			}
			icmp := ipHdr[ihl:total]
			if src != ip || dst != s.ip || icmp[0] != 0 || binary.BigEndian.Uint16(icmp[4:6]) != id ||
				binary.BigEndian.Uint16(icmp[6:8]) != seq {
				continue
			}
			if checksum(ipHdr[:ihl]) != 0 || checksum(icmp) != 0 {
				s.t.Fatalf("echo reply from %s: bad checksum", ip)
			}
			if !bytes.Equal(icmp[8:], data) {
				s.t.Fatalf("echo reply from %s carries %q, want %q", ip, icmp[8:], data)
			}
			if !bytes.Equal(p.src, mac) || p.from != port {
				s.t.Fatalf("echo reply from %s came from %s on port %s, want %s on port %s", ip, p.src, p.from, mac, port)
			}
			return time.Since(sent)
		}
	}
}
