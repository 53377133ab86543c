package syslinux

import (
	"bytes"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kilnproject/kiln/builder/fstree"
)

// bootSerial boots disk under SeaBIOS and waits up to 5 minutes for every want
// string on the serial console, in order.
func bootSerial(t *testing.T, disk string, want ...string) {
	t.Helper()
	requireTool(t, "qemu-system-x86_64")
	cmd := exec.Command("qemu-system-x86_64", "-accel", "tcg,thread=multi", "-m", "256",
		"-display", "none", "-monitor", "none", "-serial", "stdio", "-no-reboot",
		"-drive", "file="+disk+",format=raw")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	var mu sync.Mutex
	var log bytes.Buffer
	found := make(chan struct{})
	go func() {
		buf := make([]byte, 4096)
		next := 0
		for {
			n, err := out.Read(buf)
			mu.Lock()
			log.Write(buf[:n])
			for next < len(want) && strings.Contains(log.String(), want[next]) {
				next++
			}
			done := next == len(want)
			mu.Unlock()
			if done {
				close(found)
				return
			}
			if err != nil {
				return
			}
		}
	}()
	select {
	case <-found:
	case <-time.After(5 * time.Minute):
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("serial console did not show %q within 5 minutes:\n%s", want, log.String())
	}
}

// TestBootSeaBIOS boots GPT disks whose protective MBR holds gptmbr.bin and
// whose legacy-BIOS-bootable ESP got syslinux from Install. The SAY line of
// the config never reached the serial console with Debian's 6.04 (nor did
// DISPLAY files), so the marker the test reads is ldlinux.c32's "Loading <DEFAULT>... failed"
// line: it proves the boot sector loaded ldlinux.sys, which loaded
// ldlinux.c32, which parsed syslinux.cfg from the volume.
func TestBootSeaBIOS(t *testing.T) {
	l := hostLoader(t)
	const cfg = "SERIAL 0 115200\nSAY syslinux-disk-ok\nDEFAULT syslinux-disk-ok\n"
	for _, ft := range []int{16, 32} {
		t.Run(fmt.Sprintf("FAT%d", ft), func(t *testing.T) {
			d := makeDisk(t, l, ft, 40<<20, cfg)
			if err := l.Install(d.f, d.esp.Offset(), d.esp.Size()); err != nil {
				t.Fatal(err)
			}
			bootSerial(t, d.path, "SYSLINUX "+l.Version(), "Loading syslinux-disk-ok... failed")
		})
	}
}

// TestBootKernel has syslinux load a Debian kernel and an initrd from the
// ESP, when the shared test cache holds an unpacked kernel package.
func TestBootKernel(t *testing.T) {
	kernels, _ := filepath.Glob("/tmp/kiln-test-cache/x-linux-image-*-amd64_amd64/boot/vmlinuz-*")
	if len(kernels) == 0 {
		t.Skip("no unpacked amd64 kernel in /tmp/kiln-test-cache; TestBootSeaBIOS covers the loader itself")
	}
	l := hostLoader(t)
	const cfg = "SERIAL 0 115200\nDEFAULT linux\nLABEL linux\n  KERNEL vmlinuz\n  INITRD initrd.img\n  APPEND console=ttyS0,115200 panic=-1\n"
	d := makeDisk(t, l, 32, 64<<20, cfg, func(tr *fstree.Tree) {
		if err := tr.AddHostFile("vmlinuz", 0o644, kernels[0]); err != nil {
			t.Fatal(err)
		}
		if err := tr.AddFile("initrd.img", 0o644, emptyCpio()); err != nil {
			t.Fatal(err)
		}
	})
	if err := l.Install(d.f, d.esp.Offset(), d.esp.Size()); err != nil {
		t.Fatal(err)
	}
	bootSerial(t, d.path, "Loading vmlinuz", "Linux version", "Freeing initrd memory")
}

// emptyCpio is a newc archive holding only the trailer.
func emptyCpio() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X", 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, len("TRAILER!!!")+1, 0)
	b.WriteString("TRAILER!!!\x00")
	for b.Len()%512 != 0 {
		b.WriteByte(0)
	}
	return b.Bytes()
}
