package iso9660

import (
	"bytes"
	"context"
	"os/exec"
	"sync"
	"testing"
	"time"
)

// TestQEMUBoot boots the hybrid image four ways and reads the serial
// console: SeaBIOS from CD-ROM and from a raw disk (isohdpfx MBR ->
// isolinux prints our SAY line), OVMF from CD-ROM and from a raw disk
// (El Torito EFI entry / ESP partition -> systemd-boot's menu).
func TestQEMUBoot(t *testing.T) {
	if testing.Short() {
		t.Skip("boots QEMU (about 40 s); skipped with -short")
	}
	const ovmf = "/usr/share/ovmf/OVMF.fd"
	need(t, "qemu-system-x86_64", ovmf)
	iso := writeISO(t, bootTree(t, efiImage(t)), bootOptions(true))
	cd := []string{"-cdrom", iso}
	disk := []string{"-drive", "file=" + iso + ",format=raw,if=ide,snapshot=on"}
	uefi := []string{"-bios", ovmf}
	for _, c := range []struct {
		name   string
		args   []string
		marker string
		via    string // proves which path booted: isolinux's banner or OVMF's boot option
	}{
		{"bios-cdrom", cd, "kiln-iso-ok", "ISOLINUX 6.04 20200816 ETCD"},
		{"bios-disk", disk, "kiln-iso-ok", "ISOLINUX 6.04 20200816 EHDD"},
		{"uefi-cdrom", append(uefi, cd...), "Reboot Into Firmware", `"UEFI QEMU DVD-ROM`},
		{"uefi-disk", append(uefi, disk...), "Reboot Into Firmware", `loading Boot0002 "UEFI QEMU HARDDISK`},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, ok := bootUntil(t, c.args, c.marker, 25*time.Second)
			if !ok {
				t.Fatalf("no %q on the serial console within 25 s; console:\n%s", c.marker, tail(out))
			}
			if !bytes.Contains(out, []byte(c.via)) {
				t.Fatalf("booted, but not via %q; console:\n%s", c.via, tail(out))
			}
		})
	}
}

// syncBuf collects QEMU's output and reports when the marker shows up.
type syncBuf struct {
	mu     sync.Mutex
	b      bytes.Buffer
	marker []byte
	found  chan struct{}
	once   sync.Once
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b.Write(p)
	if bytes.Contains(s.b.Bytes(), s.marker) {
		s.once.Do(func() { close(s.found) })
	}
	return len(p), nil
}

func bootUntil(t *testing.T, args []string, marker string, limit time.Duration) ([]byte, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	base := []string{"-accel", "tcg", "-m", "256", "-nographic", "-display", "none", "-monitor", "none", "-serial", "stdio", "-no-reboot"}
	cmd := exec.CommandContext(ctx, "qemu-system-x86_64", append(base, args...)...)
	buf := &syncBuf{marker: []byte(marker), found: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = buf, buf
	if err := cmd.Start(); err != nil {
		t.Fatalf("qemu: %v", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	ok := false
	select {
	case <-buf.found:
		ok = true
	case <-done:
	case <-ctx.Done():
	}
	cmd.Process.Kill()
	<-done
	buf.mu.Lock()
	defer buf.mu.Unlock()
	return append([]byte(nil), buf.b.Bytes()...), ok
}

func tail(b []byte) []byte {
	if len(b) > 3000 {
		return b[len(b)-3000:]
	}
	return b
}
