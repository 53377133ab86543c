package loop

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// Attaching a loop device is harmless on the host (autoclear, read-only),
// but needs root and /dev/loop-control.
func TestAttach(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("loop devices need root")
	}
	if _, err := os.Stat("/dev/loop-control"); err != nil {
		t.Skipf("no /dev/loop-control on this host: %v", err)
	}
	p := filepath.Join(t.TempDir(), "img")
	os.WriteFile(p, make([]byte, 1<<20), 0o644)
	f, err := Attach(p, true)
	if err != nil {
		t.Fatal(err)
	}
	dev := f.Name()
	defer func() {
		unix.IoctlSetInt(int(f.Fd()), unix.LOOP_CLR_FD, 0)
		f.Close()
	}()
	info, err := unix.IoctlLoopGetStatus64(int(f.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	name := strings.TrimRight(string(info.File_name[:]), "\x00")
	if name != p || info.Flags&unix.LO_FLAGS_READ_ONLY == 0 {
		t.Fatalf("%s: file %q flags %#x", dev, name, info.Flags)
	}
}
