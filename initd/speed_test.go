package initd

import (
	"bytes"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/kilnproject/kiln/initd/kmod"
	"golang.org/x/sys/unix"
)

func TestStampedConsole(t *testing.T) {
	var out bytes.Buffer
	c := &stampedConsole{w: &out, now: func() time.Duration { return 3456 * time.Millisecond }}
	c.Write([]byte("kiln: before debug\n"))
	c.on.Store(true)
	n, err := c.Write([]byte("kiln: one\nkiln: two\nraw line\n"))
	if err != nil || n != len("kiln: one\nkiln: two\nraw line\n") {
		t.Fatalf("Write = %d, %v", n, err)
	}
	want := "kiln: before debug\nkiln: [3.456] one\nkiln: [3.456] two\nraw line\n"
	if out.String() != want {
		t.Errorf("console\n%q\nwant\n%q", out.String(), want)
	}
	if uptime() <= 0 {
		t.Error("uptime() is not positive")
	}
}

func TestPrefetch(t *testing.T) {
	p := filepath.Join(t.TempDir(), "init")
	data := bytes.Repeat([]byte("0123456789abcdef"), 50000) // several buffers' worth
	os.WriteFile(p, data, 0o755)
	n, _, err := prefetch(p)
	if err != nil || n != int64(len(data)) {
		t.Errorf("prefetch = %d bytes, %v; want %d", n, err, len(data))
	}
	if _, _, err := prefetch(filepath.Join(t.TempDir(), "nosuch")); err == nil {
		t.Error("missing file accepted")
	}
}

// The coldplugger loads each announced device's driver once, whether the
// device came from a sysfs scan or a uevent, and wait returns the totals.
func TestColdplugger(t *testing.T) {
	l, err := kmod.Open("kmod/testdata")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var inserted []string
	l.Insert = func(p string) error {
		mu.Lock()
		inserted = append(inserted, kmod.Name(p))
		mu.Unlock()
		return nil
	}
	sys := t.TempDir()
	dev := filepath.Join(sys, "devices/pci0000:00/0000:00:04.0")
	os.MkdirAll(dev, 0o755)
	os.WriteFile(filepath.Join(dev, "modalias"), []byte("pci:v00001AF4d00001004sv00001AF4sd00000008bc01sc00i00\n"), 0o444)
	os.MkdirAll(filepath.Join(sys, "bus/pci/devices"), 0o755)
	os.Symlink("../../../devices/pci0000:00/0000:00:04.0", filepath.Join(sys, "bus/pci/devices/0000:00:04.0"))

	var logged []string
	c := newColdplugger(l, sys, func(f string, a ...any) { mu.Lock(); logged = append(logged, f); mu.Unlock() })
	if n := c.scan(); n != 1 {
		t.Errorf("scan found %d new devices, want 1", n)
	}
	if n := c.scan(); n != 0 {
		t.Errorf("second scan found %d new devices, want 0", n)
	}
	c.add("virtio:d00000008v00001AF4") // virtio_scsi, announced by a uevent
	c.add("virtio:d00000008v00001AF4")
	c.add("scsi:t-0x05")
	nd, nl := c.wait()
	if nd != 3 || nl != 3 {
		t.Errorf("wait = %d devices, %d modules; want 3, 3", nd, nl)
	}
	sort.Strings(inserted)
	want := []string{"cdrom", "scsi_common", "scsi_mod", "sr_mod", "virtio", "virtio_pci", "virtio_pci_legacy_dev", "virtio_pci_modern_dev", "virtio_ring", "virtio_scsi"}
	if len(inserted) != len(want) {
		t.Fatalf("inserted %v\nwant     %v", inserted, want)
	}
	for i := range want {
		if inserted[i] != want[i] {
			t.Fatalf("inserted %v\nwant     %v", inserted, want)
		}
	}
	if len(logged) != 0 {
		t.Errorf("logged %v", logged)
	}
}

// inBackground runs its function on a thread of lower priority and
// leaves the caller's thread alone.
func TestInBackground(t *testing.T) {
	before, err := unix.Getpriority(unix.PRIO_PROCESS, 0)
	if err != nil {
		t.Fatal(err)
	}
	var inside int
	<-inBackground(func() { inside, _ = unix.Getpriority(unix.PRIO_PROCESS, unix.Gettid()) })
	// The raw getpriority returns 20-nice; a runner already nicer than 10
	// may not lower its niceness.
	if 20-before <= 10 && inside != 10 {
		t.Errorf("background thread priority %d (nice %d), want nice 10", inside, 20-inside)
	}
	if after, _ := unix.Getpriority(unix.PRIO_PROCESS, 0); after != before {
		t.Errorf("caller's priority changed from %d to %d", before, after)
	}
}
