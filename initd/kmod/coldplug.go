package kmod

import (
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
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
		readModalias(p, seen)
		return nil
	})
	return sorted(seen), err
}

// DeviceModaliases returns the modalias of every device in a sysfs mount
// (normally /sys), sorted and without duplicates. Only devices on a bus
// (/sys/bus/*/devices/*), class devices (/sys/class/*/*, e.g. input) and
// subsystem roots (/sys/devices/system/*, e.g. cpu with its feature list)
// carry a modalias, so it reads those few directories instead of the whole
// /sys/devices tree (thousands of directories: seconds under emulation).
func DeviceModaliases(sys string) ([]string, error) {
	seen := map[string]bool{}
	buses, err := os.ReadDir(filepath.Join(sys, "bus"))
	if err != nil {
		return nil, err
	}
	for _, b := range buses {
		dir := filepath.Join(sys, "bus", b.Name(), "devices")
		devs, _ := os.ReadDir(dir) // a bus may vanish or have no devices yet
		for _, d := range devs {
			readModalias(filepath.Join(dir, d.Name(), "modalias"), seen)
		}
	}
	classes, _ := os.ReadDir(filepath.Join(sys, "class"))
	for _, c := range classes {
		dir := filepath.Join(sys, "class", c.Name())
		devs, _ := os.ReadDir(dir)
		for _, d := range devs {
			readModalias(filepath.Join(dir, d.Name(), "modalias"), seen)
		}
	}
	roots, _ := os.ReadDir(filepath.Join(sys, "devices", "system"))
	for _, r := range roots {
		readModalias(filepath.Join(sys, "devices", "system", r.Name(), "modalias"), seen)
	}
	return sorted(seen), nil
}

func readModalias(p string, seen map[string]bool) {
	b, err := os.ReadFile(p)
	if err != nil {
		return
	}
	if s := strings.TrimSpace(string(b)); s != "" {
		seen[s] = true
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
