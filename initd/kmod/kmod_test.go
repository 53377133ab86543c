package kmod

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestFnmatch(t *testing.T) {
	for _, c := range []struct {
		p, s string
		want bool
	}{
		{"pci:v00001AF4d*sv*sd*bc*sc*i*", "pci:v00001AF4d00001042sv00001AF4sd00001100bc01sc00i00", true},
		{"pci:v00001AF4d*sv*sd*bc*sc*i*", "pci:v00008086d00001042sv00001AF4sd00001100bc01sc00i00", false},
		{"acpi*:PNP0C0C:*", "acpi:PNP0C0C:", true},
		{"acpi*:LNXPWRBN:*", "acpi:LNXPWRBN:", true},
		{"a?c", "abc", true},
		{"a?c", "ac", false},
		{"usb:v*p*d*dc*dsc*dp*ic08isc0[1-6]ip50in*", "usb:v46F4p0001d0000dc00dsc00dp00ic08isc06ip50in00", true},
		{"x[!0-9]", "xa", true},
		{"x[!0-9]", "x5", false},
		{"of:N*T*Cvirtio,mmio", "of:NvirtioTCvirtio,mmio", true},
		{"a/b*", "a/bc", true},
		{`a\*`, "a*", true},
		{"*", "", true},
		{"a*b*c", "aXbYbZc", true},
		{"a*b*c", "aXbYbZ", false},
	} {
		if got := fnmatch(c.p, c.s); got != c.want {
			t.Errorf("fnmatch(%q, %q) = %v, want %v", c.p, c.s, got, c.want)
		}
	}
}

func openTestdata(t *testing.T) *Loader {
	t.Helper()
	l, err := Open("testdata")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// The modaliases below are what QEMU's devices report in sysfs.
func TestAliasMatchRealExcerpt(t *testing.T) {
	l := openTestdata(t)
	for alias, want := range map[string][]string{
		"pci:v00001AF4d00001001sv00001AF4sd00000002bc01sc00i00": {"virtio_pci"},
		"virtio:d00000002v00001AF4":                             {"virtio_blk"},
		"virtio:d00000008v00001AF4":                             {"virtio_scsi"},
		"scsi:t-0x05":                                           {"sr_mod"},
		"acpi:LNXPWRBN:":                                        {"button"},
		"pci:v00008086d00007010sv00001AF4sd00001100bc01sc01i80": {"ata_generic"}, // PIIX IDE (ata_piix claims it by class only for other IDs)
		"pci:v00001B36d00000010sv00001AF4sd00001100bc01sc08i02": {"nvme"},
		"usb:v0000p0000d0000dc00dsc00dp00ic08isc06ip50in00":     {"usb_storage"},
	} {
		if got := l.Aliases.Match(alias); !reflect.DeepEqual(got, want) {
			t.Errorf("Match(%s) = %v, want %v", alias, got, want)
		}
	}
}

func TestDepOrder(t *testing.T) {
	l := openTestdata(t)
	got, err := l.Deps.Order("virtio_pci")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"virtio_ring", "virtio", "virtio_pci_modern_dev", "virtio_pci_legacy_dev", "virtio_pci"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Order(virtio_pci) = %v, want %v", got, want)
	}
	got, _ = l.Deps.Order("usb-storage")
	if got[len(got)-1] != "usb_storage" || indexOf(got, "usb_common") > indexOf(got, "usbcore") {
		t.Errorf("Order(usb-storage) = %v", got)
	}
	if _, err := l.Deps.Order("sd_mod"); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "(needed by sd_mod)") {
		t.Errorf("missing dependency error = %v", err)
	}
	d := Deps{"a": {Path: "a.ko", Deps: []string{"b"}}, "b": {Path: "b.ko", Deps: []string{"a"}}}
	if _, err := d.Order("a"); err == nil || !strings.Contains(err.Error(), "cycle") {
		t.Errorf("cycle error = %v", err)
	}
}

func indexOf(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

func TestLoaderAndColdplug(t *testing.T) {
	l := openTestdata(t)
	var mu sync.Mutex
	var inserted []string
	l.Insert = func(p, _ string) error { mu.Lock(); inserted = append(inserted, Name(p)); mu.Unlock(); return nil }
	if err := l.Load("virtio_blk"); err != nil {
		t.Fatal(err)
	}
	if err := l.Load("squashfs"); err != nil {
		t.Fatal(err)
	}
	if err := l.Load("nosuch"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Load(nosuch) = %v", err)
	}
	// A fake sysfs: two devices wanting virtio_pci and virtio_scsi, one unknown.
	sys := t.TempDir()
	for dir, alias := range map[string]string{
		"pci0000:00/0000:00:03.0":         "pci:v00001AF4d00001004sv00001AF4sd00000008bc01sc00i00",
		"pci0000:00/0000:00:03.0/virtio1": "virtio:d00000008v00001AF4",
		"pci0000:00/0000:00:01.0":         "pci:v00008086d00001237sv00001AF4sd00001100bc06sc00i00",
		"pci0000:00/0000:00:04.0/virtio2": "virtio:d00000008v00001AF4", // same alias twice
	} {
		os.MkdirAll(filepath.Join(sys, dir), 0o755)
		os.WriteFile(filepath.Join(sys, dir, "modalias"), []byte(alias+"\n"), 0o644)
	}
	aliases, err := Modaliases(sys)
	if err != nil || len(aliases) != 3 {
		t.Fatalf("Modaliases = %v, %v", aliases, err)
	}
	done := map[string]bool{}
	nd, nl := l.Coldplug(aliases, done, 1)
	if nd != 3 || nl != 2 {
		t.Fatalf("Coldplug = %d devices, %d modules", nd, nl)
	}
	if nd, nl := l.Coldplug(aliases, done, 1); nd != 0 || nl != 0 {
		t.Errorf("second Coldplug = %d, %d; want nothing new", nd, nl)
	}
	want := []string{"virtio_ring", "virtio", "virtio_blk", "squashfs",
		"virtio_pci_modern_dev", "virtio_pci_legacy_dev", "virtio_pci", "scsi_common", "scsi_mod", "virtio_scsi"}
	if !reflect.DeepEqual(inserted, want) {
		t.Errorf("inserted %v\nwant %v", inserted, want)
	}
}

// Concurrent loads insert each module once and never before its
// dependencies have finished loading.
func TestConcurrentLoads(t *testing.T) {
	l := openTestdata(t)
	var mu sync.Mutex
	count := map[string]int{}
	l.Insert = func(p, _ string) error {
		m := Name(p)
		mu.Lock()
		for _, d := range l.Deps[m].Deps {
			if count[d] != 1 {
				t.Errorf("%s inserted before its dependency %s finished", m, d)
			}
		}
		mu.Unlock()
		time.Sleep(time.Millisecond) // let the others pile up on the same modules
		mu.Lock()
		count[m]++
		mu.Unlock()
		return nil
	}
	aliases := []string{
		"pci:v00001AF4d00001004sv00001AF4sd00000008bc01sc00i00",
		"virtio:d00000008v00001AF4",
		"virtio:d00000002v00001AF4",
		"scsi:t-0x05",
		"usb:v0000p0000d0000dc00dsc00dp00ic08isc06ip50in00",
	}
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); l.Coldplug(aliases, map[string]bool{}, 8) }()
	}
	wg.Wait()
	for m, n := range count {
		if n != 1 {
			t.Errorf("%s inserted %d times", m, n)
		}
	}
	for _, m := range []string{"virtio_pci", "virtio_scsi", "virtio_blk", "sr_mod", "usb_storage"} {
		if count[m] != 1 || !l.Loaded(m) {
			t.Errorf("%s: inserted %d times, Loaded %v", m, count[m], l.Loaded(m))
		}
	}
}

// A failed insertion is reported to every caller waiting on it and is not
// retried for each device that wants the module.
func TestLoadFailure(t *testing.T) {
	l := openTestdata(t)
	tries := 0
	l.Insert = func(p, _ string) error {
		if Name(p) == "virtio" {
			tries++
			return errors.New("exec format error")
		}
		return nil
	}
	for i := 0; i < 2; i++ {
		if err := l.Load("virtio_blk"); err == nil || !strings.Contains(err.Error(), "load module virtio") {
			t.Errorf("Load = %v", err)
		}
	}
	if tries != 1 || l.Loaded("virtio") || l.Loaded("virtio_blk") {
		t.Errorf("tries %d, Loaded(virtio) %v", tries, l.Loaded("virtio"))
	}
}

func TestMarkLoadedFromProcModules(t *testing.T) {
	f, err := os.Open("testdata/proc-modules")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	names, err := ReadProcModules(f)
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != 6 || names[0] != "virtio_net" || names[5] != "crc32c_intel" {
		t.Fatalf("ReadProcModules = %v", names)
	}
	l := openTestdata(t)
	var inserted []string
	l.Insert = func(p, _ string) error { inserted = append(inserted, Name(p)); return nil }
	l.MarkLoaded(names)
	n, err := l.LoadAlias("virtio:d00000001v00001AF4") // virtio_net, already there
	if err != nil || n != 0 {
		t.Errorf("LoadAlias(virtio_net) = %d, %v", n, err)
	}
	if err := l.Load("virtio_blk"); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(inserted, []string{"virtio_blk"}) {
		t.Errorf("inserted %v, want only virtio_blk (virtio, virtio_ring from /proc/modules)", inserted)
	}
}

// The literal-prefix shortcut in Match must not change what matches.
func TestMatchPrefilter(t *testing.T) {
	l := openTestdata(t)
	for _, alias := range []string{
		"pci:v00001AF4d00001001sv00001AF4sd00000002bc01sc00i00",
		"pci:v00008086d00002922sv00001AF4sd00001100bc01sc06i01",
		"virtio:d00000001v00001AF4",
		"acpi:LNXPWRBN:",
		"scsi:t-0x00",
		"usb:v0781p5567d0100dc00dsc00dp00ic08isc06ip50in00",
		"cpu:type:x86,ven0000fam0006mod003F:feature:,0000,0001,0002,0094",
	} {
		var want []string
		seen := map[string]bool{}
		for _, e := range l.Aliases.entries {
			if !seen[e.module] && fnmatch(e.pattern, alias) {
				seen[e.module] = true
				want = append(want, e.module)
			}
		}
		if got := l.Aliases.Match(alias); !reflect.DeepEqual(got, want) {
			t.Errorf("Match(%s) = %v, brute force %v", alias, got, want)
		}
	}
	// Patterns that name no bus (a wildcard first, or no ':') still match,
	// in file order among the bus's own.
	a, err := ParseAlias(strings.NewReader("alias pci:v00001AF4d* virtio_pci\n" +
		"alias *:d00000001v* anybus\n" +
		"alias pci:v00001AF4d00001000* virtio_net_pci\n" +
		"alias pci* pcistar\n" +
		"alias fs-ext4 ext4\n" +
		"alias devname:loop-control loop\n"))
	if err != nil {
		t.Fatal(err)
	}
	for alias, want := range map[string][]string{
		"pci:v00001AF4d00001000sv00001AF4sd00000001bc02sc00i00": {"virtio_pci", "virtio_net_pci", "pcistar"},
		"virtio:d00000001v00001AF4":                             {"anybus"},
		"fs-ext4":                                               {"ext4"},
		"devname:loop-control":                                  {"loop"},
		"usb:v1234":                                             nil,
	} {
		if got := a.Match(alias); !reflect.DeepEqual(got, want) {
			t.Errorf("Match(%s) = %v, want %v", alias, got, want)
		}
	}
}

// DeviceModaliases reads only bus and class devices; on a fake sysfs laid
// out like the kernel's it finds the same set as the full walk.
func TestDeviceModaliasesFake(t *testing.T) {
	sys := t.TempDir()
	dev := func(path, alias string) {
		os.MkdirAll(filepath.Join(sys, path), 0o755)
		if alias != "" {
			os.WriteFile(filepath.Join(sys, path, "modalias"), []byte(alias+"\n"), 0o444)
		}
	}
	link := func(dir, name, target string) {
		os.MkdirAll(filepath.Join(sys, dir), 0o755)
		if err := os.Symlink(target, filepath.Join(sys, dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	dev("devices/pci0000:00/0000:00:02.0", "pci:v00001AF4d00001000sv00001AF4sd00000001bc02sc00i00")
	dev("devices/pci0000:00/0000:00:02.0/virtio0", "virtio:d00000001v00001AF4")
	dev("devices/pci0000:00/0000:00:02.0/virtio0/net/eth0", "") // class device without modalias
	dev("devices/LNXSYSTM:00/LNXPWRBN:00", "acpi:LNXPWRBN:")
	dev("devices/system/cpu", "cpu:type:x86,ven0000fam0006mod003F:feature:,0000,0094")
	dev("devices/system/cpu/cpu0", "")
	link("bus/cpu/devices", "cpu0", "../../../devices/system/cpu/cpu0")
	dev("devices/LNXSYSTM:00/LNXPWRBN:00/input/input2", "input:b0019v0000p0001e0000-e0,1,k74,ramlsfw")
	link("bus/pci/devices", "0000:00:02.0", "../../../devices/pci0000:00/0000:00:02.0")
	link("bus/virtio/devices", "virtio0", "../../../devices/pci0000:00/0000:00:02.0/virtio0")
	link("bus/acpi/devices", "LNXPWRBN:00", "../../../devices/LNXSYSTM:00/LNXPWRBN:00")
	os.MkdirAll(filepath.Join(sys, "bus/usb/devices"), 0o755) // a bus with no devices
	link("class/input", "input2", "../../devices/LNXSYSTM:00/LNXPWRBN:00/input/input2")
	dev("devices/virtual/dmi/id", "dmi:bvnSeaBIOS:bvr1.16:svnQEMU:pnStandardPC(Q35+ICH9,2009):")
	link("class/dmi", "id", "../../devices/virtual/dmi/id")
	dev("devices/system/memory/memory0", "")
	link("bus/memory/devices", "memory0", "../../../devices/system/memory/memory0")
	link("class/net", "eth0", "../../devices/pci0000:00/0000:00:02.0/virtio0/net/eth0")
	fast, err := DeviceModaliases(sys)
	if err != nil {
		t.Fatal(err)
	}
	walk, err := Modaliases(filepath.Join(sys, "devices"))
	if err != nil {
		t.Fatal(err)
	}
	if len(fast) != 6 || !reflect.DeepEqual(fast, walk) {
		t.Errorf("DeviceModaliases = %q\nfull walk        = %q", fast, walk)
	}
	if _, err := DeviceModaliases(filepath.Join(sys, "nosuch")); err == nil {
		t.Error("missing sysfs accepted")
	}
	// The streaming form gives PCI devices first (acpi sorts before pci).
	var order []string
	if err := EachDeviceModalias(sys, func(a string) { order = append(order, a) }); err != nil {
		t.Fatal(err)
	}
	if len(order) == 0 || !strings.HasPrefix(order[0], "pci:") {
		t.Errorf("EachDeviceModalias order %q: want the PCI device first", order)
	}
}

// On the machine running the tests the real sysfs is the oracle: every
// modalias the full walk of /sys/devices finds, the fast enumeration finds.
func TestDeviceModaliasesRealSysfs(t *testing.T) {
	if _, err := os.Stat("/sys/bus"); err != nil {
		t.Fatalf("this test reads the real sysfs: %v", err)
	}
	walk, err := Modaliases("/sys/devices")
	if err != nil {
		t.Fatal(err)
	}
	fast, err := DeviceModaliases("/sys")
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, a := range fast {
		have[a] = true
	}
	for _, a := range walk {
		if !have[a] {
			t.Errorf("full walk found %q, DeviceModaliases did not", a)
		}
	}
	t.Logf("%d modaliases", len(walk))
}

// Async loads pass AsyncProbe to every module they insert, dependencies
// included; plain loads pass nothing.
func TestAsyncProbeParam(t *testing.T) {
	l, err := Open("testdata")
	if err != nil {
		t.Fatal(err)
	}
	params := map[string]string{}
	l.Insert = func(p, args string) error { params[Name(p)] = args; return nil }
	if _, err := l.LoadAliasAsync("virtio:d00000002v00001AF4"); err != nil { // virtio_blk
		t.Fatal(err)
	}
	if err := l.Load("isofs"); err != nil {
		t.Fatal(err)
	}
	if params["virtio_blk"] != AsyncProbe || params["virtio_ring"] != AsyncProbe {
		t.Errorf("async load params %q", params)
	}
	if p, ok := params["isofs"]; !ok || p != "" || params["cdrom"] != "" {
		t.Errorf("plain load params %q", params)
	}
}
