package iso9660

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kilnproject/kiln/builder/fstree"
)

const (
	isolinuxBin = "/usr/lib/ISOLINUX/isolinux.bin"
	isohdpfxBin = "/usr/lib/ISOLINUX/isohdpfx.bin"
	ldlinuxC32  = "/usr/lib/syslinux/modules/bios/ldlinux.c32"
	sdBootEFI   = "/usr/lib/systemd/boot/efi/systemd-bootx64.efi"
	testEpoch   = 1700000000 // 2023-11-14T22:13:20Z
)

// need fails the test (never skips) when a tool or file the oracle needs is missing.
func need(t *testing.T, things ...string) {
	t.Helper()
	for _, x := range things {
		if strings.HasPrefix(x, "/") {
			if _, err := os.Stat(x); err != nil {
				t.Fatalf("test input %s missing (install isolinux, syslinux-common, systemd-boot-efi): %v", x, err)
			}
			continue
		}
		if _, err := exec.LookPath(x); err != nil {
			t.Fatalf("tool %s not installed; it is the oracle of this test: %v", x, err)
		}
	}
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// memWriterAt is an in-memory io.WriterAt that starts filled with 0xAA, so
// a gap the writer forgot to zero shows up.
type memWriterAt struct{ b []byte }

func (m *memWriterAt) WriteAt(p []byte, off int64) (int, error) {
	if end := int(off) + len(p); end > len(m.b) {
		nb := bytes.Repeat([]byte{0xAA}, end)
		copy(nb, m.b)
		m.b = nb
	}
	copy(m.b[off:], p)
	return len(p), nil
}

// efiImage makes a FAT image holding EFI/BOOT/BOOTX64.EFI (systemd-boot).
func efiImage(t *testing.T) string {
	t.Helper()
	need(t, "mkfs.vfat", "mmd", "mcopy", sdBootEFI)
	img := filepath.Join(t.TempDir(), "efi.img")
	run(t, "mkfs.vfat", "-C", "-i", "12345678", img, "1024")
	run(t, "mmd", "-i", img, "::EFI", "::EFI/BOOT")
	run(t, "mcopy", "-i", img, sdBootEFI, "::EFI/BOOT/BOOTX64.EFI")
	return img
}

// bootTree is an isolinux tree whose config prints a marker on the serial
// console and then fails on a bogus default label.
func bootTree(t *testing.T, efi string) *fstree.Tree {
	t.Helper()
	need(t, isolinuxBin, ldlinuxC32)
	tr := fstree.New()
	must(t, tr.AddHostFile("isolinux/isolinux.bin", 0o644, isolinuxBin))
	must(t, tr.AddHostFile("isolinux/ldlinux.c32", 0o644, ldlinuxC32))
	must(t, tr.AddFile("isolinux/isolinux.cfg", 0o644, []byte("SERIAL 0 115200\nSAY kiln-iso-ok\nDEFAULT bogus\nPROMPT 0\nTIMEOUT 1\n")))
	if efi != "" {
		must(t, tr.AddHostFile("boot/efi.img", 0o644, efi))
	}
	must(t, tr.AddFile("kiln/system.sqfs", 0o644, bytes.Repeat([]byte("squash"), 5000)))
	return tr
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// writeISO writes the image to a temp file and returns its path.
func writeISO(t *testing.T, tr *fstree.Tree, o Options) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "out.iso")
	f, err := os.Create(p)
	must(t, err)
	defer f.Close()
	n, err := Write(f, tr, o)
	must(t, err)
	st, err := f.Stat()
	must(t, err)
	if st.Size() != n {
		t.Fatalf("Write returned size %d, file is %d bytes", n, st.Size())
	}
	return p
}

func bootOptions(hybrid bool) Options {
	mbr, _ := os.ReadFile(isohdpfxBin)
	return Options{
		VolumeID: "KILN-TEST",
		ModTime:  testEpoch,
		BIOS:     &BIOSBoot{Image: "isolinux/isolinux.bin", Catalog: "isolinux/boot.cat", MBR: mbr},
		EFI:      &EFIBoot{Image: "boot/efi.img"},
		Hybrid:   hybrid,
	}
}
