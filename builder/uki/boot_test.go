package uki

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kilnproject/kiln/builder/cpio"
	"github.com/kilnproject/kiln/builder/fstree"
	"github.com/kilnproject/kiln/internal/testdeb"
)

// bootInitrd builds testdata/init as a static binary for goarch and wraps it
// with /dev/console in a newc cpio.
func bootInitrd(t *testing.T, goarch string) []byte {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "init")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, "./testdata/init")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goarch)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build testdata/init: %v\n%s", err, out)
	}
	tr := fstree.New()
	if err := tr.AddHostFile("init", 0o755, bin); err != nil {
		t.Fatal(err)
	}
	if err := tr.Add(&fstree.Entry{Path: "dev/console", Kind: fstree.CharDev, Perm: 0o600, Major: 5, Minor: 1}); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := cpio.Write(&buf, tr, 0); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// espImage puts the UKI at the removable-media path on a fresh FAT image.
func espImage(t *testing.T, uki []byte, bootName string) string {
	t.Helper()
	testdeb.RequireTool(t, "mkfs.vfat", "dosfstools")
	testdeb.RequireTool(t, "mmd", "mtools")
	testdeb.RequireTool(t, "mcopy", "mtools")
	dir := t.TempDir()
	efi := filepath.Join(dir, "uki.efi")
	if err := os.WriteFile(efi, uki, 0o644); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(dir, "fat.img")
	kib := (len(uki)/1024 + 4096) &^ 1023
	testdeb.Run(t, dir, "mkfs.vfat", "-C", img, strconv.Itoa(kib))
	testdeb.Run(t, dir, "mmd", "-i", img, "::/EFI", "::/EFI/BOOT")
	testdeb.Run(t, dir, "mcopy", "-i", img, efi, "::/EFI/BOOT/"+bootName)
	return img
}

// bootQEMU runs the VM until it powers off or the deadline passes and
// returns the serial console output.
func bootQEMU(t *testing.T, timeout time.Duration, qemu string, args ...string) string {
	t.Helper()
	testdeb.RequireTool(t, qemu, "qemu-system")
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, qemu, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%s did not power off within %v; console:\n%s", qemu, timeout, tail(out.String()))
	}
	if err != nil {
		t.Fatalf("%s: %v; console:\n%s", qemu, err, tail(out.String()))
	}
	return out.String()
}

func tail(s string) string {
	if len(s) > 4000 {
		return "..." + s[len(s)-4000:]
	}
	return s
}

func TestBootAMD64(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a Debian kernel under QEMU")
	}
	const ovmf = "/usr/share/ovmf/OVMF.fd"
	testdeb.ReadFile(t, ovmf, "ovmf")
	stub := testdeb.ReadFile(t, x64Stub, "systemd-boot-efi")
	kdir, kver := testdeb.Kernel(t, "amd64")
	kernel := testdeb.ReadFile(t, filepath.Join(kdir, "boot", "vmlinuz-"+kver), "linux-image-"+kver)
	uki, err := Build(stub, Options{
		Kernel: kernel, Initrd: bootInitrd(t, "amd64"), Cmdline: "console=ttyS0",
		OSRelease: testOSRelease, Uname: kver, Arch: "amd64",
	})
	if err != nil {
		t.Fatal(err)
	}
	img := espImage(t, uki, "BOOTX64.EFI")
	out := bootQEMU(t, 90*time.Second, "qemu-system-x86_64",
		"-accel", "tcg,thread=multi", "-m", "512", "-bios", ovmf,
		"-drive", "file="+img+",format=raw", "-nographic", "-nic", "none", "-no-reboot")
	if !strings.Contains(out, "uki-ok") {
		t.Fatalf("no uki-ok on the console:\n%s", tail(out))
	}
}
