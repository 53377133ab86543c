package qemu

import (
	"bytes"
	"net"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kilnproject/kiln/arch"
)

// peer is a fake VM NIC: a UDP socket on loopback, attached to the switch.
type peer struct {
	name string
	conn *net.UDPConn
	mac  net.HardwareAddr
	sw   *net.UDPAddr
}

func newPeer(t *testing.T, s *Switch, name string) *peer {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := s.AddPort(name, c.LocalAddr().(*net.UDPAddr).Port); err != nil {
		t.Fatal(err)
	}
	return &peer{name: name, conn: c, mac: MACFor(name), sw: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: s.Port()}}
}

func frame(dst, src net.HardwareAddr, payload string) []byte {
	f := append(append(append([]byte(nil), dst...), src...), 0x88, 0xb5) // local experimental EtherType
	return append(f, payload...)
}

var broadcast = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

func (p *peer) send(t *testing.T, f []byte) {
	t.Helper()
	if _, err := p.conn.WriteToUDP(f, p.sw); err != nil {
		t.Fatalf("%s: send: %v", p.name, err)
	}
}

// expect requires the next datagram at p to be want.
func (p *peer) expect(t *testing.T, want []byte) {
	t.Helper()
	buf := make([]byte, 2048)
	p.conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	n, _, err := p.conn.ReadFromUDP(buf)
	if err != nil {
		t.Fatalf("%s: want a frame %q, got %v", p.name, want[14:], err)
	}
	if !bytes.Equal(buf[:n], want) {
		t.Fatalf("%s: got frame %x, want %x", p.name, buf[:n], want)
	}
}

// expectNone requires that nothing reaches p for a short while.
func (p *peer) expectNone(t *testing.T) {
	t.Helper()
	buf := make([]byte, 2048)
	p.conn.SetReadDeadline(time.Now().Add(150 * time.Millisecond))
	if n, _, err := p.conn.ReadFromUDP(buf); err == nil {
		t.Fatalf("%s: got unexpected frame %x", p.name, buf[:n])
	}
}

func expectHost(t *testing.T, s *Switch, from string, want []byte) {
	t.Helper()
	select {
	case f := <-s.Frames():
		if f.From != from || !bytes.Equal(f.Data, want) {
			t.Fatalf("host: got frame from %s %x, want from %s %x", f.From, f.Data, from, want)
		}
	case <-time.After(2 * time.Second):
		t.Fatalf("host: no frame %q from %s", want[14:], from)
	}
}

func expectHostNone(t *testing.T, s *Switch) {
	t.Helper()
	select {
	case f := <-s.Frames():
		t.Fatalf("host: unexpected frame from %s %x", f.From, f.Data)
	case <-time.After(150 * time.Millisecond):
	}
}

func newSwitch(t *testing.T) *Switch {
	t.Helper()
	s, err := NewSwitch()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestSwitchFloodsLearnsAndNeverEchoes(t *testing.T) {
	s := newSwitch(t)
	a, b, c := newPeer(t, s, "a"), newPeer(t, s, "b"), newPeer(t, s, "c")

	// Broadcast: everyone but the sender, the host included.
	f := frame(broadcast, a.mac, "hello all")
	a.send(t, f)
	b.expect(t, f)
	c.expect(t, f)
	expectHost(t, s, "a", f)
	a.expectNone(t)

	// a is learned now: a unicast to it reaches a only.
	f = frame(a.mac, b.mac, "to a")
	b.send(t, f)
	a.expect(t, f)
	c.expectNone(t)
	b.expectNone(t)
	expectHostNone(t, s)

	// c's MAC is unknown: flooded to all but the sender.
	f = frame(c.mac, a.mac, "to c, unknown")
	a.send(t, f)
	b.expect(t, f)
	c.expect(t, f)
	expectHost(t, s, "a", f)
	a.expectNone(t)

	// A frame to a MAC learned on the sender's own port is not sent anywhere.
	f = frame(a.mac, a.mac, "to myself")
	a.send(t, f)
	a.expectNone(t)
	b.expectNone(t)
	expectHostNone(t, s)

	// A multicast destination floods even though nothing learns it.
	mc := net.HardwareAddr{0x33, 0x33, 0, 0, 0, 1}
	f = frame(mc, b.mac, "ipv6 all-nodes")
	b.send(t, f)
	a.expect(t, f)
	c.expect(t, f)
	expectHost(t, s, "b", f)
}

func TestSwitchHostPort(t *testing.T) {
	s := newSwitch(t)
	a, b := newPeer(t, s, "a"), newPeer(t, s, "b")
	hostMAC := MACFor("host")

	// The host's broadcast reaches both VMs and is not echoed to the host.
	req := frame(broadcast, hostMAC, "who has")
	if err := s.Inject(req); err != nil {
		t.Fatal(err)
	}
	a.expect(t, req)
	b.expect(t, req)
	expectHostNone(t, s)

	// The reply to the host's MAC reaches the host only.
	rep := frame(hostMAC, a.mac, "a has")
	a.send(t, rep)
	expectHost(t, s, "a", rep)
	b.expectNone(t)

	// The host's unicast to a learned VM reaches that VM only.
	f := frame(a.mac, hostMAC, "host to a")
	if err := s.Inject(f); err != nil {
		t.Fatal(err)
	}
	a.expect(t, f)
	b.expectNone(t)

	if err := s.Inject([]byte{1, 2, 3}); err == nil || !strings.Contains(err.Error(), "shorter than an Ethernet header") {
		t.Errorf("short inject: %v", err)
	}
}

func TestSwitchIgnoresStrangersAndRunts(t *testing.T) {
	s := newSwitch(t)
	a := newPeer(t, s, "a")
	stranger, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer stranger.Close()
	sw := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: s.Port()}
	stranger.WriteToUDP(frame(broadcast, MACFor("x"), "not attached"), sw)
	a.send(t, []byte{0xff, 0xff, 0xff}) // shorter than a header
	a.expectNone(t)
	expectHostNone(t, s)

	// A stranger's source MAC was not learned: a frame to it floods.
	f := frame(MACFor("x"), a.mac, "to x")
	a.send(t, f)
	expectHost(t, s, "a", f)
}

func TestSwitchPorts(t *testing.T) {
	s := newSwitch(t)
	if err := s.AddPort("a", 40000); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		port int
		want string
	}{
		{"a", 40001, "port a already exists"},
		{"host", 40002, "port host already exists"},
		{"b", 40000, "UDP 127.0.0.1:40000 is already port a"},
		{"c", 70000, "UDP port 70000 out of range"},
		{"", 40003, "needs a name"},
	} {
		if err := s.AddPort(c.name, c.port); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("AddPort(%q, %d) = %v, want %q", c.name, c.port, err, c.want)
		}
	}
	nv, err := s.NetFor("vm1")
	if err != nil {
		t.Fatal(err)
	}
	sp, vp, err := parseSwitchNet(nv)
	if err != nil || sp != s.Port() || vp == 0 {
		t.Fatalf("NetFor = %q -> %d %d %v", nv, sp, vp, err)
	}
	for _, bad := range []string{"switch:1", "switch:a:2", "switch:1:0", "switch:1:2:3"} {
		if _, _, err := parseSwitchNet(bad); err == nil {
			t.Errorf("parseSwitchNet(%q) accepted", bad)
		}
	}

	// Machine.Args turns it into a QEMU dgram netdev on loopback with the MAC.
	a, err := arch.Lookup("amd64")
	if err != nil {
		t.Fatal(err)
	}
	m := &Machine{Arch: a, Net: nv, MAC: MACFor("vm1").String()}
	args, err := m.Args(t.TempDir(), "/nonexistent/qmp.sock")
	if err != nil {
		t.Fatal(err)
	}
	joined := strings.Join(args, " ")
	wantNetdev := "dgram,id=net0,remote.type=inet,remote.host=127.0.0.1,remote.port=" + strconv.Itoa(sp) +
		",local.type=inet,local.host=127.0.0.1,local.port=" + strconv.Itoa(vp)
	if !strings.Contains(joined, "-netdev "+wantNetdev+" ") || !strings.Contains(joined, "netdev=net0,mac="+MACFor("vm1").String()) {
		t.Errorf("args lack the switch netdev or MAC: %s", joined)
	}
}

func TestMACForIsStableAndDistinct(t *testing.T) {
	if MACFor("vm1").String() != MACFor("vm1").String() {
		t.Fatal("MACFor is not stable")
	}
	if MACFor("vm1").String() == MACFor("vm2").String() {
		t.Fatal("vm1 and vm2 share a MAC")
	}
	m := MACFor("vm1")
	if m[0]&1 != 0 || !strings.HasPrefix(m.String(), "52:54:00:") {
		t.Fatalf("MACFor(vm1) = %s: want a unicast 52:54:00 address", m)
	}
}

func TestSwitchCloseStopsEverything(t *testing.T) {
	before := runtime.NumGoroutine()
	s, err := NewSwitch()
	if err != nil {
		t.Fatal(err)
	}
	a := newPeer(t, s, "a")
	// Fill the host queue past its bound: the switch drops, never blocks.
	// (Loopback UDP may lose some datagrams itself: send until it shows.)
	deadline := time.Now().Add(5 * time.Second)
	for s.Dropped() == 0 && time.Now().Before(deadline) {
		for i := 0; i < 100; i++ {
			a.send(t, frame(broadcast, a.mac, "flood"))
		}
		time.Sleep(5 * time.Millisecond)
	}
	if s.Dropped() == 0 {
		t.Fatalf("host queue of %d never overflowed", frameQueue)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s.Close() // twice is fine
	n := 0
	for range s.Frames() {
		n++
	}
	if n != frameQueue {
		t.Errorf("drained %d buffered frames, want %d", n, frameQueue)
	}
	if err := s.Inject(frame(broadcast, a.mac, "late")); err == nil {
		t.Error("Inject after Close succeeded")
	}
	if err := s.AddPort("late", 40000); err == nil {
		t.Error("AddPort after Close succeeded")
	}
	for i := 0; i < 50 && runtime.NumGoroutine() > before; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if g := runtime.NumGoroutine(); g > before {
		t.Errorf("%d goroutines after Close, %d before", g, before)
	}
}
