package kmod

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/kilnproject/kiln/builder/fstree"
	"github.com/kilnproject/kiln/internal/testdeb"
)

// TestDebianKernel checks Select and the regenerated files against kmod's
// own tools on a real Debian kernel package: modinfo for the closure and
// aliases, depmod (run on the written subset) for modules.dep.
func TestDebianKernel(t *testing.T) {
	if testing.Short() {
		t.Skip("downloads a Debian kernel package")
	}
	testdeb.RequireTool(t, "modinfo", "kmod")
	testdeb.RequireTool(t, "depmod", "kmod")
	kdir, kver := testdeb.Kernel(t, "amd64")
	mdir := filepath.Join(kdir, "lib/modules", kver)
	ix, err := Scan(mdir)
	if err != nil {
		t.Fatal(err)
	}
	if ix.KernelVersion != kver || ix.Len() < 1000 {
		t.Fatalf("Scan %s: kver %q, %d modules", mdir, ix.KernelVersion, ix.Len())
	}
	names := []string{"virtio_blk", "squashfs", "overlay", "isofs", "usb-storage", "vfat"}
	set, err := ix.Select(names)
	if err != nil {
		t.Fatal(err)
	}

	// The closure modinfo computes: follow depends= from the named modules
	// (those modinfo cannot find are built in: check modules.builtin).
	want := map[string]bool{}
	var walk func(name string)
	walk = func(name string) {
		name = Normalize(name)
		if want[name] {
			return
		}
		m := ix.Module(name)
		if m == nil {
			if !ix.Builtin(name) {
				t.Fatalf("%s is neither a module nor built in", name)
			}
			return
		}
		want[name] = true
		deps := strings.TrimSpace(testdeb.Run(t, "", "modinfo", "-F", "depends", filepath.Join(mdir, m.Path)))
		for _, d := range strings.Split(deps, ",") {
			if d != "" {
				walk(d)
			}
		}
		// softdep pre: is part of the closure too (modprobe loads those first).
		for _, sd := range strings.Split(testdeb.Run(t, "", "modinfo", "-F", "softdep", filepath.Join(mdir, m.Path)), "\n") {
			if pre, ok := strings.CutPrefix(strings.TrimSpace(sd), "pre:"); ok {
				pre, _, _ = strings.Cut(pre, "post:")
				for _, d := range strings.Fields(pre) {
					for _, dm := range ix.resolveSoft(d) {
						walk(dm.Name)
					}
				}
			}
		}
	}
	for _, n := range names {
		walk(n)
	}
	got := map[string]bool{}
	pos := map[string]int{}
	for i, m := range set.Modules {
		got[m.Name] = true
		pos[m.Name] = i
	}
	if strings.Join(sortedKeys(got), " ") != strings.Join(sortedKeys(want), " ") {
		t.Errorf("closure:\n got  %v\n want %v", sortedKeys(got), sortedKeys(want))
	}
	for _, m := range set.Modules {
		for _, d := range m.Depends {
			if pos[d] > pos[m.Name] {
				t.Errorf("load order: %s before its dependency %s", m.Name, d)
			}
		}
	}
	t.Logf("closure of %v: %v", names, set.Names())

	tr := fstree.New()
	if err := set.AddTo(tr, ""); err != nil {
		t.Fatal(err)
	}
	root := extract(t, tr)
	sub := filepath.Join(root, "lib/modules", kver)
	ours, _ := os.ReadFile(filepath.Join(sub, "modules.dep"))
	oursAlias, _ := os.ReadFile(filepath.Join(sub, "modules.alias"))
	testdeb.Run(t, "", "depmod", "-b", root, kver) // rewrites modules.dep from the modules' symbols
	theirs, _ := os.ReadFile(filepath.Join(sub, "modules.dep"))
	theirsAlias, _ := os.ReadFile(filepath.Join(sub, "modules.alias"))
	if string(ours) != string(theirs) {
		t.Errorf("modules.dep differs from depmod's:\nours:\n%s\ndepmod:\n%s", ours, theirs)
	}
	if string(oursAlias) != string(theirsAlias) {
		t.Errorf("modules.alias differs from depmod's:\nours:\n%s\ndepmod:\n%s", oursAlias, theirsAlias)
	}

	// On the whole kernel, depmod breaks ties between independent
	// dependencies differently in a few hundred lines; ours must still be a
	// valid load order: nothing listed depends on a module listed before it.
	var all []string
	for n := range ix.modules {
		all = append(all, n)
	}
	full, err := ix.Select(all)
	if err != nil {
		t.Fatal(err)
	}
	byPath := map[string]*Module{}
	for i := range full.Modules {
		byPath[full.Modules[i].Path] = &full.Modules[i]
	}
	var needs func(a, b *Module) bool // a needs b, transitively
	needs = func(a, b *Module) bool {
		for _, d := range a.Depends {
			if d == b.Name || needs(ix.modules[d], b) {
				return true
			}
		}
		return false
	}
	for _, line := range strings.Split(strings.TrimSpace(string(full.ModulesDep())), "\n") {
		_, deps, _ := strings.Cut(line, ":")
		f := strings.Fields(deps)
		for i := range f {
			for j := i + 1; j < len(f); j++ {
				if needs(byPath[f[j]], byPath[f[i]]) {
					t.Errorf("modules.dep line %q: %s needs %s, listed before it", line, f[j], f[i])
				}
			}
		}
	}

	// virtio aliases as modinfo reports them.
	for _, n := range []string{"virtio_blk", "virtio_pci"} {
		m := ix.Module(n)
		if m == nil {
			if n == "virtio_blk" {
				t.Fatalf("%s not found", n)
			}
			continue
		}
		for _, a := range strings.Fields(testdeb.Run(t, "", "modinfo", "-F", "alias", filepath.Join(mdir, m.Path))) {
			if n == "virtio_blk" && !strings.Contains(string(oursAlias), "alias "+a+" "+n+"\n") {
				t.Errorf("modules.alias lacks %q for %s", a, n)
			}
			if !contains(m.Aliases, a) {
				t.Errorf("Scan: %s lacks alias %q", n, a)
			}
		}
	}
	if !strings.Contains(string(oursAlias), "alias virtio:d00000002v* virtio_blk\n") {
		t.Errorf("modules.alias lacks the virtio block device alias:\n%s", oursAlias)
	}
}

func sortedKeys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
