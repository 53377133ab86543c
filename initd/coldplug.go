package initd

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"

	"github.com/kilnproject/kiln/initd/kmod"
	"golang.org/x/sys/unix"
)

// coldplugWorkers bounds the module loads running at once: enough that a
// driver waiting for its hardware (ahci resetting links) does not hold up
// the others, few enough not to flood a small VM.
const coldplugWorkers = 8

// coldplugger loads drivers for devices as they are found (a sysfs scan or
// a uevent), without waiting for the loads: the caller keeps looking for
// the boot medium meanwhile. Drivers on the way to the medium (storage)
// load at normal priority; the others (network, RNG, input, CPU features)
// at a lower one, with their own workers, so they use the CPU the storage
// chain leaves idle instead of taking turns with it: under emulation each
// insertion costs tens of milliseconds of CPU and a VM has few CPUs.
type coldplugger struct {
	loader *kmod.Loader
	sys    string // /sys
	logf   func(format string, args ...any)

	mu      sync.Mutex
	done    map[string]bool // modaliases already handled
	devices int
	loaded  int
	wg      sync.WaitGroup
	sem     chan struct{} // storage drivers
	lowSem  chan struct{} // the rest

	// scsiDevices are modaliases of devices expected behind a SCSI host
	// (an ISO's CD-ROM): their drivers load as if announced
	// as soon as a SCSI host driver is on its way, so the host's scan finds
	// its driver ready instead of announcing a device that then waits for
	// a uevent round trip and a module load (0.1-0.3 s under emulation).
	scsiDevices []string
	scsiOnce    sync.Once

	// deferred are devices whose drivers nothing in the boot waits for
	// (see afterReady): they are not loaded, and not reported handled, so
	// the system stage finds them again and loads them once the node is
	// ready.
	deferred []string
}

func newColdplugger(l *kmod.Loader, sys string, logf func(string, ...any)) *coldplugger {
	return &coldplugger{loader: l, sys: sys, logf: logf, done: map[string]bool{},
		sem: make(chan struct{}, coldplugWorkers), lowSem: make(chan struct{}, coldplugWorkers)}
}

// scan enumerates sysfs and starts loads for devices not seen yet as it
// finds them. It returns how many devices were new.
func (c *coldplugger) scan() int {
	n := 0
	err := kmod.EachDeviceModalias(c.sys, func(a string) {
		if c.add(a) {
			n++
		}
	})
	if err != nil {
		c.logf("coldplug: %v", err)
	}
	return n
}

// add starts the load for one modalias unless it was handled before.
func (c *coldplugger) add(modalias string) bool {
	c.mu.Lock()
	if modalias == "" || c.done[modalias] {
		c.mu.Unlock()
		return false
	}
	c.done[modalias] = true
	c.devices++
	if afterReady(modalias) {
		c.deferred = append(c.deferred, modalias)
		c.mu.Unlock()
		return true
	}
	c.mu.Unlock()
	c.start(modalias)
	return true
}

// start loads modalias's drivers in the background. Most devices need
// none, or one another device's load brings: they cost no goroutine
// (and, at the low priority, no OS thread of its own).
func (c *coldplugger) start(modalias string) {
	if !c.loader.Wanted(modalias) {
		return
	}
	c.wg.Add(1)
	sem := c.sem
	if !mayHoldMedium(modalias) {
		sem = c.lowSem
	}
	go func() {
		defer c.wg.Done()
		if len(c.scsiDevices) > 0 && c.needsSCSI(modalias) {
			c.scsiOnce.Do(func() {
				for _, a := range c.scsiDevices {
					c.add(a)
				}
			})
		}
		if sem == c.lowSem {
			defer lowerPriority()()
		}
		sem <- struct{}{}
		defer func() { <-sem }()
		load := c.loader.LoadAlias
		if sem == c.lowSem {
			// Not on the way to the medium: do not wait for the storage
			// scan (see kmod.AsyncProbe). A device behind such a driver
			// appears a little later and is announced like any other.
			load = c.loader.LoadAliasAsync
		}
		n, err := load(modalias)
		if err != nil {
			c.logf("coldplug %s: %v", modalias, err)
		}
		c.mu.Lock()
		c.loaded += n
		c.mu.Unlock()
	}()
}

// loadProviders starts loading, of the deferred devices' drivers, those
// that implement one of algs in the kernel's crypto API (their
// "crypto-ALG" alias): a filesystem picks its implementation of a
// checksum when it is mounted, and keeps it. The devices stay deferred:
// their other drivers (crct10dif_pclmul, virtio_rng, ...) wait for ready.
func (c *coldplugger) loadProviders(algs ...string) {
	providers := map[string]bool{}
	for _, alg := range algs {
		for _, m := range c.loader.Aliases.Match("crypto-" + alg) {
			providers[m] = true
		}
	}
	c.mu.Lock()
	deferred := append([]string(nil), c.deferred...)
	c.mu.Unlock()
	var want []string
	for _, a := range deferred {
		for _, m := range c.loader.Aliases.Match(a) {
			if providers[m] && !c.loader.Loaded(m) {
				want = append(want, m)
			}
		}
	}
	if len(want) == 0 {
		return
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer lowerPriority()()
		for _, m := range want {
			if err := c.loader.LoadAsync(m); err != nil {
				c.logf("module %s: %v", m, err)
			}
		}
	}()
}

// needsSCSI reports whether a driver for modalias needs the SCSI core,
// i.e. is a SCSI host driver (ahci, virtio_scsi, usb_storage, uas, ...).
func (c *coldplugger) needsSCSI(modalias string) bool {
	for _, m := range c.loader.Aliases.Match(modalias) {
		order, _ := c.loader.Deps.Order(m)
		for _, d := range order {
			if d == "scsi_mod" {
				return true
			}
		}
	}
	return false
}

// wait blocks until every started load finished and returns the totals.
func (c *coldplugger) wait() (devices, loaded int) {
	c.wg.Wait()
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.devices, c.loaded
}

// mayHoldMedium reports whether a device's driver may be on the way to the
// boot medium: mass-storage and USB controllers (PCI class 01, 0c03), virtio
// block and SCSI, SCSI devices, USB mass storage, and whatever bus it cannot
// tell (platform, vmbus, ...). NICs, RNGs, input, ACPI (but VMBus) and DMI
// devices and CPU features are not.
func mayHoldMedium(modalias string) bool {
	bus, rest, _ := strings.Cut(modalias, ":")
	switch bus {
	case "pci": // pci:v...d...sv...sd...bcCCscSSiII
		i := strings.LastIndex(rest, "bc")
		if i < 0 || len(rest) < i+8 {
			return true
		}
		class, sub := rest[i+2:i+4], rest[i+6:i+8]
		return class == "01" || class == "0C" && sub == "03"
	case "virtio": // virtio:dNNNNNNNNvNNNNNNNN
		return strings.HasPrefix(rest, "d00000002v") || strings.HasPrefix(rest, "d00000008v")
	case "usb": // usb:v...p...d...dc..dsc..dp..icIIisc..ip..in..
		i := strings.Index(rest, "ic")
		return i < 0 || strings.HasPrefix(rest[i:], "ic08") || strings.HasPrefix(rest[i:], "ic09") // mass storage, hub
	case "acpi": // Hyper-V's VMBus carries its disks
		return strings.HasPrefix(strings.ToUpper(rest), "VMBUS")
	case "cpu", "input", "dmi", "serio", "hid":
		return false
	}
	return true
}

// afterReady reports whether a device's driver can wait until the node is
// ready: nothing in the boot uses it, and its insertion costs the boot CPU
// time (under emulation, tens of milliseconds each; the CPU-feature crypto
// drivers also run the kernel's self-tests of their algorithms). These are
// the CPU-feature drivers (crc32c_intel, crct10dif_pclmul, aesni_intel, ...:
// the generic code does the same work until they are in) and hardware
// RNGs (the kernel seeds its generator from the CPU and timing jitter).
// A boot that mounts ext4 loads its crc32c's among them before (see
// coldplugger.loadProviders): the filesystem picks its checksum code at
// mount time.
func afterReady(modalias string) bool {
	bus, rest, _ := strings.Cut(modalias, ":")
	switch bus {
	case "cpu":
		return true
	case "virtio": // virtio:dNNNNNNNNvNNNNNNNN, device 4: entropy source
		return strings.HasPrefix(rest, "d00000004v")
	}
	return false
}

// inBackground runs f on its own OS thread at a lower CPU priority, so
// work that is not on the path to the boot medium (loading overlay, ...)
// fills the time the kernel spends waiting for hardware instead of
// competing with the drivers the medium needs. done is closed after f.
func inBackground(f func()) (done <-chan struct{}) {
	ch := make(chan struct{})
	go func() {
		defer close(ch)
		defer lowerPriority()()
		f()
	}()
	return ch
}

// niced are the threads lowerPriority moved to SCHED_IDLE and that still run, so hurry
// can undo it once the boot waits for their work.
var niced struct {
	sync.Mutex
	tids    map[int]bool
	hurried bool
}

// lowerPriority moves the calling goroutine to its own OS thread under
// SCHED_IDLE (after hurry: at the normal priority) and returns what to
// call when the goroutine is done. The thread dies with the goroutine (no
// UnlockOSThread), so its policy never leaks to other goroutines.
func lowerPriority() (done func()) {
	runtime.LockOSThread()
	tid := unix.Gettid()
	niced.Lock()
	defer niced.Unlock()
	if niced.hurried {
		return func() {}
	}
	setIdlePolicy(tid, true)
	if niced.tids == nil {
		niced.tids = map[int]bool{}
	}
	niced.tids[tid] = true
	return func() {
		niced.Lock()
		delete(niced.tids, tid)
		niced.Unlock()
	}
}

// hurry puts the niced threads back at the normal priority, and the ones
// to come: once the medium is found the boot waits for the rest of the
// loads, and on a busy host SCHED_IDLE starves them.
func hurry() {
	niced.Lock()
	defer niced.Unlock()
	niced.hurried = true
	for tid := range niced.tids {
		setIdlePolicy(tid, false)
	}
}

// coldplugState carries what the initramfs stage handled over the exec:
// the module index digest, then one handled modalias per line. With the
// same index in the system image, only devices that appeared since need a
// driver, and often none did.
const coldplugState = "/run/kiln/coldplug"

// handled returns the modaliases seen so far, sorted, but the deferred
// ones.
func (c *coldplugger) handled() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	deferred := map[string]bool{}
	for _, a := range c.deferred {
		deferred[a] = true
	}
	out := make([]string, 0, len(c.done))
	for a := range c.done {
		if !deferred[a] {
			out = append(out, a)
		}
	}
	sort.Strings(out)
	return out
}

func writeColdplugState(path, digest string, handled []string) error {
	var b strings.Builder
	b.WriteString(digest + "\n")
	for _, a := range handled {
		b.WriteString(a + "\n")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

// readColdplugState returns the digest and handled set written by
// writeColdplugState ("" and nil when there is none).
func readColdplugState(path string) (string, map[string]bool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", nil, err
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) == 0 || len(lines[0]) != 64 {
		return "", nil, fmt.Errorf("%s: first line is not a module index digest", path)
	}
	done := make(map[string]bool, len(lines)-1)
	for _, a := range lines[1:] {
		if a != "" {
			done[a] = true
		}
	}
	return lines[0], done, nil
}

// setIdlePolicy moves thread tid to SCHED_IDLE (or back to the normal
// policy). A niced thread still takes its share: eight loads at nice 10
// together weigh about as much as the one storage load they compete with,
// so under emulation the medium's drivers got half of the only CPU.
// SCHED_IDLE threads run only when nothing else wants the CPU, which is
// when the kernel waits for hardware. The kernel work they start
// (asynchronous probes) runs in its own threads at the normal priority.
func setIdlePolicy(tid int, idle bool) {
	attr := unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_IDLE}
	if !idle {
		attr.Policy = schedOther // nice 0
	}
	if err := unix.SchedSetAttr(tid, &attr, 0); err != nil && idle {
		unix.Setpriority(unix.PRIO_PROCESS, tid, 19) // kernels without SCHED_IDLE
	}
}

// schedOther is SCHED_OTHER, the normal policy (x/sys/unix names only the others).
const schedOther = 0
