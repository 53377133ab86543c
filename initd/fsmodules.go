package initd

import (
	"os"
	"path/filepath"
	"time"

	"github.com/kilnproject/kiln/initd/kmod"
)

// fsModules are the modules a mount of each filesystem type needs: the
// filesystem and what the kernel asks request_module() for while mounting
// it, which nothing answers on a kiln node (no modprobe). ext4 wants a
// crc32c for metadata_csum; vfat its default codepage (437) and iocharset
// (Debian's kernels: ascii). Types not listed (tmpfs, proc, ...) are built
// in. Loading them only when mounted keeps ext4 (0.3 s of CPU under
// emulation) off a live ISO's boot.
var fsModules = map[string][]string{
	"ext4":     {"crc32c_generic", "ext4"},
	"vfat":     {"vfat", "nls_cp437", "nls_ascii"},
	"iso9660":  {"isofs"},
	"squashfs": {"squashfs"},
	"overlay":  {"overlay"},
}

// fsChecksums are the crypto API algorithms a filesystem takes, at mount
// time, the fastest implementation of that is loaded then.
var fsChecksums = map[string][]string{
	"ext4": {"crc32c"},
}

// needFS loads what a mount of fstype needs (mounts.NeedFS). Failures are
// logged, not returned: a module may be built in, and if the filesystem
// is really missing the mount says so.
func (b *Boot) needFS(fstype string) {
	sysModule := b.sysModule
	if sysModule == "" {
		sysModule = "/sys/module"
	}
	var missing []string
	for _, m := range fsModules[fstype] {
		if _, err := os.Stat(filepath.Join(sysModule, m)); err != nil {
			missing = append(missing, m)
		}
	}
	if len(missing) == 0 {
		return
	}
	l, err := b.loader()
	if err != nil {
		b.logf("modules for %s: %v", fstype, err)
		return
	}
	start := time.Now()
	for _, m := range missing {
		if err := l.Load(m); err != nil {
			b.logf("module %s (for %s): %v", m, fstype, err)
		}
	}
	b.Log.Debugf("modules for %s ready in %s", fstype, Millis(time.Since(start)))
}

// loader returns the module loader of the running root, opening it on
// first use: in the system stage only when a device or a mount needs a
// module, with what the kernel already has marked loaded so nothing is
// inserted twice (finit_module would read and verify the whole file
// before saying EEXIST).
func (b *Boot) loader() (*kmod.Loader, error) {
	b.modMu.Lock()
	defer b.modMu.Unlock()
	if b.modules != nil {
		return b.modules, nil
	}
	if err := b.openModules(); err != nil {
		return nil, err
	}
	if f, err := os.Open("/proc/modules"); err == nil {
		names, err := kmod.ReadProcModules(f)
		f.Close()
		if err != nil {
			b.logf("modules: %v", err)
		}
		b.modules.MarkLoaded(names)
	}
	return b.modules, nil
}
