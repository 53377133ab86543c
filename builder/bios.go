package builder

import (
	"fmt"
	"io"
	"os"

	"github.com/kilnproject/kiln/arch"
	"github.com/kilnproject/kiln/builder/fstree"
	"github.com/kilnproject/kiln/builder/syslinux"
)

// syslinuxInstaller is the Debian file that carries ldlinux.sys and the FAT
// boot sector (bookworm ships them only inside the installer binary).
var syslinuxInstaller = arch.PkgFile{Package: "syslinux", Path: "usr/bin/syslinux"}

// loadSyslinux reads the BIOS loader from the verified Debian packages.
func (b *archBuild) loadSyslinux() (*syslinux.Loader, error) {
	inst, err := b.in.bootFile(syslinuxInstaller)
	if err != nil {
		return nil, err
	}
	c32, err := b.in.bootFile(b.arch.LDLinux)
	if err != nil {
		return nil, err
	}
	ib, err := os.ReadFile(inst)
	if err != nil {
		return nil, err
	}
	cb, err := os.ReadFile(c32)
	if err != nil {
		return nil, err
	}
	l, err := syslinux.Extract(ib, cb)
	if err != nil {
		return nil, fmt.Errorf("syslinux from Debian package %s: %w", syslinuxInstaller.Package, err)
	}
	return l, nil
}

// addBIOSLoader puts syslinux, its config, the kernel and the initramfs on the
// ESP tree, and returns the protective MBR's boot code (gptmbr.bin).
func (b *archBuild) addBIOSLoader(esp *fstree.Tree) ([]byte, error) {
	l, err := b.loadSyslinux()
	if err != nil {
		return nil, err
	}
	cfg, err := b.syslinuxCfg("syslinux.cfg", "A")
	if err != nil {
		return nil, err
	}
	if err := l.AddFiles(esp, cfg); err != nil {
		return nil, err
	}
	if err := esp.AddFile("boot/vmlinuz", 0o644, b.kernel); err != nil {
		return nil, err
	}
	if err := esp.AddFile("boot/initrd.img", 0o644, b.initrd); err != nil {
		return nil, err
	}
	b.biosLoader = l
	mbrPath, err := b.in.bootFile(b.arch.GPTMBR)
	if err != nil {
		return nil, err
	}
	mbr, err := os.ReadFile(mbrPath)
	if err != nil {
		return nil, err
	}
	return syslinux.GPTMBR(mbr)
}

// installBIOSLoader patches ldlinux.sys's sector list and the ESP's boot
// sector once the FAT has been written.
func (b *archBuild) installBIOSLoader(disk interface {
	io.ReaderAt
	io.WriterAt
}, offset, size int64) error {
	if err := b.biosLoader.Install(disk, offset, size); err != nil {
		return fmt.Errorf("installing syslinux on the ESP: %w", err)
	}
	return nil
}

func (b *archBuild) fatAttributes() map[string]uint8 {
	if b.biosLoader == nil {
		return nil
	}
	return b.biosLoader.FATAttributes()
}
