package qemu_test

import (
	"strings"
	"testing"
	"time"
)

// TestPowerdownClean: the ACPI power button (QMP system_powerdown) makes
// initd stop, sync, unmount and power off quickly, leaving STATE clean.
func TestPowerdownClean(t *testing.T) {
	disk := diskOverlay(t, "")
	vm, _ := bootKept(t, amd64Machine(t, disk, "qcow2"))
	// The button must be open before "ready": a press before the open is
	// lost, and "ready" is when users and tests reach for it.
	log := vm.Log()
	if w, r := strings.Index(log, "power button: watching"), strings.Index(log, "kiln: ready"); w < 0 || w > r {
		t.Errorf("initd opens the power button after the ready line (watching at %d, ready at %d)", w, r)
	}
	if d := powerdown(t, vm, 10*time.Second); d > 10*time.Second {
		t.Errorf("power-off took %s, want under 10s", d)
	}
	openState(t, disk).fsck(t)
}

// TestStateGrowsAndPersists: on a disk bigger than the image, the first
// boot grows STATE to the end of the disk and formats it; what the seed
// wrote survives a second boot without the seed, which keeps the
// filesystem instead of formatting it again.
func TestStateGrowsAndPersists(t *testing.T) {
	const diskSize = 4 << 30
	dir := seedFiles(t, map[string]string{"user-data": `#cloud-config
write_files:
  - path: /etc/kiln-test/persist
    content: "written on the first boot\n"
    permissions: "0600"
`})
	iso := kilnSeed(t, "--kind", "nocloud", dir)
	disk := diskOverlay(t, "4G")

	// First boot: grow, format, apply the seed.
	vm, _ := bootKept(t, amd64Machine(t, disk, "qcow2", iso))
	wantConsole(t, vm.Log(), "state: formatting", "grown true, created true", "write_files[0]: wrote /etc/kiln-test/persist")
	powerdown(t, vm, 30*time.Second)

	st := openState(t, disk)
	st.fsck(t)
	if st.diskSectors*512 != diskSize {
		t.Fatalf("disk has %d sectors, want %d", st.diskSectors, diskSize/512)
	}
	if st.last != st.lastUsed {
		t.Errorf("STATE ends at sector %d, the disk's last usable sector is %d: not grown", st.last, st.lastUsed)
	}
	partBytes := (st.last - st.first + 1) * 512
	count, bsize := st.blocks(t)
	// mke2fs may leave a partial last block group out: allow a few MiB.
	if fs := count * bsize; fs > partBytes || partBytes-fs > 16<<20 {
		t.Errorf("ext4 on STATE is %d bytes (%d blocks of %d), partition is %d bytes", fs, count, bsize, partBytes)
	}
	if others := st.first * 512; partBytes < diskSize-others-(1<<20) {
		t.Errorf("STATE is %d bytes: want the whole 4 GiB disk after the first %d bytes", partBytes, others)
	}
	t.Logf("STATE: sectors %d-%d (%d MiB), ext4 %d x %d", st.first, st.last, partBytes>>20, count, bsize)

	// Second boot, no seed: the state is kept, not formatted again.
	vm2, _ := bootKept(t, amd64Machine(t, disk, "qcow2"))
	log2 := vm2.Log()
	if strings.Contains(log2, "state: formatting") {
		t.Error("the second boot formatted STATE again")
	}
	wantConsole(t, log2, "grown false, created false")
	powerdown(t, vm2, 30*time.Second)

	st = openState(t, disk)
	st.fsck(t)
	if got := st.cat(t, "/etc/upper/kiln-test/persist"); got != "written on the first boot\n" {
		t.Errorf("after the second boot /etc/kiln-test/persist on STATE = %q", got)
	}
	if got := st.mode(t, "/etc/upper/kiln-test/persist"); got != "0600" {
		t.Errorf("/etc/kiln-test/persist has mode %s, want 0600", got)
	}
}
