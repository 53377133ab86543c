package kmod

import (
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/kilnproject/kiln/initd/sysfs"
)

// Modaliases walks a sysfs devices tree (normally /sys/devices) and returns
// the contents of every modalias file, sorted and without duplicates.
// Symlinks are not followed, so each device is seen once. It reads every
// directory of the tree (thousands under QEMU): DeviceModaliases is the
// fast way on a real sysfs.
func Modaliases(root string) ([]string, error) {
	seen := map[string]bool{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			// Devices come and go while we walk; skip what vanished.
			if p == root {
				return err
			}
			return nil
		}
		if d.Name() != "modalias" || d.IsDir() {
			return nil
		}
		if b, err := os.ReadFile(p); err == nil {
			if s := strings.TrimSpace(string(b)); s != "" {
				seen[s] = true
			}
		}
		return nil
	})
	return sorted(seen), err
}

// DeviceModaliases returns the modalias of every device in a sysfs mount
// (normally /sys), sorted and without duplicates (see EachDeviceModalias).
func DeviceModaliases(sys string) ([]string, error) {
	seen := map[string]bool{}
	err := EachDeviceModalias(sys, func(a string) { seen[a] = true })
	if err != nil {
		return nil, err
	}
	return sorted(seen), nil
}

// EachDeviceModalias calls f with the modalias of every device in a sysfs
// mount as it reads them, PCI first: that is where the storage controllers
// are, so a caller loading drivers can start on them while the rest is
// read. f may see a modalias more than once. Only bus devices
// (/sys/bus/*/devices/*), a few classes (input, dmi) and subsystem roots
// (/sys/devices/system/*, e.g. cpu with its feature list) carry one, so it
// reads those instead of the whole /sys/devices tree: thousands of
// directories, seconds under emulation.
func EachDeviceModalias(sys string, f func(string)) error {
	buses, err := sysfs.ReadDirNames(filepath.Join(sys, "bus"))
	if err != nil {
		return err
	}
	sort.SliceStable(buses, func(i, j int) bool { return buses[i] == "pci" && buses[j] != "pci" })
	for _, b := range buses {
		if noModalias[b] {
			continue
		}
		devicesIn(filepath.Join(sys, "bus", b, "devices"), f)
	}
	for _, c := range modaliasClasses {
		devicesIn(filepath.Join(sys, "class", c), f)
	}
	roots, _ := sysfs.ReadDirNames(filepath.Join(sys, "devices", "system"))
	for _, r := range roots {
		readModalias(filepath.Join(sys, "devices", "system", r, "modalias"), f)
	}
	return nil
}

// noModalias are buses whose devices never have a modalias (their uevents
// carry none); some have one device per CPU or memory block.
var noModalias = map[string]bool{
	"clockevents": true, "clocksource": true, "container": true, "cpu": true, "event_source": true,
	"machinecheck": true, "memory": true, "node": true, "workqueue": true,
}

// modaliasClasses are the device classes that export a modalias: input
// devices (evdev, joydev, ...) and the DMI identity (platform drivers).
var modaliasClasses = []string{"dmi", "input"}

// devicesIn reads the modalias of every device linked from dir.
func devicesIn(dir string, f func(string)) {
	devs, _ := sysfs.ReadDirNames(dir) // a bus may vanish or have no devices yet
	for _, d := range devs {
		readModalias(filepath.Join(dir, d, "modalias"), f)
	}
}

func readModalias(p string, f func(string)) {
	if s, err := sysfs.ReadAttr(p); err == nil && s != "" {
		f(s)
	}
}

func sorted(set map[string]bool) []string {
	out := make([]string, 0, len(set))
	for s := range set {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// Coldplug loads modules for every modalias not handled by an earlier call
// (done records them). Devices are handled concurrently, at most workers at
// a time (1 if workers < 1): a driver whose probe waits for hardware (ahci
// resetting its links) does not hold up the others, and modules shared by
// several devices are still inserted once. It returns the number of new
// devices and of modules this call loaded; failures are logged, never
// fatal (a missing driver is normal for devices the image does not need).
func (l *Loader) Coldplug(modaliases []string, done map[string]bool, workers int) (newDevices, loaded int) {
	var todo []string
	for _, a := range modaliases {
		if !done[a] {
			done[a] = true
			todo = append(todo, a)
		}
	}
	if workers < 1 {
		workers = 1
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, workers)
	for _, a := range todo {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			n, err := l.LoadAlias(a)
			mu.Lock()
			loaded += n
			mu.Unlock()
			if err != nil {
				l.logf("coldplug %s: %v", a, err)
			}
		}()
	}
	wg.Wait()
	return len(todo), loaded
}
