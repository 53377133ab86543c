package qemu_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kilnproject/kiln/qemu"
)

// The segment exists only between the switch in this process and the two
// VMs; no frame leaves it.
var (
	hostIP  = netip.MustParseAddr("192.168.77.100")
	hostMAC = qemu.MACFor("test-host")
)

// TestMultiVM boots two minimal ISOs on one virtual Ethernet segment (a
// qemu.Switch over loopback UDP), each with a static address from its own
// NoCloud seed, and checks from the test's own switch port that each VM
// answers ARP with its MAC and ICMP echo with a reply.
func TestMultiVM(t *testing.T) {
	sw, err := qemu.NewSwitch()
	if err != nil {
		t.Fatal(err)
	}
	defer sw.Close()

	type node struct {
		name string
		ip   netip.Addr
		mac  net.HardwareAddr
		vm   *qemu.VM
	}
	nodes := []*node{
		{name: "vm1", ip: netip.MustParseAddr("192.168.77.11")},
		{name: "vm2", ip: netip.MustParseAddr("192.168.77.12")},
	}
	for _, n := range nodes {
		n.mac = qemu.MACFor(n.name)
		netSpec, err := sw.NetFor(n.name)
		if err != nil {
			t.Fatal(err)
		}
		m := &qemu.Machine{Arch: mustArch(t, "amd64"), MemoryMiB: 512, CPUs: 1, Net: netSpec, MAC: n.mac.String(),
			Drives: []qemu.Drive{
				{Path: image("amd64", "iso"), Media: "cdrom", Snapshot: true},
				// The seed rides on a virtio disk, as a NoCloud image often
				// does (the seed tests cover the CD-ROM case).
				{Path: makeSeed(t, n.name, n.mac, n.ip), Format: "raw", Snapshot: true},
			}}
		// Both boot at once: TCG boots are slow, the waits overlap.
		n.vm, err = m.Start(context.Background())
		if err != nil {
			t.Fatalf("%s: start: %v", n.name, err)
		}
		t.Cleanup(n.vm.Kill)
	}
	for _, n := range nodes {
		line, err := n.vm.WaitFor(context.Background(), readyRe, bootTimeout("amd64"))
		if err != nil {
			saveNamedLog(t, n.name, n.vm.Log())
			t.Fatalf("%s: %v", n.name, err)
		}
		want := regexp.MustCompile(`hostname=` + n.name + ` addresses=` + regexp.QuoteMeta(n.ip.String()+"/24") + `(,|\s|$)`)
		if !want.MatchString(line) {
			saveNamedLog(t, n.name, n.vm.Log())
			t.Fatalf("%s: ready line %q lacks %q", n.name, strings.TrimSpace(line), want)
		}
		t.Logf("%s: %q after %.1fs", n.name, strings.TrimSpace(line), n.vm.Elapsed().Seconds())
	}

	seg := &segment{t: t, sw: sw}
	for _, n := range nodes {
		mac, from := seg.arp(n.ip)
		if !bytes.Equal(mac, n.mac) || from != n.name {
			t.Fatalf("ARP for %s: answered by %s on port %s, want %s on port %s", n.ip, mac, from, n.mac, n.name)
		}
		t.Logf("ARP: %s is at %s (port %s)", n.ip, mac, from)
		rtt := seg.ping(n.ip, n.mac, n.name)
		t.Logf("ICMP: echo reply from %s in %s", n.ip, rtt.Round(time.Millisecond))
	}
	if d := sw.Dropped(); d > 0 {
		t.Logf("switch dropped %d frames for the host port", d)
	}
}

// makeSeed writes a NoCloud seed for name with the real CLI: hostname from
// cloud-config, a static address on the NIC matched by MAC.
func makeSeed(t *testing.T, name string, mac net.HardwareAddr, ip netip.Addr) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"user-data": "#cloud-config\nhostname: " + name + "\n",
		"meta-data": "instance-id: " + name + "\nlocal-hostname: " + name + "\n",
		"network-config": fmt.Sprintf("version: 2\nethernets:\n  lan:\n    match: {macaddress: %q}\n    addresses: [%s/24]\n",
			mac.String(), ip),
	}
	for f, body := range files {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	iso := filepath.Join(t.TempDir(), name+"-seed.iso")
	if out, err := exec.Command(kilnBin, "seed", "--kind", "nocloud", "-o", iso, dir).CombinedOutput(); err != nil {
		t.Fatalf("kiln seed for %s: %v\n%s", name, err, out)
	}
	return iso
}

func saveNamedLog(t *testing.T, name, log string) {
	t.Helper()
	if err := os.MkdirAll(artDir, 0o755); err != nil {
		return
	}
	p := filepath.Join(artDir, strings.ReplaceAll(t.Name(), "/", "_")+"."+name+".console.log")
	if os.WriteFile(p, []byte(log), 0o644) == nil {
		t.Logf("%s console log kept at %s", name, p)
	}
}

// segment is the test's own station on the switch (MAC hostMAC, IP hostIP).
// While waiting for an answer it also answers ARP requests for hostIP, so a
// VM that lost the test's neighbour entry can still reply.
type segment struct {
	t  *testing.T
	sw *qemu.Switch
}

const (
	etherARP  = 0x0806
	etherIPv4 = 0x0800
)

func ethernet(dst, src net.HardwareAddr, etherType uint16, payload []byte) []byte {
	f := make([]byte, 14, 14+len(payload))
	copy(f[0:6], dst)
	copy(f[6:12], src)
	binary.BigEndian.PutUint16(f[12:14], etherType)
	return append(f, payload...)
}

// arpPacket is an Ethernet/IPv4 ARP packet (RFC 826).
func arpPacket(op uint16, sha net.HardwareAddr, spa netip.Addr, tha net.HardwareAddr, tpa netip.Addr) []byte {
	p := make([]byte, 28)
	binary.BigEndian.PutUint16(p[0:2], 1) // hardware: Ethernet
	binary.BigEndian.PutUint16(p[2:4], etherIPv4)
	p[4], p[5] = 6, 4
	binary.BigEndian.PutUint16(p[6:8], op)
	copy(p[8:14], sha)
	s4, t4 := spa.As4(), tpa.As4()
	copy(p[14:18], s4[:])
	copy(p[18:24], tha)
	copy(p[24:28], t4[:])
	return p
}

// checksum is the Internet checksum (RFC 1071).
func checksum(b []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}

// echoRequest is an IPv4 packet carrying an ICMP echo request (RFC 792).
func echoRequest(src, dst netip.Addr, id, seq uint16, data []byte) []byte {
	icmp := make([]byte, 8, 8+len(data))
	icmp[0] = 8 // echo request
	binary.BigEndian.PutUint16(icmp[4:6], id)
	binary.BigEndian.PutUint16(icmp[6:8], seq)
	icmp = append(icmp, data...)
	binary.BigEndian.PutUint16(icmp[2:4], checksum(icmp))
	ip := make([]byte, 20)
	ip[0] = 0x45 // IPv4, 5-word header
	binary.BigEndian.PutUint16(ip[2:4], uint16(20+len(icmp)))
	binary.BigEndian.PutUint16(ip[4:6], seq)
	ip[8] = 64 // TTL
	ip[9] = 1  // ICMP
	s4, d4 := src.As4(), dst.As4()
	copy(ip[12:16], s4[:])
	copy(ip[16:20], d4[:])
	binary.BigEndian.PutUint16(ip[10:12], checksum(ip))
	return append(ip, icmp...)
}

// next returns the next frame for the host, answering ARP for hostIP on the
// way; ok is false when nothing came before deadline.
func (s *segment) next(deadline <-chan time.Time) (qemu.Frame, bool) {
	for {
		select {
		case f, open := <-s.sw.Frames():
			if !open {
				s.t.Fatal("switch closed")
			}
			d := f.Data
			if len(d) >= 42 && binary.BigEndian.Uint16(d[12:14]) == etherARP && binary.BigEndian.Uint16(d[20:22]) == 1 {
				if tpa, _ := netip.AddrFromSlice(d[38:42]); tpa == hostIP {
					spa, _ := netip.AddrFromSlice(d[28:32])
					sha := net.HardwareAddr(append([]byte(nil), d[22:28]...))
					s.sw.Inject(ethernet(sha, hostMAC, etherARP, arpPacket(2, hostMAC, hostIP, sha, spa)))
				}
			}
			return f, true
		case <-deadline:
			return qemu.Frame{}, false
		}
	}
}

// arp asks who has ip (broadcast, resent each second) and returns the MAC in
// the reply and the switch port it came from.
func (s *segment) arp(ip netip.Addr) (net.HardwareAddr, string) {
	s.t.Helper()
	req := ethernet(net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, hostMAC, etherARP,
		arpPacket(1, hostMAC, hostIP, make(net.HardwareAddr, 6), ip))
	giveUp := time.After(30 * time.Second)
	for {
		if err := s.sw.Inject(req); err != nil {
			s.t.Fatal(err)
		}
		resend := time.After(time.Second)
	wait:
		for {
			select {
			case <-giveUp:
				s.t.Fatalf("no ARP reply for %s in 30s", ip)
			default:
			}
			f, ok := s.next(resend)
			if !ok {
				break wait
			}
			d := f.Data
			if len(d) < 42 || binary.BigEndian.Uint16(d[12:14]) != etherARP || binary.BigEndian.Uint16(d[20:22]) != 2 {
				continue
			}
			spa, _ := netip.AddrFromSlice(d[28:32])
			tpa, _ := netip.AddrFromSlice(d[38:42])
			if spa != ip || tpa != hostIP || !bytes.Equal(d[0:6], hostMAC) {
				continue
			}
			if !bytes.Equal(d[6:12], d[22:28]) {
				s.t.Fatalf("ARP reply for %s: Ethernet source %s differs from sender %s", ip, net.HardwareAddr(d[6:12]), net.HardwareAddr(d[22:28]))
			}
			return net.HardwareAddr(append([]byte(nil), d[22:28]...)), f.From
		}
	}
}

// ping sends ICMP echo requests to ip at mac (one a second) until the echo
// reply with the same identifier, sequence and data comes back from mac on
// the VM's port.
func (s *segment) ping(ip netip.Addr, mac net.HardwareAddr, port string) time.Duration {
	s.t.Helper()
	const id = 0x6b6c // "kl"
	data := []byte("kiln multivm echo " + ip.String())
	giveUp := time.After(30 * time.Second)
	for seq := uint16(1); ; seq++ {
		sent := time.Now()
		if err := s.sw.Inject(ethernet(mac, hostMAC, etherIPv4, echoRequest(hostIP, ip, id, seq, data))); err != nil {
			s.t.Fatal(err)
		}
		resend := time.After(time.Second)
	wait:
		for {
			select {
			case <-giveUp:
				s.t.Fatalf("no ICMP echo reply from %s in 30s", ip)
			default:
			}
			f, ok := s.next(resend)
			if !ok {
				break wait
			}
			d := f.Data
			if len(d) < 14+20+8 || binary.BigEndian.Uint16(d[12:14]) != etherIPv4 {
				continue
			}
			ipHdr := d[14:]
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
			icmp := ipHdr[ihl:total] // without Ethernet padding
			if src != ip || dst != hostIP || icmp[0] != 0 || binary.BigEndian.Uint16(icmp[4:6]) != id {
				continue
			}
			if checksum(ipHdr[:ihl]) != 0 || checksum(icmp) != 0 {
				s.t.Fatalf("echo reply from %s: bad checksum", ip)
			}
			if binary.BigEndian.Uint16(icmp[6:8]) != seq {
				continue // a late reply to an earlier request
			}
			if !bytes.Equal(icmp[8:], data) {
				s.t.Fatalf("echo reply from %s carries %q, want %q", ip, icmp[8:], data)
			}
			if !bytes.Equal(d[6:12], mac) || f.From != port {
				s.t.Fatalf("echo reply from %s came from %s on port %s, want %s on port %s", ip, net.HardwareAddr(d[6:12]), f.From, mac, port)
			}
			return time.Since(sent)
		}
	}
}
