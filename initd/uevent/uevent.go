// Package uevent listens to the kernel's device events (the
// NETLINK_KOBJECT_UEVENT socket udev reads), so initd can load a driver or
// look at a new disk the moment the kernel announces it instead of
// rescanning sysfs on a timer.
package uevent

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Event is one kernel uevent.
type Event struct {
	Action    string // add, remove, change, bind, ...
	DevPath   string // under /sys, e.g. /devices/pci0000:00/0000:00:1f.2/ata3/...
	Subsystem string // block, pci, scsi, ...
	DevName   string // node under /dev, e.g. sr0 (block and char devices)
	Modalias  string // what the driver alias matching uses
	Env       map[string]string
}

// ErrOverflow means the socket's buffer filled up and events were lost:
// rescan sysfs to catch up.
var ErrOverflow = errors.New("uevent: receive buffer overflowed, events lost")

// Parse decodes one kernel message: "ACTION@DEVPATH" then NUL-separated
// KEY=VALUE pairs. Messages from udev ("libudev" header) are not kernel
// events and are refused.
func Parse(msg []byte) (Event, error) {
	fields := bytes.Split(bytes.TrimRight(msg, "\x00"), []byte{0})
	if len(fields) == 0 || !bytes.Contains(fields[0], []byte("@")) {
		return Event{}, fmt.Errorf("uevent: header %q is not ACTION@DEVPATH", trunc(msg))
	}
	e := Event{Env: map[string]string{}}
	for _, f := range fields[1:] {
		k, v, ok := strings.Cut(string(f), "=")
		if !ok {
			continue
		}
		e.Env[k] = v
	}
	e.Action, e.DevPath = e.Env["ACTION"], e.Env["DEVPATH"]
	if e.Action == "" || e.DevPath == "" {
		action, path, _ := strings.Cut(string(fields[0]), "@")
		e.Action, e.DevPath = action, path
	}
	e.Subsystem, e.DevName, e.Modalias = e.Env["SUBSYSTEM"], e.Env["DEVNAME"], e.Env["MODALIAS"]
	return e, nil
}

func trunc(b []byte) string {
	if len(b) > 40 {
		b = b[:40]
	}
	return string(b)
}

// Socket receives kernel uevents.
type Socket struct {
	fd  int
	buf []byte
}

// rcvBuf is large enough for the burst a module load causes (a driver
// binding a controller announces every port and disk behind it).
const rcvBuf = 4 << 20

// Open subscribes to kernel uevents. Events that happened before Open are
// not replayed: open first, then scan sysfs, and nothing falls in between.
func Open() (*Socket, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_KOBJECT_UEVENT)
	if err != nil {
		return nil, fmt.Errorf("uevent socket: %w", err)
	}
	// FORCE works for root beyond rmem_max; fall back to the capped size.
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, rcvBuf) != nil {
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, rcvBuf)
	}
	// Group 1 is the kernel's broadcast; udev re-broadcasts on group 2.
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: 1}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("uevent socket: bind: %w", err)
	}
	return &Socket{fd: fd, buf: make([]byte, 64<<10)}, nil
}

// Close closes the socket.
func (s *Socket) Close() error { return unix.Close(s.fd) }

// Read waits up to timeout for events and returns every event queued by
// then (none when the timeout passed quietly). ErrOverflow comes with the
// events read before the loss was noticed.
func (s *Socket) Read(timeout time.Duration) ([]Event, error) {
	ms := int(timeout / time.Millisecond)
	if timeout > 0 && ms == 0 {
		ms = 1
	}
	fds := []unix.PollFd{{Fd: int32(s.fd), Events: unix.POLLIN}}
	for {
		_, err := unix.Poll(fds, ms)
		if err == unix.EINTR {
			continue // Go's runtime signals interrupt poll; waiting a little longer is fine
		}
		if err != nil {
			return nil, fmt.Errorf("uevent: poll: %w", err)
		}
		break
	}
	var out []Event
	for {
		n, from, err := unix.Recvfrom(s.fd, s.buf, 0)
		switch {
		case err == unix.EAGAIN || err == unix.EWOULDBLOCK:
			return out, nil
		case err == unix.EINTR:
			continue
		case err == unix.ENOBUFS:
			return out, ErrOverflow
		case err != nil:
			return out, fmt.Errorf("uevent: receive: %w", err)
		}
		// Only the kernel (port 0) sends kernel events; anyone else on
		// the group is ignored.
		if nl, ok := from.(*unix.SockaddrNetlink); !ok || nl.Pid != 0 {
			continue
		}
		if e, err := Parse(s.buf[:n]); err == nil {
			out = append(out, e)
		}
	}
}
