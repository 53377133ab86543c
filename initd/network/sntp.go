package network

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"time"

	"golang.org/x/sys/unix"
)

// ntpEpochOffset is the seconds from 1900-01-01 (NTP era 0) to 1970-01-01.
const ntpEpochOffset = 2208988800

func toNTP(t time.Time) uint64 {
	secs := uint64(t.Unix() + ntpEpochOffset)
	frac := uint64(t.Nanosecond()) << 32 / 1e9
	return secs<<32 | frac
}

func fromNTP(v uint64) time.Time {
	secs := int64(v>>32) - ntpEpochOffset
	nsec := (v & 0xffffffff) * 1e9 >> 32
	return time.Unix(secs, int64(nsec))
}

// SNTPQuery asks one server (host or host:port, default port 123) for the
// time, as an RFC 4330 unicast client, and returns the clock offset to add
// to the local clock. now is the local clock (time.Now on a node).
func SNTPQuery(ctx context.Context, server string, now func() time.Time) (time.Duration, error) {
	if _, _, err := net.SplitHostPort(server); err != nil {
		server = net.JoinHostPort(server, "123")
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "udp", server)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = now().Add(5 * time.Second)
	}
	c.SetDeadline(deadline)
	req := make([]byte, 48)
	req[0] = 0<<6 | 4<<3 | 3 // LI 0, version 4, mode 3 (client)
	t1 := now()
	// The transmit timestamp doubles as a nonce: the reply must echo it.
	binary.BigEndian.PutUint64(req[40:], toNTP(t1))
	if _, err := c.Write(req); err != nil {
		return 0, err
	}
	resp := make([]byte, 128)
	for {
		n, err := c.Read(resp)
		if err != nil {
			return 0, err
		}
		t4 := now()
		if n < 48 || resp[0]&7 != 4 || binary.BigEndian.Uint64(resp[24:]) != binary.BigEndian.Uint64(req[40:]) {
			continue // not a server reply to this request
		}
		if resp[0]>>6 == 3 || resp[1] == 0 || resp[1] > 15 {
			return 0, fmt.Errorf("%s: unsynchronised or kiss-o'-death reply (stratum %d)", server, resp[1])
		}
		t2 := fromNTP(binary.BigEndian.Uint64(resp[32:]))
		t3 := fromNTP(binary.BigEndian.Uint64(resp[40:]))
		if binary.BigEndian.Uint64(resp[40:]) == 0 {
			return 0, fmt.Errorf("%s: reply without a transmit timestamp", server)
		}
		// RFC 4330 section 5: offset = ((T2 - T1) + (T3 - T4)) / 2
		return (t2.Sub(t1) + t3.Sub(t4)) / 2, nil
	}
}

// SyncClock queries servers in order and steps the clock by the first
// answer's offset through set (nil: clock_settime(CLOCK_REALTIME)).
// No servers is not an error: the caller logs that NTP was skipped.
func SyncClock(ctx context.Context, servers []string, set func(time.Time) error) (time.Duration, string, error) {
	if set == nil {
		set = setRealtime
	}
	var errs []error
	for _, s := range servers {
		qctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		off, err := SNTPQuery(qctx, s, time.Now)
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("ntp %s: %w", s, err))
			continue
		}
		if err := set(time.Now().Add(off)); err != nil {
			return off, s, fmt.Errorf("set clock: %w", err)
		}
		return off, s, nil
	}
	if len(errs) == 0 {
		return 0, "", nil
	}
	return 0, "", errors.Join(errs...)
}

func setRealtime(t time.Time) error {
	ts := unix.NsecToTimespec(t.UnixNano())
	return unix.ClockSettime(unix.CLOCK_REALTIME, &ts)
}
