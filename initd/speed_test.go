package initd

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kilnproject/kiln/initd/bootlog"
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
	l.Insert = func(p, _ string) error {
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

// threadPolicy is the calling thread's scheduling policy.
func threadPolicy(t *testing.T) uint32 {
	a, err := unix.SchedGetAttr(unix.Gettid(), 0)
	if err != nil {
		t.Fatal(err)
	}
	return a.Policy
}

// inBackground runs its function on a SCHED_IDLE thread and leaves the
// caller's thread alone.
func TestInBackground(t *testing.T) {
	before := threadPolicy(t)
	var inside uint32
	<-inBackground(func() { inside = threadPolicy(t) })
	if inside != unix.SCHED_IDLE {
		t.Errorf("background thread policy %d, want SCHED_IDLE (%d)", inside, unix.SCHED_IDLE)
	}
	if after := threadPolicy(t); after != before {
		t.Errorf("caller's policy changed from %d to %d", before, after)
	}
}

func TestColdplugStateRoundTrip(t *testing.T) {
	p := filepath.Join(t.TempDir(), "run/kiln/coldplug")
	digest := "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	handled := []string{"acpi:LNXPWRBN:", "pci:v00001AF4d00001000sv00001AF4sd00000001bc02sc00i00", "virtio:d00000001v00001AF4"}
	if err := writeColdplugState(p, digest, handled); err != nil {
		t.Fatal(err)
	}
	d, done, err := readColdplugState(p)
	if err != nil || d != digest || len(done) != 3 || !done["acpi:LNXPWRBN:"] {
		t.Errorf("read back %q %v %v", d, done, err)
	}
	os.WriteFile(p, []byte("garbage\nvirtio:d00000001v00001AF4\n"), 0o644)
	if _, _, err := readColdplugState(p); err == nil {
		t.Error("state without a digest accepted")
	}
	if _, _, err := readColdplugState(filepath.Join(t.TempDir(), "none")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing state: %v", err)
	}
}

// The digest changes with the module index, so a system image with other
// modules than the initramfs gets every device matched again.
func TestModuleIndexDigest(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"modules.dep", "modules.alias"} {
		b, _ := os.ReadFile(filepath.Join("kmod/testdata", f))
		os.WriteFile(filepath.Join(dir, f), b, 0o644)
	}
	d1, err := kmod.Digest(dir)
	if err != nil || len(d1) != 64 {
		t.Fatalf("Digest = %q, %v", d1, err)
	}
	if d2, _ := kmod.Digest("kmod/testdata"); d2 != d1 {
		t.Error("same index, different digest")
	}
	f, _ := os.OpenFile(filepath.Join(dir, "modules.alias"), os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("alias pci:v00001234d* extra_driver\n")
	f.Close()
	if d3, _ := kmod.Digest(dir); d3 == d1 {
		t.Error("changed index, same digest")
	}
	if _, err := kmod.Digest(filepath.Join(dir, "nosuch")); err == nil {
		t.Error("missing index accepted")
	}
}

func TestParseCPUStat(t *testing.T) {
	busy, idle, err := ParseCPUStat("cpu  120 3 80 400 20 5 7 0 0 0\ncpu0 120 3 80 400 20 5 7 0 0 0\n")
	if err != nil || busy != 2150*time.Millisecond || idle != 4200*time.Millisecond {
		t.Errorf("ParseCPUStat = %v busy, %v idle, %v", busy, idle, err)
	}
	if _, _, err := ParseCPUStat("intr 1 2 3\n"); err == nil {
		t.Error("non-cpu line accepted")
	}
	if _, _, err := ParseCPUStat("cpu 1 2 x 4 5\n"); err == nil {
		t.Error("bad field accepted")
	}
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		t.Fatalf("this test reads the real /proc/stat: %v", err)
	}
	if _, _, err := ParseCPUStat(string(data)); err != nil {
		t.Errorf("real /proc/stat: %v", err)
	}
}

// Storage drivers load first; modaliases as QEMU's q35 and virt machines
// and Hyper-V show them.
func TestMayHoldMedium(t *testing.T) {
	for _, c := range []struct {
		modalias string
		want     bool
	}{
		{"pci:v00008086d00002922sv00001AF4sd00001100bc01sc06i01", true},  // ICH9 AHCI
		{"pci:v00001AF4d00001004sv00001AF4sd00000008bc01sc00i00", true},  // virtio-scsi
		{"pci:v00001B36d0000000Dsv00001AF4sd00001100bc0Csc03i30", true},  // xhci
		{"pci:v00001AF4d00001000sv00001AF4sd00000001bc02sc00i00", false}, // virtio-net
		{"pci:v00001AF4d00001005sv00001AF4sd00000004bc00scFFi00", false}, // virtio-rng
		{"pci:v00008086d00002918sv00001AF4sd00001100bc06sc01i00", false}, // ISA bridge
		{"pci:broken", true},
		{"virtio:d00000002v00001AF4", true},
		{"virtio:d00000008v00001AF4", true},
		{"virtio:d00000001v00001AF4", false},
		{"scsi:t-0x05", true},
		{"usb:v46F4p0001d0000dc00dsc00dp00ic08isc06ip50in00", true},
		{"usb:v0627p0001d0000dc00dsc00dp00ic03isc00ip00in00", false}, // tablet
		{"acpi:LNXPWRBN:", false},
		{"acpi:VMBUS:", true},
		{"cpu:type:x86,ven0000fam0006mod003F:feature:,0000,0001", false},
		{"input:b0019v0000p0001e0000-e0,1,k74,ramlsfw", false},
		{"dmi:bvnSeaBIOS:", false},
		{"platform:9030000.pl011", true},
		{"of:NvirtioT(null)Cvirtio,mmio", true},
	} {
		if got := mayHoldMedium(c.modalias); got != c.want {
			t.Errorf("mayHoldMedium(%q) = %v, want %v", c.modalias, got, c.want)
		}
	}
}

// The system stage runs on in the initramfs's process only when the
// system image's system.json names this binary's digest.
func TestSameInit(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(s), 0o644)
		return p
	}
	const d = "sha256:5f2b"
	same := write("same.json", `{"arch": "amd64", "initd": "sha256:5f2b"}`)
	other := write("other.json", `{"initd": "sha256:0000"}`)
	old := write("old.json", `{"profile": "minimal"}`) // built before system.json carried it
	bad := write("bad.json", `{"initd": `)
	for _, c := range []struct {
		digest, path string
		want         bool
	}{
		{d, same, true},
		{d, other, false},
		{d, old, false},
		{d, bad, false},
		{d, filepath.Join(dir, "missing.json"), false},
		{"", old, false}, // an initramfs without the digest always execs
	} {
		sys, _ := readSystemConfig(c.path)
		if got := sameInit(c.digest, sys); got != c.want {
			t.Errorf("sameInit(%q, %s) = %v, want %v", c.digest, filepath.Base(c.path), got, c.want)
		}
	}
}

// The builder's module index digests are used as they are; anything else
// means "hash the files".
func TestIndexDigest(t *testing.T) {
	hex := strings.Repeat("ab", 32)
	for in, want := range map[string]string{
		"sha256:" + hex:      hex,
		hex:                  "",
		"sha256:" + hex[:10]: "",
		"":                   "",
		"md5:" + hex:         "",
	} {
		if got := indexDigest(in); got != want {
			t.Errorf("indexDigest(%q) = %q, want %q", in, got, want)
		}
	}
}

// A mount loads what its filesystem needs and is not loaded yet (a
// module with a /sys/module entry is), dependencies first; types kiln
// does not know need nothing.
func TestNeedFS(t *testing.T) {
	l, err := kmod.Open("kmod/testdata")
	if err != nil {
		t.Fatal(err)
	}
	var inserted []string
	l.Insert = func(p, _ string) error { inserted = append(inserted, kmod.Name(p)); return nil }
	sysModule := t.TempDir()
	os.Mkdir(filepath.Join(sysModule, "crc32c_generic"), 0o755) // already in the kernel
	var console bytes.Buffer
	b := &Boot{modules: l, sysModule: sysModule, Log: bootlog.New(&console)}
	b.needFS("ext4")
	want := []string{"jbd2", "mbcache", "crc16", "ext4"} // modules.dep order, reversed
	if strings.Join(inserted, " ") != strings.Join(want, " ") {
		t.Errorf("ext4 inserted %v, want %v", inserted, want)
	}
	inserted = nil
	b.needFS("tmpfs")
	b.needFS("proc")
	if len(inserted) != 0 {
		t.Errorf("built-in filesystems inserted %v", inserted)
	}
	if console.Len() != 0 {
		t.Errorf("logged %q", console.String())
	}
}

// On an ISO boot the CD-ROM driver loads with the first SCSI host driver,
// before the host announces a device; the announcement is then nothing
// new. A driver that is no SCSI host starts nothing extra.
func TestColdplugPreloadsSCSIDevices(t *testing.T) {
	l, err := kmod.Open("kmod/testdata")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var inserted []string
	l.Insert = func(p, _ string) error {
		mu.Lock()
		inserted = append(inserted, kmod.Name(p))
		mu.Unlock()
		return nil
	}
	has := func(m string) bool {
		mu.Lock()
		defer mu.Unlock()
		for _, i := range inserted {
			if i == m {
				return true
			}
		}
		return false
	}
	c := newColdplugger(l, t.TempDir(), t.Logf)
	c.scsiDevices = isoDevices
	c.add("virtio:d00000001v00001AF4") // virtio_net: no SCSI host
	c.wait()
	if has("sr_mod") || has("sd_mod") {
		t.Fatalf("a NIC preloaded SCSI device drivers: %v", inserted)
	}
	c.add("virtio:d00000008v00001AF4") // virtio_scsi
	c.wait()
	if !has("sr_mod") || !has("cdrom") {
		t.Errorf("after a SCSI host driver, inserted %v: want sr_mod and cdrom too", inserted)
	}
	if has("sd_mod") {
		t.Errorf("the disk driver was preloaded too: %v", inserted)
	}
	if c.add("scsi:t-0x05") {
		t.Error("the CD-ROM's announcement was new after the preload")
	}
}

// hurry puts running background work back at the normal priority, and
// background work started after it runs there from the start.
func TestHurry(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("lowering a thread's niceness needs root")
	}
	defer func() { niced.Lock(); niced.hurried = false; niced.Unlock() }()
	prio := func() uint32 { return threadPolicy(t) }
	started, release := make(chan uint32), make(chan struct{})
	var after uint32
	done := inBackground(func() {
		started <- prio()
		<-release
		after = prio()
	})
	before := <-started
	hurry()
	close(release)
	<-done
	if before != unix.SCHED_IDLE || after != schedOther {
		t.Errorf("background thread policy %d before hurry and %d after, want SCHED_IDLE and SCHED_OTHER", before, after)
	}
	var later uint32
	<-inBackground(func() { later = prio() })
	if later != schedOther {
		t.Errorf("background work after hurry at policy %d, want SCHED_OTHER", later)
	}
}

// CPU-feature drivers and hardware RNGs are deferred: nothing is
// inserted for them, and they are not reported handled (the system stage
// finds them again and loads them after ready). loadProviders inserts the
// ones implementing a checksum a mount is about to pick (crc32c for ext4)
// and nothing else.
func TestColdplugDefersAfterReadyDrivers(t *testing.T) {
	c, inserted := recordingColdplugger(t)
	const cpu = "cpu:type:x86,ven0002fam000Fmod006B:feature:,0000,0081,0094,00C0"
	const rng = "virtio:d00000004v00001AF4"
	const blk = "virtio:d00000002v00001AF4"
	for _, a := range []string{cpu, rng, blk} {
		if !c.add(a) {
			t.Errorf("add(%q) = false for a new device", a)
		}
	}
	if c.add(cpu) {
		t.Error("a deferred device was new again")
	}
	c.wait()
	if inserted("crc32c_intel") || inserted("virtio_rng") || !inserted("virtio_blk") {
		t.Fatal("want virtio_blk and its dependencies inserted, nothing else")
	}
	if h := strings.Join(c.handled(), " "); h != blk {
		t.Errorf("handled %q, want only the disk", h)
	}
	c.loadProviders(fsChecksums["ext4"]...)
	c.wait()
	if !inserted("crc32c_intel") {
		t.Error("loadProviders(crc32c): crc32c_intel not inserted")
	}
	if inserted("crct10dif_pclmul") || inserted("virtio_rng") {
		t.Error("loadProviders(crc32c) inserted more than crc32c's drivers")
	}
	if h := strings.Join(c.handled(), " "); h != blk {
		t.Errorf("handled %q after loadProviders, want only the disk: the rest loads after ready", h)
	}
}

func TestAfterReady(t *testing.T) {
	for a, want := range map[string]bool{
		"cpu:type:x86,ven0000fam0006mod003A:feature:,0000,0094": true,
		"cpu:type:aarch64:feature:,0000,0001":                   true,
		"virtio:d00000004v00001AF4":                             true, // entropy
		"virtio:d00000001v00001AF4":                             false,
		"virtio:d00000002v00001AF4":                             false,
		"pci:v00008086d00002922sv00001AF4sd00001100bc01sc06i01": false,
		"acpi:LNXPWRBN:":                                        false, // the power button is wanted from the start
		"input:b0019v0000p0001e0000-e0,1,k74,ramlsfw":           false,
	} {
		if got := afterReady(a); got != want {
			t.Errorf("afterReady(%q) = %v, want %v", a, got, want)
		}
	}
}

// recordingColdplugger is a coldplugger over kmod's testdata index that
// records insertions instead of making them; has reports whether a module
// was inserted.
func recordingColdplugger(t *testing.T) (c *coldplugger, has func(module string) bool) {
	t.Helper()
	l, err := kmod.Open("kmod/testdata")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	inserted := map[string]bool{}
	l.Insert = func(p, _ string) error { mu.Lock(); inserted[kmod.Name(p)] = true; mu.Unlock(); return nil }
	return newColdplugger(l, t.TempDir(), t.Logf), func(m string) bool { mu.Lock(); defer mu.Unlock(); return inserted[m] }
}

// On a one-CPU machine the boot runs with two Ps, then the runtime's
// default again; a GOMAXPROCS from the environment is kept.
func TestBootProcs(t *testing.T) {
	if os.Getenv("GOMAXPROCS") != "" {
		t.Skip("GOMAXPROCS set in the environment")
	}
	defer runtime.SetDefaultGOMAXPROCS()
	runtime.GOMAXPROCS(1) // as the default is on one CPU
	restore := bootProcs()
	if n := runtime.GOMAXPROCS(0); n != 2 {
		t.Errorf("during boot GOMAXPROCS = %d, want 2", n)
	}
	restore()
	if n, want := runtime.GOMAXPROCS(0), runtime.NumCPU(); n != want {
		t.Errorf("after boot GOMAXPROCS = %d, want the default %d", n, want)
	}
	t.Setenv("GOMAXPROCS", "1")
	runtime.GOMAXPROCS(1)
	bootProcs()()
	if n := runtime.GOMAXPROCS(0); n != 1 {
		t.Errorf("with GOMAXPROCS=1 in the environment: %d", n)
	}
}
