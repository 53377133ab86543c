package initd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/kilnproject/kiln/initd/bootlog"
	"github.com/kilnproject/kiln/initd/cmdline"
	"github.com/kilnproject/kiln/initd/kmod"
	"github.com/kilnproject/kiln/initd/loop"
	"github.com/kilnproject/kiln/initd/medium"
	"github.com/kilnproject/kiln/initd/mounts"
	"github.com/kilnproject/kiln/initd/network"
	"github.com/kilnproject/kiln/initd/nodeconfig"
	"github.com/kilnproject/kiln/initd/power"
	"github.com/kilnproject/kiln/initd/reaper"
	"github.com/kilnproject/kiln/initd/state"
	"github.com/kilnproject/kiln/initd/supervisor"
	"github.com/kilnproject/kiln/initd/uevent"
	"golang.org/x/sys/unix"
)

// Paths and environment shared by the two stages.
const (
	SysRoot       = "/sysroot"
	MediumDir     = "/run/kiln/medium"
	InitramfsJSON = "/etc/kiln/initramfs.json"
	SystemJSON    = "/etc/kiln/system.json" // in the system image
	SystemImage   = "kiln/system.sqfs"      // on the ISO
	LogFile       = "/var/log/kiln/initd.log"
	ServiceLogDir = "/var/log/kiln"
	CgroupRoot    = "/sys/fs/cgroup/kiln"
	initramfsLog  = "/run/kiln/initramfs.log" // carries the first stage's log over the exec
	envStage      = "KILN_STAGE"
	envKernel     = "KILN_KERNEL_SECONDS" // uptime when initd started in the initramfs
	envMedium     = "KILN_MEDIUM"         // iso or disk
	envDisk       = "KILN_DISK"
	envState      = "KILN_STATE"
	envStateIndex = "KILN_STATE_INDEX"
	systemPATH    = "PATH=/usr/sbin:/usr/bin:/sbin:/bin"
)

// Seeder applies the node's seed (datasource, cloud-config, network).
// It is nodeconfig.Apply on a node; tests pass their own. The result may
// be nil on error.
type Seeder func(ctx context.Context, cmd cmdline.Cmdline, log func(string, ...any)) (*nodeconfig.Result, error)

func applyNodeconfig(ctx context.Context, cmd cmdline.Cmdline, log func(string, ...any), dhcp *network.Prefetch) (*nodeconfig.Result, error) {
	return nodeconfig.Apply(ctx, nodeconfig.Options{Log: log, Cmdline: cmd, Root: "/", DHCP: dhcp})
}

// Boot is the state the phases share.
type Boot struct {
	Log     *bootlog.Logger
	Cmdline cmdline.Cmdline
	Kernel  time.Duration // uptime when initd started in the initramfs
	Seed    Seeder
	Reaper  *reaper.Reaper
	Super   *supervisor.Supervisor

	console *stampedConsole // nil in tests
	kver    string
	modMu   sync.Mutex
	modules *kmod.Loader // nil until needed in the system stage (see loader)
	// cpuAtStart is CPU time per thread when initd started (kiln.debug).
	cpuAtStart cpuMark
	sysModule  string // /sys/module unless a test says otherwise
	medium     *medium.Medium
	events     *uevent.Socket // nil when the kernel would not give us one
	coldplug   *coldplugger
	afterReady []string          // modaliases whose drivers load once the node is ready
	loading    []<-chan struct{} // background loads from the initramfs (see loadInBackground)
	initd      string            // initramfs.json's digest of this binary
	sameInit   bool              // the system image's /sbin/init is this binary: no exec
	initRead   chan error        // the system init's prefetch result
	oldRoot    *os.File          // the initramfs after switch_root, until freed
	dhcp       *network.Prefetch // started once the NIC drivers are in (see startDHCP)
	rdIndex    <-chan string     // the initramfs's module index digest, being computed
	sysIndex   <-chan string     // the system image's, being computed
	sysDigest  string            // ... and its value
	hostname   string
	addrs      []string

	actions   chan<- power.Action // the power actions PID 1 carries out
	nodeState                     // machine config, phase results, node API
}

func (b *Boot) logf(format string, args ...any) { b.Log.Printf(format, args...) }

// InitramfsPhases find and mount the system image, then switch to it.
func (b *Boot) InitramfsPhases() []Phase {
	return []Phase{
		{"early-mounts", func(context.Context) error { return mounts.Early() }},
		{"cmdline", b.readCmdline},
		{"modules", b.loadInitramfsModules},
		{"find-medium", b.findMedium},
		{"mount-system", b.mountSystem},
		{"switch-root", b.switchRoot},
	}
}

// SystemPhases bring the node up after switch_root.
func (b *Boot) SystemPhases() []Phase {
	return []Phase{
		{"early-mounts", func(context.Context) error {
			if err := mounts.Early(); err != nil {
				return err
			}
			return mounts.Cgroup2()
		}},
		{"cmdline", b.readCmdline},
		{"modules", b.coldplugSystem},
		{"state", b.prepareState},
		{"seed", b.seed},
		{"services", b.startServices},
		{"node-api", b.startNodeAPI},
		{"cluster", b.startCluster}, // in the background: see clusterphase.go
	}
}

func (b *Boot) readCmdline(context.Context) error {
	c, err := cmdline.Read("/proc/cmdline")
	if err != nil {
		return err
	}
	b.Cmdline = c
	b.Log.SetDebug(c.Debug())
	if b.console != nil {
		b.console.on.Store(c.Debug())
	}
	b.Log.Debugf("cmdline: %v", c)
	if c.Debug() {
		b.Log.Debugf("%s", cpuLine()) // read only when it is logged: every stage start runs this
	}
	if c.Debug() && b.cpuAtStart == (cpuMark{}) {
		b.cpuAtStart = markCPU()
		resetKernelProfile()
	}
	return nil
}

type initramfsConfig struct {
	Kernel  string   `json:"kernel"`
	Modules []string `json:"modules"`
	Initd   string   `json:"initd"` // sha256:HEX of /init
	// ModuleIndex is sha256:HEX, kmod.Digest of /lib/modules/KVER.
	ModuleIndex string `json:"moduleIndex"`
}

// systemConfig is the part of the system image's system.json initd reads.
type systemConfig struct {
	Initd       string `json:"initd"`       // sha256:HEX of /sbin/init
	ModuleIndex string `json:"moduleIndex"` // sha256:HEX, kmod.Digest of /lib/modules/KVER
}

// indexDigest is a config's module index digest without its "sha256:"
// prefix, as kmod.Digest gives it; "" if it names none.
func indexDigest(s string) string {
	if d, ok := strings.CutPrefix(s, "sha256:"); ok && len(d) == 64 {
		return d
	}
	return ""
}

// kernelRelease is the running kernel's version (uname -r).
func kernelRelease() string {
	var u unix.Utsname
	unix.Uname(&u)
	return unix.ByteSliceToString(u.Release[:])
}

func (b *Boot) openModules() error {
	b.kver = kernelRelease()
	l, err := kmod.Open(filepath.Join("/lib/modules", b.kver))
	if err != nil {
		return fmt.Errorf("modules for kernel %s: %w", b.kver, err)
	}
	l.Log = b.Log.Debugf
	l.Options = moduleOptions()
	if h := hypervisor(); h != "" {
		b.Log.Debugf("virtual machine (%s): module defaults %v", h, vmModuleDefaults)
	}
	b.modules = l
	return nil
}

// loadInitramfsModules starts loading initramfs.json's modules, in order,
// in the background: most of them (ext4, overlay, vfat) are not needed to
// find the medium, and loading them fills the time the kernel spends
// probing hardware. mount-system waits for them.
func (b *Boot) loadInitramfsModules(context.Context) error {
	var cfg initramfsConfig
	data, err := os.ReadFile(InitramfsJSON)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, &cfg); err != nil {
		return fmt.Errorf("%s: %w", InitramfsJSON, err)
	}
	b.initd = cfg.Initd
	start := time.Now()
	if err := b.openModules(); err != nil {
		return err
	}
	b.Log.Debugf("modules.dep and modules.alias read in %s", Millis(time.Since(start)))
	// The system stage compares this index with the image's. The builder
	// recorded its digest; an initramfs without it is hashed now, while
	// the medium search leaves CPU to spare.
	rd, dir := make(chan string, 1), b.modules.Dir
	b.rdIndex = rd
	if d := indexDigest(cfg.ModuleIndex); d != "" {
		rd <- d
	} else {
		inBackground(func() { // wanted at switch-root only
			d, _ := kmod.Digest(dir)
			rd <- d
		})
	}
	if cfg.Kernel != "" && cfg.Kernel != b.kver {
		b.logf("warning: %s is for kernel %s, running %s", InitramfsJSON, cfg.Kernel, b.kver)
	}
	// Listen before anything is loaded: every device that shows up from
	// now on is announced, and the first sysfs scan covers the rest.
	if b.events, err = uevent.Open(); err != nil {
		b.logf("%v; polling for devices instead", err)
	}
	mods := cfg.Modules
	if _, disk := b.Cmdline["kiln.slot"]; disk {
		// Booting from the installed disk: the ISO's modules are for a
		// seed volume at most, which loads them when it is mounted.
		mods = nil
		for _, m := range cfg.Modules {
			if !isoOnlyModules[kmod.Name(m)] {
				mods = append(mods, m)
			}
		}
	}
	b.loadInBackground("", mods)
	return nil
}

// isoOnlyModules mount the system image from an ISO (the filesystem, the
// loop device for the squashfs file on it).
var isoOnlyModules = map[string]bool{"isofs": true, "loop": true}

// loadInBackground loads names in order at a lower priority (see
// inBackground); switch-root waits for them (waitModules).
func (b *Boot) loadInBackground(what string, names []string) {
	start := time.Now()
	b.loading = append(b.loading, inBackground(func() {
		n := 0
		for _, m := range names {
			// Filesystems and such: nothing to wait for (kmod.AsyncProbe).
			if err := b.modules.LoadAsync(m); err != nil {
				b.logf("module %s: %v", m, err) // not fatal: it may be built in or not needed here
				continue
			}
			n++
		}
		b.logf("modules: %d of %d%s loaded in %s", n, len(names), what, Millis(time.Since(start)))
	}))
}

// waitModules waits for the background loads.
func (b *Boot) waitModules() {
	start := time.Now()
	waited := false
	for _, done := range b.loading {
		select {
		case <-done:
		default:
			waited = true
			<-done
		}
	}
	b.loading = nil
	if waited {
		b.Log.Debugf("waited %s for the initramfs modules", Millis(time.Since(start)))
	}
}

// isoDevices are the modaliases of a SCSI CD-ROM (sr), what an ISO is
// mostly read from. Not the disk driver (sd_mod, with its CRC and T10 PI
// helpers: five modules): a USB stick waits a second for usb-storage to
// settle anyway, and a one-CPU VM booting from a CD would pay for it.
var isoDevices = []string{"scsi:t-0x05"}

// Medium search timing: with uevents a new disk is looked at the moment
// it appears and sysfs is rescanned only as a safety net; without them,
// rescan and look on a short timer.
const (
	pollEvery   = 250 * time.Millisecond
	rescanEvery = time.Second
)

// findMedium loads drivers for the devices present and for those the
// kernel announces, and looks for the medium whenever a block device
// appears, until it is found or kiln.timeout passes: USB and SCSI devices
// appear late.
func (b *Boot) findMedium(ctx context.Context) error {
	timeout, err := b.Cmdline.Timeout()
	if err != nil {
		b.logf("%v", err)
	}
	slot, err := b.Cmdline.Slot()
	if err != nil {
		return err
	}
	deadline := time.Now().Add(timeout)
	b.coldplug = newColdplugger(b.modules, "/sys", b.logf)
	if _, disk := b.Cmdline["kiln.slot"]; !disk {
		// An ISO boots from a CD-ROM (or a USB stick): SCSI devices to Linux.
		b.coldplug.scsiDevices = isoDevices
	}
	start := time.Now()
	nd := b.coldplug.scan()
	b.Log.Debugf("coldplug: %d devices found in %s, loading their drivers", nd, Millis(time.Since(start)))
	for looks := 1; ; looks++ {
		m, err := medium.Find(medium.Options{SysClassBlock: "/sys/class/block", DevDir: "/dev",
			Label: b.Cmdline.Label(), Slot: slot, Log: b.Log.Debugf})
		if err == nil {
			b.medium = m
			hurry() // switch-root waits for the loads still running
			b.logf("boot medium: %s", m)
			b.Log.Debugf("medium found at look %d", looks)
			if m.Kind == medium.Disk && m.State != "" {
				// STATE is ext4: load it from here while the system image
				// is mounted, rather than from the squashfs after; the
				// CPU's crc32c first, ext4 picks its crc32c at mount time.
				b.coldplug.loadProviders(fsChecksums["ext4"]...)
				b.loadInBackground(" for STATE", fsModules["ext4"])
			}
			// The NIC drivers loaded alongside the medium's: start DHCP
			// now, it survives switch_root (an exec would drop it, and the
			// system stage asks again).
			b.startDHCP()
			return nil
		}
		if !errors.Is(err, medium.ErrNotFound) {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no ISO labelled %q and no GPT disk with SYS-%s after %v", b.Cmdline.Label(), slot, timeout)
		}
		if err := b.waitForDevices(ctx, time.Until(deadline)); err != nil {
			return err
		}
	}
}

// waitForDevices returns when a block device may have appeared: a block
// uevent, a rescan, or the poll interval. Driver loads for announced
// devices start on the way.
func (b *Boot) waitForDevices(ctx context.Context, left time.Duration) error {
	if b.events == nil {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(min(pollEvery, max(left, 0))):
		}
		if n := b.coldplug.scan(); n > 0 {
			b.Log.Debugf("coldplug: %d new devices", n)
		}
		return nil
	}
	until := time.Now().Add(min(rescanEvery, max(left, 0)))
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		evs, err := b.events.Read(time.Until(until))
		block := false
		for _, e := range evs {
			if e.Action == "add" && e.Modalias != "" {
				b.coldplug.add(e.Modalias)
			}
			if e.Subsystem == "block" && (e.Action == "add" || e.Action == "change") && medium.Candidate(e.DevName) {
				b.Log.Debugf("uevent: %s %s", e.Action, e.DevName)
				block = true
			}
			if e.Subsystem == "net" && e.Action == "add" && b.dhcp == nil {
				// A NIC is up: its DHCP exchange can use the time the
				// storage hardware takes (see startDHCP).
				b.Log.Debugf("uevent: add %s", e.Env["INTERFACE"])
				b.startDHCP()
			}
		}
		if err != nil {
			b.logf("%v; rescanning", err)
			b.coldplug.scan()
			return nil
		}
		if block {
			return nil
		}
		if !time.Now().Before(until) {
			if n := b.coldplug.scan(); n > 0 {
				b.Log.Debugf("coldplug rescan: %d new devices", n)
			}
			return nil
		}
	}
}

// mountSystem mounts the medium's system image at SysRoot. The filesystem
// modules load on demand (needFS), joining initramfs.json's background
// load when it is under way.
func (b *Boot) mountSystem(context.Context) error {
	if err := os.MkdirAll(SysRoot, 0o755); err != nil {
		return err
	}
	const ro = unix.MS_RDONLY
	src := b.medium.System
	if b.medium.Kind == medium.ISO {
		if err := mounts.Mount(b.medium.Device, MediumDir, "iso9660", ro, ""); err != nil {
			return err
		}
		if err := b.modules.Load("loop"); err != nil {
			b.Log.Debugf("module loop: %v", err) // built in, or Attach says what is wrong
		}
		lf, err := loop.Attach(filepath.Join(MediumDir, SystemImage), true)
		if err != nil {
			return err
		}
		defer lf.Close()
		src = lf.Name()
	}
	if err := mounts.Mount(src, SysRoot, "squashfs", ro, ""); err != nil {
		return err
	}
	b.logf("system image %s mounted at %s", src, SysRoot)
	sys, _ := readSystemConfig(filepath.Join(SysRoot, SystemJSON))
	if b.sameInit = sameInit(b.initd, sys); b.sameInit {
		b.Log.Debugf("the system image's /sbin/init is this initd (%s): no exec", b.initd)
		// The system stage compares the image's module index with the
		// initramfs's: the builder recorded it, or digest it while
		// switch-root waits for the loads.
		ch := make(chan string, 1)
		b.sysIndex = ch
		if d := indexDigest(sys.ModuleIndex); d != "" {
			ch <- d
		} else {
			go func() {
				d, _ := kmod.Digest(filepath.Join(SysRoot, "lib/modules", b.kver))
				ch <- d
			}()
		}
		return nil
	}
	// Read the next stage's init while switch-root runs (see prefetch).
	b.initRead = make(chan error, 1)
	go func() {
		n, took, err := prefetch(filepath.Join(SysRoot, "sbin/init"))
		b.Log.Debugf("prefetched /sbin/init (%d bytes) in %s", n, Millis(took))
		b.initRead <- err
	}()
	return nil
}

// sameInit reports whether the system image's system.json names this
// binary's initd digest (initramfs.json's). Then the system stage runs on
// in this process: exec'ing /sbin/init from the squashfs would read and
// decompress 10 MB and start the Go runtime again.
func sameInit(digest string, sys systemConfig) bool {
	return digest != "" && sys.Initd == digest
}

// readSystemConfig reads system.json (zero and an error when it cannot).
func readSystemConfig(path string) (systemConfig, error) {
	var c systemConfig
	data, err := os.ReadFile(path)
	if err != nil {
		return c, err
	}
	if err := json.Unmarshal(data, &c); err != nil {
		return systemConfig{}, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

func (b *Boot) switchRoot(context.Context) error {
	// Loads still running read their files from the initramfs, which
	// switch_root deletes: let them finish.
	if b.coldplug != nil {
		nd, nl := b.settle()
		b.logf("coldplug: %d devices, %d modules loaded", nd, nl)
		if b.sameInit {
			b.startDHCP() // if no NIC was there before: their drivers are in now
		}
		if d := <-b.rdIndex; d != "" {
			if err := writeColdplugState(coldplugState, d, b.coldplug.handled()); err != nil {
				b.logf("coldplug: %v", err) // the system stage then matches every device again
			}
		}
	}
	b.waitModules()
	b.modules = nil                     // its files go with the initramfs; the system stage opens the image's
	if b.events != nil && !b.sameInit { // in-process, the system stage reads it on
		b.events.Close()
		b.events = nil
	}
	if b.sysIndex != nil {
		b.sysDigest = <-b.sysIndex // its paths are under SysRoot: done before the move
		b.sysIndex = nil
	}
	if err := mounts.MoveInto(SysRoot, "/dev", "/proc", "/sys", "/run"); err != nil {
		return err
	}
	old, err := mounts.SwitchRoot(SysRoot)
	if err != nil {
		return err
	}
	if !b.sameInit {
		mounts.FreeRoot(old) // the exec'd init could not reach it
		return nil
	}
	b.oldRoot = old // Main frees it once the node is ready
	return nil
}

// freeInitramfs deletes the initramfs's files in the background: nothing
// reads them any more, and deleting 20 MB costs 0.1-0.5 s of CPU under
// emulation, which the boot should not wait for.
func (b *Boot) freeInitramfs() {
	if b.oldRoot == nil {
		return
	}
	old := b.oldRoot
	b.oldRoot = nil
	inBackground(func() {
		start := time.Now()
		mounts.FreeRoot(old)
		b.Log.Debugf("initramfs freed in %s", Millis(time.Since(start)))
	})
}

// settle waits for the coldplug loads and handles the devices announced
// meanwhile (a driver that binds a bus adds the devices behind it: virtio
// NICs and RNGs after virtio_pci), until a round adds none. The initramfs
// has every module at hand; the system stage would open the image's index
// for a latecomer.
func (b *Boot) settle() (devices, loaded int) {
	for {
		devices, loaded = b.coldplug.wait()
		if b.events == nil {
			return devices, loaded
		}
		evs, err := b.events.Read(0)
		n := 0
		for _, e := range evs {
			if e.Action == "add" && b.coldplug.add(e.Modalias) {
				n++
			}
		}
		if err != nil {
			n += b.coldplug.scan()
		}
		if n == 0 {
			return devices, loaded
		}
		b.Log.Debugf("coldplug: %d devices announced while loading", n)
	}
}

// ExecSystem replaces the process with the system image's init, passing
// what the second stage needs in the environment.
func (b *Boot) ExecSystem() error {
	env := []string{
		envStage + "=system",
		envKernel + "=" + strconv.FormatFloat(b.Kernel.Seconds(), 'f', 3, 64),
		systemPATH,
	}
	if m := b.medium; m != nil {
		env = append(env, envMedium+"="+string(m.Kind))
		if m.Kind == medium.Disk && m.State != "" {
			env = append(env, envDisk+"="+m.Device, envState+"="+m.State, envStateIndex+"="+strconv.Itoa(m.StateIndex))
		}
	}
	if b.initRead != nil {
		if err := <-b.initRead; err != nil {
			b.logf("prefetch /sbin/init: %v", err) // exec will say more if it matters
		}
	}
	os.MkdirAll(filepath.Dir(initramfsLog), 0o755)
	os.WriteFile(initramfsLog, []byte(b.Log.Memory()), 0o644)
	b.logf("exec /sbin/init (system stage)")
	return syscall.Exec("/sbin/init", []string{"/sbin/init"}, env)
}

// coldplugSystem loads drivers for devices the initramfs stage did not
// handle: those that appeared since, and all of them when the system
// image's module index differs from the initramfs's.
func (b *Boot) coldplugSystem(context.Context) error {
	start := time.Now()
	digest, handled, err := readColdplugState(coldplugState)
	os.Remove(coldplugState)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		b.logf("coldplug: %v", err)
	}
	sameIndex := false
	if digest != "" {
		d, err := b.sysDigest, error(nil)
		if d == "" {
			d, err = kmod.Digest(filepath.Join("/lib/modules", kernelRelease()))
		}
		if sameIndex = err == nil && d == digest; !sameIndex {
			b.Log.Debugf("coldplug: module index differs from the initramfs's (%v); matching every device", err)
		}
	}
	var aliases []string
	if sameIndex && b.events != nil {
		// Same process as the initramfs stage, its uevent socket still
		// open: a device that appeared since its last look was announced
		// there, so no sysfs scan (tens of milliseconds under emulation).
		aliases, err = announced(b.events)
		if err != nil {
			b.logf("coldplug: %v; rescanning", err)
			aliases, err = kmod.DeviceModaliases("/sys")
		}
	} else {
		aliases, err = kmod.DeviceModaliases("/sys")
	}
	if err != nil {
		b.logf("coldplug: %v", err)
	}
	if b.events != nil {
		b.events.Close()
		b.events = nil
	}
	todo := aliases
	if sameIndex {
		todo = nil
		for _, a := range aliases {
			if !handled[a] {
				todo = append(todo, a)
			}
		}
	}
	if b.coldplug != nil { // in-process: what the initramfs stage deferred
		b.coldplug.mu.Lock()
		b.afterReady = append(b.afterReady, b.coldplug.deferred...)
		b.coldplug.deferred = nil
		b.coldplug.mu.Unlock()
	}
	now := todo[:0:0]
	for _, a := range todo {
		if afterReady(a) {
			b.afterReady = append(b.afterReady, a)
		} else {
			now = append(now, a)
		}
	}
	todo = now
	defer b.startDHCP() // with the NIC drivers in
	if len(todo) == 0 {
		b.logf("coldplug: no new devices since the initramfs (%s)", Millis(time.Since(start)))
		return nil
	}
	l, err := b.loader()
	if err != nil {
		b.logf("modules: %v (continuing with what is loaded)", err)
		return nil
	}
	nd, nl := l.Coldplug(todo, map[string]bool{}, coldplugWorkers)
	b.logf("coldplug: %d devices (%d to match), %d modules loaded", len(aliases), nd, nl)
	return nil
}

// loadAfterReady loads the drivers coldplug deferred (see afterReady) in
// the background, once the node is ready.
func (b *Boot) loadAfterReady() {
	todo := b.afterReady
	b.afterReady = nil
	if len(todo) == 0 {
		return
	}
	inBackground(func() {
		start := time.Now()
		l, err := b.loader()
		if err != nil {
			b.logf("modules: %v", err)
			return
		}
		n := 0
		for _, a := range todo {
			k, err := l.LoadAliasAsync(a)
			if err != nil {
				b.logf("coldplug %s: %v", a, err)
			}
			n += k
		}
		b.Log.Debugf("coldplug: %d modules for %d devices loaded after ready in %s", n, len(todo), Millis(time.Since(start)))
	})
}

// announced returns the modaliases of the devices added since s was last
// read, without waiting.
func announced(s *uevent.Socket) ([]string, error) {
	evs, err := s.Read(0)
	var out []string
	for _, e := range evs {
		if e.Action == "add" && e.Modalias != "" {
			out = append(out, e.Modalias)
		}
	}
	return out, err
}

func (b *Boot) prepareState(context.Context) error {
	o := state.Options{Log: b.logf}
	if m := b.medium; m != nil { // the initramfs stage ran in this process
		if m.Kind == medium.Disk && m.State != "" {
			o.Disk, o.Partition, o.Index = m.Device, m.State, m.StateIndex
		}
	} else if os.Getenv(envMedium) == string(medium.Disk) && os.Getenv(envState) != "" {
		o.Disk, o.Partition = os.Getenv(envDisk), os.Getenv(envState)
		o.Index, _ = strconv.Atoi(os.Getenv(envStateIndex))
	}
	if _, err := state.Prepare(o); err != nil {
		if o.Partition == "" {
			return err
		}
		// Keep booting on tmpfs: a node without its state is still
		// reachable for repair, one stuck here is not.
		b.logf("ERROR: state on %s: %v; falling back to tmpfs, nothing will persist", o.Partition, err)
		for _, d := range []string{"/etc", "/var"} {
			unix.Unmount(d, unix.MNT_DETACH)
		}
		unix.Unmount(state.Dir, unix.MNT_DETACH)
		if _, err := state.Prepare(state.Options{Log: b.logf}); err != nil {
			return err
		}
	}
	if err := b.Log.FlushTo(LogFile); err != nil {
		b.logf("log: %v", err)
	}
	return nil
}

// startDHCP starts DHCP on the NICs there are in the background, as soon
// as there are any: when a NIC appears during the medium search, else when
// the medium is found or at switch-root (in-process), or after an exec'd
// system stage's coldplug. The exchange then runs while the medium is
// searched and mounted and the state and the local seed sources are read. The seed phase takes the lease
// (asking on NICs that appeared since) or, when the seed configures the
// network itself, releases it.
func (b *Boot) startDHCP() {
	if b.dhcp != nil || b.Seed != nil {
		return
	}
	b.dhcp = network.StartDHCP(network.Options{Log: b.logf}) // nil without a NIC
	if b.dhcp != nil {
		b.Log.Debugf("DHCP started")
	}
}

// seed never fails the boot: a bad seed leaves a reachable node.
func (b *Boot) seed(ctx context.Context) error {
	seed := b.Seed
	if seed == nil {
		seed = func(ctx context.Context, cmd cmdline.Cmdline, log func(string, ...any)) (*nodeconfig.Result, error) {
			return applyNodeconfig(ctx, cmd, log, b.dhcp)
		}
	}
	defer b.dhcp.Cancel() // unless the seed's network took it
	r, err := seed(ctx, b.Cmdline, b.logf)
	if r == nil {
		r = &nodeconfig.Result{Source: "none"}
	}
	b.hostname, b.addrs = r.Hostname, r.Addresses
	b.seedErr, b.seedSource = err, r.Source
	if err != nil {
		b.logf("ERROR: seed (%s): %v; the node stays up for repair", r.Source, err)
	} else {
		b.logf("seed: source %s, hostname %s", r.Source, r.Hostname)
	}
	b.loadMachineConfig(r)
	return nil
}

func (b *Boot) startServices(ctx context.Context) error {
	cg := CgroupRoot
	if err := os.MkdirAll(cg, 0o755); err != nil {
		b.logf("cgroups: %v; services run without their own cgroup", err)
		cg = ""
	}
	sup := supervisor.New(supervisor.Options{LogDir: ServiceLogDir, CgroupRoot: cg, Spawner: b.Reaper, Log: b.logf})
	b.Super = sup
	return sup.Start(ctx)
}

// Ready prints the ready line.
func (b *Boot) Ready() {
	total := b.Kernel
	if s, err := os.ReadFile("/proc/uptime"); err == nil {
		if d, err := ParseUptime(string(s)); err == nil {
			total = d
		}
	}
	if b.hostname == "" {
		b.hostname, _ = os.Hostname()
	}
	b.markReady()
	b.Log.Printf("%s", ReadyLine(total, b.Kernel, b.hostname, b.addrs))
	if b.Log.DebugEnabled() {
		b.Log.Debugf("%s", cpuLine())
		prof, perr := os.ReadFile(procProfile) // now: reading the rest takes a while
		b.Log.Debugf("%s", cpuTop("/proc", 8, b.cpuAtStart))
		if perr == nil {
			top, err := kernelTop(prof, "/proc/kallsyms", 20)
			if err != nil {
				top = "kernel profile: " + err.Error()
			}
			b.Log.Debugf("%s", top)
		}
	}
}

// kernelTime is the uptime when the first stage started: read it in the
// initramfs, take it from the environment in the system stage.
func kernelTime(system bool) time.Duration {
	if system {
		if v, err := strconv.ParseFloat(os.Getenv(envKernel), 64); err == nil {
			return time.Duration(v * float64(time.Second))
		}
	}
	if _, err := os.Stat("/proc/uptime"); err != nil && os.Getpid() == 1 {
		// First thing in the initramfs: /proc is not mounted yet.
		os.MkdirAll("/proc", 0o555)
		unix.Mount("proc", "/proc", "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "")
	}
	if s, err := os.ReadFile("/proc/uptime"); err == nil {
		if d, err := ParseUptime(string(s)); err == nil {
			return d
		}
	}
	return 0
}

func loadInitramfsLog(l *bootlog.Logger) {
	if b, err := os.ReadFile(initramfsLog); err == nil {
		l.Preload(strings.TrimRight(string(b), "\n"))
		os.Remove(initramfsLog)
	}
}
