package qemu

import (
	"errors"
	"strings"
	"testing"

	"github.com/kilnproject/kiln/arch"
)

// A missing QEMU or firmware names the Debian package that provides it.
func TestCheckNamesThePackage(t *testing.T) {
	amd, err := arch.Lookup("amd64")
	if err != nil {
		t.Fatal(err)
	}
	noQEMU := amd
	noQEMU.QEMU.Binary = "qemu-system-kiln-does-not-exist"
	noFW := amd
	noFW.QEMU.UEFICode = "/nonexistent/OVMF_CODE.fd"
	arm, _ := arch.Lookup("arm64")
	cases := []struct {
		name string
		m    Machine
		want string
	}{
		{"qemu", Machine{Arch: noQEMU}, "apt-get install qemu-system-x86"},
		{"uefi firmware", Machine{Arch: noFW, Firmware: "uefi"}, "apt-get install ovmf"},
	}
	// arm64 has no BIOS: asking for it boots UEFI (AAVMF) instead.
	if fw := (&Machine{Arch: arm, Firmware: "bios"}).firmware(); fw != "uefi" {
		t.Fatalf("arm64 with bios firmware = %q, want uefi", fw)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.m.Check()
			var fe *FirmwareError
			if !errors.As(err, &fe) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want a FirmwareError naming %q", err, c.want)
			}
		})
	}
}
