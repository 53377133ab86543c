// Package qemu boots kiln images under QEMU and watches their serial console.
// `kiln run` and the boot tests in test/qemu both drive it.
package qemu

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/kilnproject/kiln/arch"
)

// Drive is an image attached to the VM.
type Drive struct {
	Path   string
	Format string // raw, qcow2, vmdk, vpc; "" = guess from the extension
	Media  string // "disk" (default), "cdrom" or "usb"
	// Snapshot discards the guest's writes (tests keep their images pristine).
	Snapshot bool
	ReadOnly bool
}

// Machine describes a VM to boot.
type Machine struct {
	Arch      arch.Info
	Firmware  string // "bios" or "uefi"; arm64 is always uefi
	MemoryMiB int
	CPUs      int
	Drives    []Drive
	// Net is "user" (slirp, default), "none", "switch:SWITCHPORT:VMPORT" (a
	// Switch port, from Switch.NetFor) or "socket:listen=..."/"socket:connect=...".
	Net      string
	Forwards []Forward // host TCP port -> guest TCP port (user networking)
	// GuestForwards send the guest's TCP connections to Addr:Port on to a
	// host endpoint (user networking; Addr must lie inside UserNet).
	GuestForwards []GuestForward
	// UserNet is the user network's CIDR ("" = QEMU's 10.0.2.0/24); a
	// metadata service at 169.254.169.254 needs 169.254.169.0/24.
	UserNet string
	MAC     string // the NIC's MAC address; "" = QEMU's default 52:54:00:12:34:56
	KVM     bool   // use /dev/kvm when it works; TCG otherwise
	// Console receives everything the guest prints on its serial console.
	Console io.Writer
	// Stdin feeds the serial console (interactive `kiln run`); nil = no input.
	Stdin     io.Reader
	ExtraArgs []string
	WorkDir   string // for the QMP socket and the UEFI variable store; "" = a temp dir
}

// Forward is a host:guest TCP port pair.
type Forward struct{ Host, Guest int }

// GuestForward is a guest-visible TCP address served from the host:
// Target is a QEMU character device, e.g. "tcp:127.0.0.1:8080" (one
// connection opened when QEMU starts, carrying every guest connection).
type GuestForward struct {
	Addr   string // e.g. 169.254.169.254
	Port   int
	Target string
}

// VM is a running machine.
type VM struct {
	cmd     *exec.Cmd
	qmpPath string
	workDir string
	ownDir  bool

	mu      sync.Mutex
	log     bytes.Buffer
	lines   []string
	partial string
	notify  chan struct{}
	exited  chan struct{}
	exitErr error
	started time.Time
	lastOut time.Time // last time the guest printed anything

	// SilenceLimit fails a wait when the console prints nothing for this
	// long (a firmware that jumped into empty boot code never prints again).
	SilenceLimit time.Duration
}

// FirmwareError tells the user which Debian package provides a missing piece.
type FirmwareError struct{ What, Path, Package string }

func (e *FirmwareError) Error() string {
	return fmt.Sprintf("%s not found at %s: install the Debian package %s (apt-get install %s)", e.What, e.Path, e.Package, e.Package)
}

// Check verifies that QEMU and the firmware for m are installed.
func (m *Machine) Check() error {
	if _, err := exec.LookPath(m.Arch.QEMU.Binary); err != nil {
		return &FirmwareError{"QEMU (" + m.Arch.QEMU.Binary + ")", "$PATH", m.Arch.QEMU.Package}
	}
	if m.firmware() == "uefi" {
		for _, p := range []string{m.Arch.QEMU.UEFICode, m.Arch.QEMU.UEFIVars} {
			if _, err := os.Stat(p); err != nil {
				return &FirmwareError{"UEFI firmware", p, m.Arch.QEMU.UEFIPkg}
			}
		}
	}
	if m.firmware() == "bios" && !m.Arch.BIOS {
		return fmt.Errorf("%s has no BIOS firmware: use --firmware uefi", m.Arch.Name)
	}
	return nil
}

func (m *Machine) firmware() string {
	if !m.Arch.BIOS {
		return "uefi"
	}
	if m.Firmware == "" {
		return "bios"
	}
	return m.Firmware
}

// KVMUsable reports whether /dev/kvm can be opened for this host arch.
func KVMUsable(a arch.Info) bool {
	if !hostArchIs(a.GOARCH) {
		return false
	}
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		return false
	}
	f.Close()
	return true
}

func guessFormat(path string) string {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".qcow2":
		return "qcow2"
	case ".vmdk":
		return "vmdk"
	case ".vhd":
		return "vpc"
	}
	return "raw"
}

// Args builds the QEMU command line (without the binary).
func (m *Machine) Args(workDir, qmpPath string) ([]string, error) {
	q := m.Arch.QEMU
	mem := m.MemoryMiB
	if mem == 0 {
		mem = 1024
	}
	cpus := m.CPUs
	if cpus == 0 {
		cpus = 2
	}
	accel := "tcg,thread=multi"
	if m.KVM && KVMUsable(m.Arch) {
		accel = "kvm"
	}
	machine := q.Machine
	a := []string{"-machine", machine, "-accel", accel, "-cpu", q.CPU, "-m", fmt.Sprint(mem), "-smp", fmt.Sprint(cpus),
		"-display", "none", "-vga", "none", "-no-user-config", "-nodefaults",
		"-chardev", "stdio,id=ser0,signal=off", "-serial", "chardev:ser0",
		"-qmp", "unix:" + qmpPath + ",server=on,wait=off",
	}
	if m.firmware() == "bios" {
		// SeaBIOS reports boot failures only on its debug port: keep them
		// so a broken image fails fast with the reason.
		a = append(a, "-chardev", "file,id=biosdbg,path="+filepath.Join(workDir, "bios.log"), "-device", "isa-debugcon,iobase=0x402,chardev=biosdbg")
	}
	if m.firmware() == "uefi" {
		vars := filepath.Join(workDir, "efivars.fd")
		if err := copyFile(q.UEFIVars, vars); err != nil {
			return nil, &FirmwareError{"UEFI variable store", q.UEFIVars, q.UEFIPkg}
		}
		a = append(a, "-drive", "if=pflash,format=raw,unit=0,readonly=on,file="+q.UEFICode,
			"-drive", "if=pflash,format=raw,unit=1,file="+vars)
	}
	// Controllers first: QEMU resolves a device's bus when it meets it.
	for _, d := range m.Drives {
		if d.Media == "usb" {
			a = append(a, "-device", "qemu-xhci,id=xhci")
			break
		}
	}
	for _, d := range m.Drives {
		if d.Media == "cdrom" && q.CDROM != "ide" {
			a = append(a, "-device", "virtio-scsi-pci,id=scsi0")
			break
		}
	}
	ideCDs := 0
	for i, d := range m.Drives {
		if _, err := os.Stat(d.Path); err != nil {
			return nil, fmt.Errorf("image %s: %w", d.Path, err)
		}
		f := d.Format
		if f == "" {
			f = guessFormat(d.Path)
		}
		if d.Media == "cdrom" {
			f = "raw"
		}
		opts := fmt.Sprintf("if=none,id=drv%d,file=%s,format=%s", i, d.Path, f)
		if d.Snapshot {
			opts += ",snapshot=on"
		}
		if d.ReadOnly || d.Media == "cdrom" {
			opts += ",readonly=on"
		}
		if d.Media == "cdrom" {
			opts += ",media=cdrom"
		}
		a = append(a, "-drive", opts)
		boot := ""
		if i == 0 {
			boot = ",bootindex=0"
		}
		switch d.Media {
		case "cdrom":
			if q.CDROM == "ide" {
				// q35's AHCI ports are buses of one unit each: name the port,
				// or a second CD-ROM (a seed) lands on the first one's.
				bus := ""
				if strings.HasPrefix(q.Machine, "q35") {
					bus = fmt.Sprintf(",bus=ide.%d", ideCDs)
				}
				ideCDs++
				a = append(a, "-device", fmt.Sprintf("ide-cd,drive=drv%d%s%s", i, bus, boot))
			} else {
				a = append(a, "-device", fmt.Sprintf("scsi-cd,drive=drv%d,bus=scsi0.0%s", i, boot))
			}
		case "usb":
			a = append(a, "-device", fmt.Sprintf("usb-storage,drive=drv%d,bus=xhci.0,removable=on%s", i, boot))
		default:
			a = append(a, "-device", fmt.Sprintf("virtio-blk-pci,drive=drv%d%s", i, boot))
		}
	}
	switch {
	case m.Net == "none":
	case m.Net == "" || m.Net == "user":
		// restrict=on: the guest reaches nothing beyond QEMU's own user
		// network (no host, no outside), so probes of metadata addresses
		// stay inside the VM's world; forwarded ports still work.
		nd := "user,id=net0,restrict=on"
		if m.UserNet != "" {
			nd += ",net=" + m.UserNet
		}
		for _, f := range m.Forwards {
			nd += fmt.Sprintf(",hostfwd=tcp:127.0.0.1:%d-:%d", f.Host, f.Guest)
		}
		for _, f := range m.GuestForwards {
			// Commas inside one -netdev option value are doubled.
			nd += fmt.Sprintf(",guestfwd=tcp:%s:%d-%s", f.Addr, f.Port, strings.ReplaceAll(f.Target, ",", ",,"))
		}
		a = append(a, "-netdev", nd, "-device", q.NIC+",netdev=net0"+m.macOpt())
	case strings.HasPrefix(m.Net, "socket:"):
		// Several VMs on one L2 segment over loopback multicast-free UDP pairs
		// are set up by the caller; here: listen on / connect to a TCP port.
		spec := strings.TrimPrefix(m.Net, "socket:")
		a = append(a, "-netdev", "socket,id=net0,"+spec, "-device", q.NIC+",netdev=net0"+m.macOpt())
	case strings.HasPrefix(m.Net, "switch:"):
		// A port of a Switch: frames travel as UDP datagrams on loopback.
		sw, vm, err := parseSwitchNet(m.Net)
		if err != nil {
			return nil, err
		}
		nd := fmt.Sprintf("dgram,id=net0,remote.type=inet,remote.host=127.0.0.1,remote.port=%d,local.type=inet,local.host=127.0.0.1,local.port=%d", sw, vm)
		a = append(a, "-netdev", nd, "-device", q.NIC+",netdev=net0"+m.macOpt())
	default:
		return nil, fmt.Errorf("unknown network %q (want user, none, switch:SWITCHPORT:VMPORT or socket:listen=127.0.0.1:PORT / socket:connect=127.0.0.1:PORT)", m.Net)
	}
	a = append(a, "-device", "virtio-rng-pci")
	return append(a, m.ExtraArgs...), nil
}

func (m *Machine) macOpt() string {
	if m.MAC == "" {
		return ""
	}
	return ",mac=" + m.MAC
}

// Start boots the machine.
func (m *Machine) Start(ctx context.Context) (*VM, error) {
	if err := m.Check(); err != nil {
		return nil, err
	}
	v := &VM{notify: make(chan struct{}, 1), exited: make(chan struct{}), workDir: m.WorkDir, started: time.Now(),
		lastOut: time.Now(), SilenceLimit: 90 * time.Second}
	if v.workDir == "" {
		d, err := os.MkdirTemp("", "kiln-vm-")
		if err != nil {
			return nil, err
		}
		v.workDir, v.ownDir = d, true
	}
	v.qmpPath = filepath.Join(v.workDir, "qmp.sock")
	args, err := m.Args(v.workDir, v.qmpPath)
	if err != nil {
		v.cleanup()
		return nil, err
	}
	v.cmd = exec.Command(m.Arch.QEMU.Binary, args...)
	// Own process group: a Ctrl-C on the user's terminal reaches kiln, which
	// asks the guest to power off, instead of killing QEMU mid-write.
	v.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if m.Stdin != nil {
		v.cmd.Stdin = m.Stdin
	}
	out, err := v.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	v.cmd.Stderr = &stderrRecorder{v: v}
	if err := v.cmd.Start(); err != nil {
		v.cleanup()
		return nil, fmt.Errorf("starting %s: %w", m.Arch.QEMU.Binary, err)
	}
	go v.readConsole(out, m.Console)
	go func() {
		<-ctx.Done()
		v.Kill()
	}()
	return v, nil
}

// stderrRecorder keeps what QEMU itself prints (errors about devices, files)
// in the console log, prefixed so it reads apart from the guest.
type stderrRecorder struct{ v *VM }

func (w *stderrRecorder) Write(p []byte) (int, error) {
	w.v.record(append([]byte("qemu: "), p...))
	return len(p), nil
}

func (v *VM) readConsole(r io.Reader, tee io.Writer) {
	buf := make([]byte, 4096)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if tee != nil {
				tee.Write(buf[:n])
			}
			v.record(buf[:n])
		}
		if err != nil {
			break
		}
	}
	err := v.cmd.Wait()
	v.mu.Lock()
	v.exitErr = err
	v.mu.Unlock()
	close(v.exited)
	v.cleanup()
}

func (v *VM) record(p []byte) {
	v.mu.Lock()
	v.lastOut = time.Now()
	v.log.Write(p)
	s := v.partial + strings.ReplaceAll(string(p), "\r", "")
	parts := strings.Split(s, "\n")
	v.partial = parts[len(parts)-1]
	v.lines = append(v.lines, parts[:len(parts)-1]...)
	v.mu.Unlock()
	select {
	case v.notify <- struct{}{}:
	default:
	}
}

func (v *VM) cleanup() {
	if v.ownDir {
		os.RemoveAll(v.workDir)
	}
}

// Log is everything the console and QEMU printed so far.
func (v *VM) Log() string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.log.String()
}

// biosLog is what SeaBIOS wrote to its debug port (empty under UEFI).
func (v *VM) biosLog() string {
	b, _ := os.ReadFile(filepath.Join(v.workDir, "bios.log"))
	return string(b)
}

// Exited is closed when QEMU has exited.
func (v *VM) Exited() <-chan struct{} { return v.exited }

// failurePatterns end a wait early: the machine cannot reach the line any more.
var failurePatterns = []*regexp.Regexp{
	regexp.MustCompile(`Kernel panic - not syncing`),
	regexp.MustCompile(`No bootable device`),
	regexp.MustCompile(`Boot failed: not a bootable disk`),
	regexp.MustCompile(`BdsDxe: failed to load Boot\d+ .*\n?.*No bootable option`),
	regexp.MustCompile(`No bootable option or device was found`),
	regexp.MustCompile(`>>Start PXE over IPv4`), // UEFI fell through to network boot: the disk did not boot
	regexp.MustCompile(`iPXE initialising devices`),
	regexp.MustCompile(`Could not open image file`),
	regexp.MustCompile(`Could not load image`),
	regexp.MustCompile(`UEFI Interactive Shell`), // nothing bootable: OVMF fell back to its shell
	regexp.MustCompile(`Shell> `),
}

// BootError carries the console log of a failed boot.
type BootError struct {
	Reason string
	Log    string
}

func (e *BootError) Error() string {
	return fmt.Sprintf("%s\n--- console (last 60 lines) ---\n%s", e.Reason, tail(e.Log, 60))
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// WaitFor waits until a console line matches re, and returns the line. It
// fails fast when the firmware or kernel reports a fatal boot error or QEMU
// exits, returning a *BootError with the console log.
func (v *VM) WaitFor(ctx context.Context, re *regexp.Regexp, timeout time.Duration) (string, error) {
	return v.WaitFrom(ctx, re, 0, timeout)
}

// WaitFrom is WaitFor looking only at console lines from index from on
// (see LineCount): after a reboot in place, the lines of the next boot.
func (v *VM) WaitFrom(ctx context.Context, re *regexp.Regexp, from int, timeout time.Duration) (string, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	seen := from
	for {
		v.mu.Lock()
		lines := v.lines[seen:]
		seen = len(v.lines)
		v.mu.Unlock()
		for _, l := range lines {
			if re.MatchString(l) {
				return l, nil
			}
		}
		whole := v.Log() + v.biosLog()
		for _, f := range failurePatterns {
			if f.MatchString(whole) {
				return "", &BootError{Reason: fmt.Sprintf("boot failed (console shows %q) before %q", f.String(), re.String()), Log: whole}
			}
		}
		v.mu.Lock()
		silent := time.Since(v.lastOut)
		v.mu.Unlock()
		if v.SilenceLimit > 0 && silent > v.SilenceLimit {
			return "", &BootError{Reason: fmt.Sprintf("console silent for %s before %q: the machine is stuck", v.SilenceLimit, re.String()), Log: whole}
		}
		select {
		case <-v.notify:
		case <-v.exited:
			// Drain what was printed last.
			v.mu.Lock()
			rest := append(append([]string(nil), v.lines[seen:]...), v.partial)
			v.mu.Unlock()
			for _, l := range rest {
				if re.MatchString(l) {
					return l, nil
				}
			}
			return "", &BootError{Reason: fmt.Sprintf("QEMU exited (%v) before %q appeared", v.exitErr, re.String()), Log: v.Log()}
		case <-deadline.C:
			return "", &BootError{Reason: fmt.Sprintf("timed out after %s waiting for %q", timeout, re.String()), Log: v.Log()}
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// LineCount is how many complete console lines the VM has printed.
func (v *VM) LineCount() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return len(v.lines)
}

// Elapsed is the time since QEMU started.
func (v *VM) Elapsed() time.Duration { return time.Since(v.started) }

// Wait waits for QEMU to exit, up to timeout.
func (v *VM) Wait(timeout time.Duration) error {
	select {
	case <-v.exited:
		return nil
	case <-time.After(timeout):
		return errors.New("QEMU did not exit in time")
	}
}

// Kill stops QEMU at once.
func (v *VM) Kill() {
	if v.cmd != nil && v.cmd.Process != nil {
		select {
		case <-v.exited:
		default:
			v.cmd.Process.Kill()
		}
	}
}

// Powerdown presses the virtual power button (ACPI / GPIO) through QMP.
func (v *VM) Powerdown() error {
	_, err := v.QMP("system_powerdown", nil)
	return err
}

// QMP sends one command over the QEMU monitor protocol and returns its reply.
func (v *VM) QMP(command string, args map[string]any) (string, error) {
	return qmpCommand(v.qmpPath, command, args)
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// Lines returns the console lines seen so far.
func (v *VM) Lines() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]string(nil), v.lines...)
}
