package qemu_test

import (
	"context"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kilnproject/kiln/qemu"
)

// TestModuleParameters boots the ISO's kernel and initramfs directly, to
// give them a command line of the test's choosing:
//   - with none, initd gives libata force=nodbdelay in a VM, and the
//     kernel says it applied the link flag;
//   - "libata.force=1.5Gbps" on the command line reaches libata (which
//     initd inserts; the kernel applies such parameters only to built-in
//     code) and replaces the VM default;
//   - "modprobe.blacklist=virtio_rng" keeps the RNG's driver out, while
//     the CPU-feature drivers still load after the ready line.
func TestModuleParameters(t *testing.T) {
	cmdline, err := os.ReadFile(image("amd64", "cmdline"))
	if err != nil {
		t.Fatal(err)
	}
	// The ISO as q35's CD-ROM, attached here: with -kernel, QEMU's own
	// boot entry takes the boot index the harness would give the drive.
	machine := func(extra string) *qemu.Machine {
		m := amd64Machine(t, image("amd64", "iso"), "cdrom")
		m.Drives = nil
		m.ExtraArgs = []string{"-kernel", image("amd64", "vmlinuz"), "-initrd", image("amd64", "initrd"),
			"-append", strings.TrimSpace(string(cmdline)) + " kiln.debug " + extra,
			"-drive", "if=none,id=iso,format=raw,readonly=on,media=cdrom,file=" + image("amd64", "iso"),
			"-device", "ide-cd,drive=iso,bus=ide.0"}
		return m
	}

	// kiln.debug stamps the console lines ("kiln: [3.55] ready in ..."),
	// which the harness's ready pattern does not expect.
	start := func(m *qemu.Machine) *qemu.VM {
		t.Helper()
		vm, err := m.Start(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(vm.Kill)
		if _, err := vm.WaitFor(context.Background(), regexp.MustCompile(`kiln: \[[0-9.]+\] ready in`), bootTimeout("amd64")); err != nil {
			saveLog(t, vm.Log())
			t.Fatal(err)
		}
		return vm
	}

	vm := start(machine(""))
	wantConsole(t, vm.Log(), "virtual machine (qemu): module defaults", `module libata: parameters "force=nodbdelay"`,
		"ata1: FORCE: link flag 0x800 forced")
	// After ready: the CPU-feature drivers and the RNG, deferred.
	if _, err := vm.WaitFor(context.Background(), regexp.MustCompile(`loaded after ready`), 60*time.Second); err != nil {
		t.Errorf("no drivers loaded after ready: %v", err)
	}
	vm.Kill()

	vm = start(machine("libata.force=1.5Gbps modprobe.blacklist=virtio_rng"))
	if _, err := vm.WaitFor(context.Background(), regexp.MustCompile(`loaded after ready`), 60*time.Second); err != nil {
		t.Errorf("no drivers loaded after ready: %v", err)
	}
	log := vm.Log()
	wantConsole(t, log, `module libata: parameters "force=1.5Gbps"`, "FORCE: PHY spd limit set to 1.5Gbps",
		"module virtio_rng not loaded for virtio:d00000004", "modprobe.blacklist")
	for _, bad := range []string{"force=nodbdelay\"", "FORCE: link flag 0x800", "module virtio_rng loaded"} {
		if strings.Contains(log, bad) {
			t.Errorf("console has %q: the command line's libata.force did not replace the VM default, or virtio_rng loaded despite the blacklist", bad)
		}
	}
	vm.Kill()
}
