package kmod

import (
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Modaliases walks a sysfs devices tree (normally /sys/devices) and returns
// the contents of every modalias file, sorted and without duplicates.
// Symlinks are not followed, so each device is seen once.
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
		b, err := os.ReadFile(p)
		if err != nil {
			return nil
		}
		if s := strings.TrimSpace(string(b)); s != "" {
			seen[s] = true
		}
		return nil
	})
	out := make([]string, 0, len(seen))
	for s := range seen {
		out = append(out, s)
	}
	sort.Strings(out)
	return out, err
}

// Coldplug loads modules for every modalias under root that was not handled
// by an earlier call. It returns the number of new devices and of modules
// loaded; failures are logged, never fatal (a missing driver is normal for
// devices the image does not need).
func (l *Loader) Coldplug(root string, done map[string]bool) (newDevices, loaded int, err error) {
	aliases, err := Modaliases(root)
	for _, a := range aliases {
		if done[a] {
			continue
		}
		done[a] = true
		newDevices++
		n, lerr := l.LoadAlias(a)
		loaded += n
		if lerr != nil {
			l.logf("coldplug %s: %v", a, lerr)
		}
	}
	return newDevices, loaded, err
}
