package power

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func event(typ, code uint16, value int32) []byte {
	b := make([]byte, eventSize)
	binary.NativeEndian.PutUint16(b[16:], typ)
	binary.NativeEndian.PutUint16(b[18:], code)
	binary.NativeEndian.PutUint32(b[20:], uint32(value))
	return b
}

func TestReadButton(t *testing.T) {
	var in bytes.Buffer
	in.Write(event(evKey, keyPower, 1)) // press
	in.Write(event(0, 0, 0))            // EV_SYN
	in.Write(event(evKey, keyPower, 0)) // release
	in.Write(event(evKey, 30, 1))       // KEY_A
	in.Write(event(evKey, keyPower, 1))
	out := make(chan Action, 10)
	ReadButton(&in, out)
	if len(out) != 2 || <-out != Poweroff {
		t.Fatalf("%d actions", len(out))
	}
}

func TestFindButtons(t *testing.T) {
	d := t.TempDir()
	for n, name := range map[string]string{"event0": "Power Button", "event1": "AT Translated Set 2 keyboard", "event2": "gpio-keys", "input3": "Power Button"} {
		os.MkdirAll(filepath.Join(d, n, "device"), 0o755)
		os.WriteFile(filepath.Join(d, n, "device/name"), []byte(name+"\n"), 0o644)
	}
	if got := FindButtons(d); !reflect.DeepEqual(got, []string{"event0", "event2"}) {
		t.Fatalf("FindButtons = %v", got)
	}
}

func TestSignals(t *testing.T) {
	for s, want := range map[os.Signal]Action{unix.SIGINT: Reboot, unix.SIGTERM: Poweroff, unix.SIGPWR: Poweroff} {
		if a, ok := ForSignal(s); !ok || a != want {
			t.Errorf("%v -> %v", s, a)
		}
	}
	if _, ok := ForSignal(unix.SIGHUP); ok {
		t.Error("SIGHUP is not a power signal")
	}
}

func TestMountPoints(t *testing.T) {
	p := filepath.Join(t.TempDir(), "mountinfo")
	os.WriteFile(p, []byte(`22 1 0:21 / / rw - squashfs /dev/vda2 ro
23 22 0:5 / /dev rw,nosuid - devtmpfs devtmpfs rw
30 22 0:25 / /run rw - tmpfs tmpfs rw
31 30 8:4 / /run/kiln/state rw - ext4 /dev/vda4 rw
32 22 0:26 / /my\040dir rw - overlay overlay rw
`), 0o644)
	got, err := MountPoints(p)
	want := []string{"/", "/dev", "/run", "/run/kiln/state", "/my dir"}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("MountPoints = %q, %v", got, err)
	}
}

// StartButtons must have the button open when it returns: initd prints the
// ready line right after, and a press before the open would be lost.
func TestStartButtonsOpensBeforeReturning(t *testing.T) {
	sys, dev := t.TempDir(), t.TempDir()
	os.MkdirAll(filepath.Join(sys, "event0", "device"), 0o755)
	os.WriteFile(filepath.Join(sys, "event0", "device/name"), []byte("Power Button\n"), 0o644)
	os.WriteFile(filepath.Join(dev, "event0"), event(evKey, keyPower, 1), 0o644)
	var logged []string
	out := make(chan Action, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	StartButtons(ctx, sys, dev, func(f string, a ...any) { logged = append(logged, fmt.Sprintf(f, a...)) }, out)
	if len(logged) != 1 || logged[0] != "power button: watching "+filepath.Join(dev, "event0") {
		t.Fatalf("log when StartButtons returned: %q", logged)
	}
	select {
	case a := <-out:
		if a != Poweroff {
			t.Fatalf("action %v", a)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the press was not forwarded")
	}
}
