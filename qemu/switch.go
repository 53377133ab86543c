package qemu

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// Switch is a learning Ethernet switch over loopback UDP: every VM's NIC is
// a QEMU dgram netdev that sends its frames, one per datagram, to the
// switch's port and receives frames on its own port. The test process joins
// the segment too, as the port named "host" (Inject / Frames), so it can
// probe the VMs with ARP and ICMP without any tap device or root.
//
// Only 127.0.0.1 is used: the switch listens there and forwards only to
// ports registered with AddPort or NetFor.
type Switch struct {
	conn *net.UDPConn
	port int

	mu     sync.Mutex
	ports  map[netip.AddrPort]*swPort // VM ports by their UDP address
	names  map[string]*swPort
	macs   map[[6]byte]*swPort // learned: source MAC -> port it came in on
	closed bool

	host    *swPort
	frames  chan Frame
	done    sync.WaitGroup
	once    sync.Once
	dropped atomic.Uint64
}

// Frame is an Ethernet frame delivered to the host port.
type Frame struct {
	From string // name of the port the frame entered the switch on
	Data []byte
}

type swPort struct {
	name string
	addr netip.AddrPort // zero for the host port
}

const (
	// HostPort is the name of the test process's own port.
	HostPort = "host"
	// maxMACs bounds the learning table; beyond it unknown sources are not
	// learned and frames to them are flooded (still delivered, just noisier).
	maxMACs = 4096
	// frameQueue bounds the frames buffered for the host; more are dropped
	// (and counted) rather than blocking the switch.
	frameQueue = 1024
	maxFrame   = 65535
	minFrame   = 14 // destination, source, EtherType
)

var loopback = netip.MustParseAddr("127.0.0.1")

// NewSwitch listens on 127.0.0.1 on a free UDP port and starts forwarding.
func NewSwitch() (*Switch, error) {
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, fmt.Errorf("switch: listening on 127.0.0.1: %w", err)
	}
	s := &Switch{
		conn:   conn,
		port:   conn.LocalAddr().(*net.UDPAddr).Port,
		ports:  map[netip.AddrPort]*swPort{},
		names:  map[string]*swPort{},
		macs:   map[[6]byte]*swPort{},
		host:   &swPort{name: HostPort},
		frames: make(chan Frame, frameQueue),
	}
	s.names[HostPort] = s.host
	s.done.Add(1)
	go s.run()
	return s, nil
}

// Port is the UDP port the switch listens on (127.0.0.1).
func (s *Switch) Port() int { return s.port }

// AddPort attaches the UDP endpoint 127.0.0.1:udpPort as the switch port
// called name: frames flooded or addressed to it are sent there, and
// datagrams from it are switched.
func (s *Switch) AddPort(name string, udpPort int) error {
	if name == "" {
		return errors.New("switch: a port needs a name")
	}
	if udpPort <= 0 || udpPort > 65535 {
		return fmt.Errorf("switch: port %s: UDP port %d out of range", name, udpPort)
	}
	ap := netip.AddrPortFrom(loopback, uint16(udpPort))
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("switch: port %s: switch is closed", name)
	}
	if _, ok := s.names[name]; ok {
		return fmt.Errorf("switch: port %s already exists", name)
	}
	if p, ok := s.ports[ap]; ok {
		return fmt.Errorf("switch: port %s: UDP %s is already port %s", name, ap, p.name)
	}
	p := &swPort{name: name, addr: ap}
	s.ports[ap] = p
	s.names[name] = p
	return nil
}

// NetFor reserves a free loopback UDP port for the VM called name, attaches
// it to the switch and returns the Machine.Net value that connects the VM's
// NIC there ("switch:SWITCHPORT:VMPORT"). The port is free when NetFor
// returns; QEMU binds it when it starts.
func (s *Switch) NetFor(name string) (string, error) {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return "", fmt.Errorf("switch: port %s: finding a free UDP port: %w", name, err)
	}
	vmPort := c.LocalAddr().(*net.UDPAddr).Port
	c.Close()
	if err := s.AddPort(name, vmPort); err != nil {
		return "", err
	}
	return fmt.Sprintf("switch:%d:%d", s.port, vmPort), nil
}

// parseSwitchNet splits a Machine.Net value "switch:SWITCHPORT:VMPORT".
func parseSwitchNet(v string) (switchPort, vmPort int, err error) {
	f := strings.Split(strings.TrimPrefix(v, "switch:"), ":")
	if len(f) != 2 {
		return 0, 0, fmt.Errorf("network %q: want switch:SWITCHPORT:VMPORT", v)
	}
	ports := [2]int{}
	for i, s := range f {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 || n > 65535 {
			return 0, 0, fmt.Errorf("network %q: %q is not a UDP port", v, s)
		}
		ports[i] = n
	}
	return ports[0], ports[1], nil
}

// MACFor derives a stable MAC address for the VM called name, in QEMU's
// 52:54:00 range, so seeds can match the NIC and reruns get the same one.
func MACFor(name string) net.HardwareAddr {
	h := sha256.Sum256([]byte("kiln-vm-mac:" + name))
	return net.HardwareAddr{0x52, 0x54, 0x00, h[0], h[1], h[2]}
}

// Inject sends frame into the segment from the host port, as if a NIC
// plugged into the switch had sent it.
func (s *Switch) Inject(frame []byte) error {
	if len(frame) < minFrame {
		return fmt.Errorf("switch: injected frame is %d bytes, shorter than an Ethernet header", len(frame))
	}
	if len(frame) > maxFrame {
		return fmt.Errorf("switch: injected frame is %d bytes, more than a datagram holds", len(frame))
	}
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return errors.New("switch: inject: switch is closed")
	}
	return s.forward(s.host, frame)
}

// Frames delivers what reaches the host port: broadcasts, multicasts,
// unknown unicast and frames to MACs the host injected from. It is closed
// by Close. A full queue drops frames (see Dropped) instead of stalling VMs.
func (s *Switch) Frames() <-chan Frame { return s.frames }

// Dropped counts frames the host port lost because Frames was not drained.
func (s *Switch) Dropped() uint64 { return s.dropped.Load() }

// Close stops the switch, waits for its goroutine and closes Frames.
func (s *Switch) Close() error {
	var err error
	s.once.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		err = s.conn.Close()
		s.done.Wait()
		close(s.frames)
	})
	return err
}

func (s *Switch) run() {
	defer s.done.Done()
	buf := make([]byte, maxFrame+1)
	for {
		n, from, err := s.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // e.g. ICMP port unreachable from a VM that is not up yet
		}
		if n < minFrame || n > maxFrame {
			continue
		}
		s.mu.Lock()
		in := s.ports[netip.AddrPortFrom(from.Addr().Unmap(), from.Port())]
		s.mu.Unlock()
		if in == nil {
			continue // not attached: only registered loopback ports take part
		}
		s.forward(in, buf[:n])
	}
}

// forward learns the source MAC of frame on port in and sends the frame on:
// to the learned port of its destination, or to every other port when the
// destination is broadcast, multicast or not yet known. A frame is never
// sent back out of the port it came in on.
func (s *Switch) forward(in *swPort, frame []byte) error {
	var dst, src [6]byte
	copy(dst[:], frame[0:6])
	copy(src[:], frame[6:12])
	s.mu.Lock()
	if src[0]&1 == 0 { // a multicast source is bogus: never learn it
		if _, known := s.macs[src]; known || len(s.macs) < maxMACs {
			s.macs[src] = in
		}
	}
	var out []*swPort
	if p, ok := s.macs[dst]; ok && dst[0]&1 == 0 {
		if p != in {
			out = append(out, p)
		}
	} else {
		for _, p := range s.names {
			if p != in {
				out = append(out, p)
			}
		}
	}
	s.mu.Unlock()
	var firstErr error
	for _, p := range out {
		if p == s.host {
			select {
			case s.frames <- Frame{From: in.name, Data: append([]byte(nil), frame...)}:
			default:
				s.dropped.Add(1)
			}
			continue
		}
		if _, err := s.conn.WriteToUDPAddrPort(frame, p.addr); err != nil && firstErr == nil {
			firstErr = fmt.Errorf("switch: sending to port %s (%s): %w", p.name, p.addr, err)
		}
	}
	return firstErr
}
