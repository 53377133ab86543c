package qemu

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kilnproject/kiln/arch"
)

// TestArgsSeedDriveAndNetwork: a second CD-ROM (a seed) gets its own AHCI
// port on q35, and the NIC's MAC, the user network and guest forwards
// reach the command line.
func TestArgsSeedDriveAndNetwork(t *testing.T) {
	a, err := arch.Lookup("amd64")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	iso, seed := filepath.Join(dir, "boot.iso"), filepath.Join(dir, "seed.iso")
	for _, p := range []string{iso, seed} {
		os.WriteFile(p, nil, 0o644)
	}
	m := &Machine{Arch: a, Drives: []Drive{{Path: iso, Media: "cdrom"}, {Path: seed, Media: "cdrom"}},
		MAC: "52:54:00:6b:69:01", UserNet: "169.254.169.0/24",
		GuestForwards: []GuestForward{{Addr: "169.254.169.254", Port: 80, Target: "tcp:127.0.0.1:8080,nodelay"}}}
	args, err := m.Args(dir, filepath.Join(dir, "qmp.sock"))
	if err != nil {
		t.Fatal(err)
	}
	cl := strings.Join(args, " ")
	for _, want := range []string{
		"ide-cd,drive=drv0,bus=ide.0,bootindex=0",
		"ide-cd,drive=drv1,bus=ide.1 ",
		"user,id=net0,restrict=on,net=169.254.169.0/24,guestfwd=tcp:169.254.169.254:80-tcp:127.0.0.1:8080,,nodelay ",
		"virtio-net-pci,netdev=net0,mac=52:54:00:6b:69:01 ",
	} {
		if !strings.Contains(cl, want) {
			t.Errorf("command line lacks %q:\n%s", want, cl)
		}
	}
}
