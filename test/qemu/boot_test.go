package qemu_test

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/kilnproject/kiln/qemu"
)

// TestBootMatrix boots every format x firmware combination the image-formats
// issue names and waits for initd's ready line on the serial console.
func TestBootMatrix(t *testing.T) {
	cases := []struct {
		name, arch, firmware, ext, media, format string
	}{
		{"amd64/iso/bios", "amd64", "bios", "iso", "cdrom", ""},
		{"amd64/iso/uefi", "amd64", "uefi", "iso", "cdrom", ""},
		{"amd64/iso-usb/bios", "amd64", "bios", "iso", "usb", "raw"},
		{"amd64/iso-usb/uefi", "amd64", "uefi", "iso", "usb", "raw"},
		{"amd64/raw/bios", "amd64", "bios", "raw", "disk", "raw"},
		{"amd64/raw/uefi", "amd64", "uefi", "raw", "disk", "raw"},
		{"amd64/qcow2/bios", "amd64", "bios", "qcow2", "disk", "qcow2"},
		{"amd64/qcow2/uefi", "amd64", "uefi", "qcow2", "disk", "qcow2"},
		{"amd64/vmdk-converted/uefi", "amd64", "uefi", "vmdk", "disk", "qcow2"},
		{"arm64/iso/uefi", "arm64", "uefi", "iso", "cdrom", ""},
		{"arm64/qcow2/uefi", "arm64", "uefi", "qcow2", "disk", "qcow2"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			img := image(c.arch, c.ext)
			if c.ext == "vmdk" {
				// What a user importing the VMDK elsewhere does: convert it.
				conv := filepath.Join(t.TempDir(), "converted.qcow2")
				if out, err := exec.Command("qemu-img", "convert", "-f", "vmdk", "-O", "qcow2", img, conv).CombinedOutput(); err != nil {
					t.Fatalf("qemu-img convert: %v\n%s", err, out)
				}
				img = conv
			}
			m := &qemu.Machine{Arch: mustArch(t, c.arch), Firmware: c.firmware, Net: "user",
				Drives: []qemu.Drive{{Path: img, Media: c.media, Format: c.format, Snapshot: c.media != "cdrom"}}}
			start := time.Now()
			vm, _ := boot(t, m, bootTimeout(c.arch))
			t.Logf("BOOT %-28s ready after %5.1fs", c.name, time.Since(start).Seconds())
			vm.Kill()
		})
	}
}

// TestBrokenImageFailsFast: a truncated disk image must not hang the harness
// until the global timeout; the error carries the console log.
func TestBrokenImageFailsFast(t *testing.T) {
	broken := filepath.Join(t.TempDir(), "broken.raw")
	if out, err := exec.Command("sh", "-c", "head -c 1048576 "+image("amd64", "raw")+" > "+broken).CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	for _, fw := range []string{"bios", "uefi"} {
		t.Run(fw, func(t *testing.T) {
			m := &qemu.Machine{Arch: mustArch(t, "amd64"), Firmware: fw, MemoryMiB: 512, Net: "none",
				Drives: []qemu.Drive{{Path: broken, Format: "raw", Snapshot: true}}}
			vm, err := m.Start(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			defer vm.Kill()
			start := time.Now()
			_, err = vm.WaitFor(t.Context(), readyRe, 4*time.Minute)
			if err == nil {
				t.Fatal("a truncated image reached the ready line")
			}
			var be *qemu.BootError
			if !asBootError(err, &be) {
				t.Fatalf("want a BootError with the console log, got %v", err)
			}
			if d := time.Since(start); d > 2*time.Minute {
				t.Fatalf("failure took %s: not fast", d)
			}
			t.Logf("failed fast after %.1fs: %s", time.Since(start).Seconds(), be.Reason)
		})
	}
}

func asBootError(err error, be **qemu.BootError) bool {
	e, ok := err.(*qemu.BootError)
	if ok {
		*be = e
	}
	return ok
}

var _ = regexp.MustCompile

func newMachine(t *testing.T, archName, fw, img string) *qemu.Machine {
	return &qemu.Machine{Arch: mustArch(t, archName), Firmware: fw, MemoryMiB: 512, Net: "none",
		Drives: []qemu.Drive{{Path: img, Format: "raw", Snapshot: true}}}
}
