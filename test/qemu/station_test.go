package qemu_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/kilnproject/kiln/qemu"
)

// Hand-built Ethernet, ARP and ICMP frames, and the test's own station on a
// qemu.Switch, shared by the tests that check what a guest answers on the wire.

const (
	etherARP  = 0x0806
	etherIPv4 = 0x0800
	etherVLAN = 0x8100 // IEEE 802.1Q tag protocol identifier
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
