package network

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/kilnproject/kiln/initd/kmod"
	"golang.org/x/sys/unix"
)

// Kernel modules behind the virtual link kinds. The kernel's own
// request_module() has no modprobe to call on a kiln node, so the module
// must be loaded before the link is created, or RTM_NEWLINK fails with
// "operation not supported".
const (
	bondModule = "bonding"
	vlanModule = "8021q"
)

// kernelModules loads modules from /lib/modules/<running kernel>, opening
// modules.dep only the first time a module is missing.
type kernelModules struct {
	sysModule string                  // /sys/module
	modDir    string                  // /lib/modules/KVER; "" = from uname
	insert    func(path string) error // nil = finit_module (tests record instead)
	once      sync.Once
	loader    *kmod.Loader
	err       error
}

// load makes sure name is in the kernel: present in /sys/module (loaded or
// built in) or inserted now with its dependencies.
func (k *kernelModules) load(name string) error {
	sys := k.sysModule
	if sys == "" {
		sys = "/sys/module"
	}
	if _, err := os.Stat(filepath.Join(sys, kmod.Name(name))); err == nil {
		return nil
	}
	k.once.Do(func() {
		dir := k.modDir
		if dir == "" {
			var u unix.Utsname
			if err := unix.Uname(&u); err != nil {
				k.err = fmt.Errorf("uname: %w", err)
				return
			}
			dir = filepath.Join("/lib/modules", unix.ByteSliceToString(u.Release[:]))
		}
		if k.loader, k.err = kmod.Open(dir); k.err == nil {
			if k.insert != nil {
				k.loader.Insert = func(p, _ string) error { return k.insert(p) }
			} else {
				k.loader.Options = kmod.ReadOptions("/proc/cmdline")
			}
		}
	})
	if k.err != nil {
		return fmt.Errorf("module %s: %w", name, k.err)
	}
	if err := k.loader.Load(name); err != nil {
		return fmt.Errorf("module %s: %w", name, err)
	}
	return nil
}
