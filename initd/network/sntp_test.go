package network

import (
	"context"
	"encoding/binary"
	"net"
	"testing"
	"time"
)

// fakeNTP answers on loopback as a stratum-2 server whose clock is ahead by skew.
func fakeNTP(t *testing.T, skew time.Duration, mutate func([]byte)) string {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 512)
		for {
			n, addr, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if n < 48 || buf[0]&7 != 3 {
				continue
			}
			resp := make([]byte, 48)
			resp[0] = 0<<6 | 4<<3 | 4
			resp[1] = 2
			copy(resp[24:32], buf[40:48]) // originate = client's transmit
			now := time.Now().Add(skew)
			binary.BigEndian.PutUint64(resp[32:], toNTP(now))
			binary.BigEndian.PutUint64(resp[40:], toNTP(now))
			if mutate != nil {
				mutate(resp)
			}
			pc.WriteTo(resp, addr)
		}
	}()
	return pc.LocalAddr().String()
}

func TestSNTP(t *testing.T) {
	srv := fakeNTP(t, 90*time.Minute, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	off, err := SNTPQuery(ctx, srv, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	if d := off - 90*time.Minute; d < -time.Second || d > time.Second {
		t.Errorf("offset %v, want ~90m", off)
	}
	var set time.Time
	off, used, err := SyncClock(ctx, []string{"127.0.0.1:1", srv}, func(t time.Time) error { set = t; return nil })
	if err != nil || used != srv || time.Until(set) < 89*time.Minute {
		t.Errorf("sync: %v %v %s %v", off, err, used, set)
	}
	if _, used, err := SyncClock(ctx, nil, nil); err != nil || used != "" {
		t.Errorf("no servers: %v", err)
	}
	// Kiss-o'-death (stratum 0) and replies to someone else's request are refused.
	kod := fakeNTP(t, 0, func(b []byte) { b[1] = 0 })
	if _, err := SNTPQuery(ctx, kod, time.Now); err == nil {
		t.Error("stratum 0 accepted")
	}
	spoof := fakeNTP(t, 0, func(b []byte) { b[24]++ })
	sctx, scancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer scancel()
	if _, err := SNTPQuery(sctx, spoof, time.Now); err == nil {
		t.Error("reply with a wrong originate timestamp accepted")
	}
}

func TestNTPTimestamps(t *testing.T) {
	tm := time.Date(2024, 2, 29, 12, 0, 0, 500_000_000, time.UTC)
	if got := fromNTP(toNTP(tm)); got.Sub(tm).Abs() > time.Microsecond {
		t.Errorf("round trip %v", got)
	}
	if toNTP(time.Unix(0, 0))>>32 != ntpEpochOffset {
		t.Error("epoch")
	}
}
