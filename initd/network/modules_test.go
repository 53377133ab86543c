package network

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A module already in /sys/module is not loaded again; a missing one is
// inserted after its dependencies, as modules.dep orders them.
func TestKernelModulesLoad(t *testing.T) {
	sys := t.TempDir()
	if err := os.Mkdir(filepath.Join(sys, "bonding"), 0o755); err != nil {
		t.Fatal(err)
	}
	mods := t.TempDir()
	files := map[string]string{
		"modules.dep": "kernel/net/8021q/8021q.ko: kernel/net/802/garp.ko kernel/net/llc/llc.ko\n" +
			"kernel/net/802/garp.ko: kernel/net/llc/llc.ko\nkernel/net/llc/llc.ko:\n" +
			"kernel/drivers/net/bonding/bonding.ko: kernel/net/tls/tls.ko\nkernel/net/tls/tls.ko:\n",
		"modules.alias": "alias rtnl-link-vlan 8021q\nalias rtnl-link-bond bonding\n",
	}
	for n, body := range files {
		if err := os.WriteFile(filepath.Join(mods, n), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var inserted []string
	k := &kernelModules{sysModule: sys, modDir: mods, insert: func(p string) error {
		rel, _ := filepath.Rel(mods, p)
		inserted = append(inserted, rel)
		return nil
	}}
	if err := k.load(bondModule); err != nil {
		t.Fatal(err)
	}
	if len(inserted) != 0 {
		t.Fatalf("bonding is in /sys/module, yet %v were inserted", inserted)
	}
	if err := k.load(vlanModule); err != nil {
		t.Fatal(err)
	}
	want := "kernel/net/llc/llc.ko kernel/net/802/garp.ko kernel/net/8021q/8021q.ko"
	if got := strings.Join(inserted, " "); got != want {
		t.Errorf("inserted %q, want %q", got, want)
	}
}

func TestKernelModulesMissing(t *testing.T) {
	k := &kernelModules{sysModule: t.TempDir(), modDir: filepath.Join(t.TempDir(), "none")}
	err := k.load(vlanModule)
	if err == nil || !strings.Contains(err.Error(), "module 8021q") || !strings.Contains(err.Error(), "modules.dep") {
		t.Errorf("load without modules.dep: %v, want an error naming 8021q and modules.dep", err)
	}
}
