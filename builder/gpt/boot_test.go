package gpt

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/kilnproject/kiln/builder/fat"
	"github.com/kilnproject/kiln/builder/fstree"
)

// TestOVMFReadsESP boots a disk made of this package's GPT and a FAT32 ESP
// from builder/fat under OVMF: the firmware must find the ESP, run
// \EFI\BOOT\BOOTX64.EFI (systemd-boot) from it, and systemd-boot must read
// loader/loader.conf from it, which we see as its "Boot in 7 s" countdown
// (its default is no countdown at all).
func TestOVMFReadsESP(t *testing.T) {
	const (
		code   = "/usr/share/OVMF/OVMF_CODE_4M.fd"
		vars   = "/usr/share/OVMF/OVMF_VARS_4M.fd"
		sdboot = "/usr/lib/systemd/boot/efi/systemd-bootx64.efi"
	)
	requireTool(t, "qemu-system-x86_64")
	for _, f := range []string{code, vars, sdboot} {
		if _, err := os.Stat(f); err != nil {
			t.Fatalf("%s is required (apt-get install ovmf systemd-boot-efi): %v", f, err)
		}
	}
	dir := t.TempDir()
	const size = 80 << 20
	parts, err := Layout(size, []Want{{Name: "ESP", Type: TypeESP, Size: 64 << 20}})
	if err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(dir, "disk.img")
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(size)
	if err := Write(f, Disk{SizeBytes: size, GUID: NameGUID("test", "ovmf"), Partitions: parts}); err != nil {
		t.Fatal(err)
	}
	tr := fstree.New()
	tr.AddHostFile("EFI/BOOT/BOOTX64.EFI", 0o644, sdboot)
	tr.AddFile("loader/loader.conf", 0o644, []byte("timeout 7\n"))
	esp := parts[0]
	if err := fat.Write(esp.SectionWriter(f), tr, fat.Options{Size: esp.Size(), Label: "ESP", FATType: 32, HiddenSectors: uint32(esp.FirstLBA)}); err != nil {
		t.Fatal(err)
	}
	f.Close()
	varsCopy := filepath.Join(dir, "vars.fd")
	b, _ := os.ReadFile(vars)
	os.WriteFile(varsCopy, b, 0o644)

	cmd := exec.Command("qemu-system-x86_64", "-machine", "q35", "-accel", "tcg", "-m", "256",
		"-display", "none", "-monitor", "none", "-serial", "stdio", "-no-reboot", "-nodefaults",
		"-drive", "if=pflash,format=raw,readonly=on,file="+code,
		"-drive", "if=pflash,format=raw,file="+varsCopy,
		"-drive", "file="+img+",format=raw,if=virtio")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	found := make(chan bool, 1)
	var log bytes.Buffer
	go func() {
		sc := bufio.NewScanner(out)
		sc.Split(bufio.ScanBytes)
		for sc.Scan() {
			log.Write(sc.Bytes())
			if bytes.Contains(log.Bytes()[max(0, log.Len()-64):], []byte("Boot in 7 s")) {
				found <- true
				return
			}
		}
		found <- false
	}()
	select {
	case ok := <-found:
		if !ok {
			t.Fatalf("QEMU exited before systemd-boot showed the loader.conf countdown")
		}
	case <-time.After(50 * time.Second):
		t.Fatalf("no \"Boot in 7 s\" from systemd-boot within 50 s")
	}
}
