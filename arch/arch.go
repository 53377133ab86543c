// Package arch holds what differs between the CPU architectures kiln builds
// for: Debian names, the EFI stub and boot file names, the serial console and
// how QEMU emulates the machine. Per-architecture boot files live in
// arch/<name>/ and are embedded.
package arch

import (
	"embed"
	"fmt"
	"sort"
	"strings"
)

// Info describes one architecture.
type Info struct {
	Name    string // kiln and Go name: amd64, arm64
	DebArch string // Debian architecture
	GOARCH  string

	Console     string  // kernel console= argument for the serial port
	EFIStub     PkgFile // systemd-boot's Linux EFI stub, the base of the UKI
	EFIBootFile string  // removable-media path on the ESP
	BIOS        bool    // has a legacy BIOS boot path (isolinux/syslinux)
	// BIOS boot files, amd64 only.
	ISOLinux, ISOHybridMBR, LDLinux, GPTMBR PkgFile

	QEMU QEMU
	// OVFOSType is the VMware guest OS identifier for OVA descriptors.
	OVFOSType string
}

// PkgFile is a file inside a Debian package.
type PkgFile struct {
	Package string
	Path    string // path inside the package's data, no leading slash
}

// QEMU is how the test harness and `kiln run` emulate this architecture.
type QEMU struct {
	Binary   string // qemu-system-x86_64
	Package  string // Debian package providing Binary
	Machine  string
	CPU      string
	BIOS     string // SeaBIOS is built in on x86: empty
	UEFICode string // firmware code image
	UEFIVars string // template for the variable store ("" when Code is used with -bios)
	UEFIPkg  string // Debian package providing the firmware
	NIC      string // default NIC model
	Disk     string // default disk interface for images (-drive if=...)
	CDROM    string // how to attach an ISO as a CD-ROM
}

//go:embed amd64 arm64
var files embed.FS

// File returns an embedded per-architecture boot file (e.g. "isolinux.cfg").
func (i Info) File(name string) ([]byte, error) {
	b, err := files.ReadFile(i.Name + "/" + name)
	if err != nil {
		return nil, fmt.Errorf("arch %s: no file %s", i.Name, name)
	}
	return b, nil
}

var all = map[string]Info{"amd64": amd64, "arm64": arm64}

// Lookup returns the Info for name.
func Lookup(name string) (Info, error) {
	i, ok := all[name]
	if !ok {
		return Info{}, fmt.Errorf("unknown architecture %q (allowed: %s)", name, strings.Join(Names(), ", "))
	}
	return i, nil
}

// Names lists the supported architectures.
func Names() []string {
	var n []string
	for k := range all {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}
