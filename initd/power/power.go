// Package power is PID 1's end of life: it turns signals, Ctrl-Alt-Del and
// the power button into a poweroff or reboot, and carries it out in order
// (stop services, sync, unmount, reboot syscall).
package power

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/kilnproject/kiln/initd/mounts"
	"golang.org/x/sys/unix"
)

// Action is what the machine should do.
type Action int

const (
	Poweroff Action = iota + 1
	Reboot
)

func (a Action) String() string {
	if a == Reboot {
		return "reboot"
	}
	return "poweroff"
}

// ForSignal maps PID 1's signals: SIGINT is Ctrl-Alt-Del (after
// DisableCAD) and means reboot; SIGTERM and SIGPWR mean poweroff.
func ForSignal(s os.Signal) (Action, bool) {
	switch s {
	case unix.SIGINT:
		return Reboot, true
	case unix.SIGTERM, unix.SIGPWR:
		return Poweroff, true
	}
	return 0, false
}

// DisableCAD makes the kernel send SIGINT to PID 1 on Ctrl-Alt-Del instead
// of rebooting at once.
func DisableCAD() error { return unix.Reboot(unix.LINUX_REBOOT_CMD_CAD_OFF) }

// Signals sends an Action on out for every power signal until ctx ends.
func Signals(ctx context.Context, out chan<- Action) {
	ch := make(chan os.Signal, 4)
	signal.Notify(ch, unix.SIGINT, unix.SIGTERM, unix.SIGPWR)
	defer signal.Stop(ch)
	for {
		select {
		case <-ctx.Done():
			return
		case s := <-ch:
			if a, ok := ForSignal(s); ok {
				out <- a
			}
		}
	}
}

// buttonNames are the input devices that carry the power key: the ACPI
// power button on x86 and gpio-keys on arm64 virt.
var buttonNames = map[string]bool{"Power Button": true, "gpio-keys": true}

// FindButtons returns the eventN names under sysClassInput (normally
// /sys/class/input) whose device name is a power button.
func FindButtons(sysClassInput string) []string {
	ents, _ := os.ReadDir(sysClassInput)
	var out []string
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), "event") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(sysClassInput, e.Name(), "device/name"))
		if err == nil && buttonNames[strings.TrimSpace(string(b))] {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out
}

const (
	evKey    = 1
	keyPower = 116
)

// eventSize is sizeof(struct input_event) on 64-bit kernels: a 16-byte
// timeval, then type, code (u16) and value (s32).
const eventSize = 24

// ReadButton reads input events from r and sends Poweroff for every
// KEY_POWER press, until r fails.
func ReadButton(r io.Reader, out chan<- Action) error {
	br := bufio.NewReaderSize(r, eventSize*64)
	ev := make([]byte, eventSize)
	for {
		if _, err := io.ReadFull(br, ev); err != nil {
			return err
		}
		typ := binary.NativeEndian.Uint16(ev[16:])
		code := binary.NativeEndian.Uint16(ev[18:])
		value := int32(binary.NativeEndian.Uint32(ev[20:]))
		if typ == evKey && code == keyPower && value == 1 {
			out <- Poweroff
		}
	}
}

// WatchButtons opens every power button (/dev/input/eventN) and forwards
// presses to out. It rescans for a while, because the button module may be
// loaded after PID 1 starts watching.
func WatchButtons(ctx context.Context, sysClassInput, devInput string, log func(string, ...any), out chan<- Action) {
	w := buttons{sys: sysClassInput, dev: devInput, log: log, out: out, watching: map[string]bool{}}
	w.scan()
	w.rescan(ctx)
}

// StartButtons opens the power buttons present now before it returns and
// rescans in the background. Call it before printing the ready line: an
// input event sent while no one has the device open is lost, so a power
// button pressed right after "ready" would otherwise do nothing.
func StartButtons(ctx context.Context, sysClassInput, devInput string, log func(string, ...any), out chan<- Action) {
	w := buttons{sys: sysClassInput, dev: devInput, log: log, out: out, watching: map[string]bool{}}
	w.scan()
	go w.rescan(ctx)
}

type buttons struct {
	sys, dev string
	log      func(string, ...any)
	out      chan<- Action
	watching map[string]bool
}

// scan opens the buttons not watched yet.
func (w *buttons) scan() {
	for _, name := range FindButtons(w.sys) {
		if w.watching[name] {
			continue
		}
		f, err := os.Open(filepath.Join(w.dev, name))
		if err != nil {
			w.log("power button %s: %v", name, err)
			continue
		}
		w.watching[name] = true
		w.log("power button: watching %s", f.Name())
		go func() {
			defer f.Close()
			ReadButton(f, w.out)
		}()
	}
}

func (w *buttons) rescan(ctx context.Context) {
	for i := 0; i < 30; i++ {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
		w.scan()
	}
}

// Shutdown stops services, syncs, unmounts what it can and reboots or
// powers off. It only returns if the reboot syscall fails.
func Shutdown(a Action, stopServices func(), log func(string, ...any)) error {
	log("%s: stopping services", a)
	if stopServices != nil {
		stopServices()
	}
	// Processes outside the supervisor (shells, helpers) get the same
	// treatment: SIGTERM, a moment, SIGKILL.
	syscall.Kill(-1, syscall.SIGTERM)
	time.Sleep(500 * time.Millisecond)
	syscall.Kill(-1, syscall.SIGKILL)
	log("%s: syncing and unmounting", a)
	unix.Sync()
	UnmountAll("/proc/self/mountinfo", log)
	unix.Sync()
	cmd := unix.LINUX_REBOOT_CMD_POWER_OFF
	if a == Reboot {
		cmd = unix.LINUX_REBOOT_CMD_RESTART
	}
	log("%s now", a)
	if err := unix.Reboot(cmd); err != nil {
		return fmt.Errorf("%s: reboot syscall: %w", a, err)
	}
	return nil
}

// keep are the mounts the kernel still needs until the very end.
var keep = map[string]bool{"/": true, "/proc": true, "/sys": true, "/dev": true}

// UnmountAll unmounts every mount but the essential ones, deepest first.
// A busy mount is remounted read-only and then detached lazily; the root
// is remounted read-only last.
func UnmountAll(mountinfo string, log func(string, ...any)) {
	points, err := MountPoints(mountinfo)
	if err != nil {
		log("unmount: %v", err)
	}
	for i := len(points) - 1; i >= 0; i-- {
		mp := points[i]
		if keep[mp] || strings.HasPrefix(mp, "/proc/") || strings.HasPrefix(mp, "/sys/") || strings.HasPrefix(mp, "/dev/") {
			continue
		}
		if err := unix.Unmount(mp, 0); err == nil {
			continue
		}
		unix.Mount("", mp, "", unix.MS_REMOUNT|unix.MS_RDONLY, "")
		if err := unix.Unmount(mp, unix.MNT_DETACH); err != nil {
			log("unmount %s: %v", mp, err)
		}
	}
	unix.Mount("", "/", "", unix.MS_REMOUNT|unix.MS_RDONLY, "")
}

// MountPoints lists the mount points of a mountinfo file in mount order.
func MountPoints(mountinfo string) ([]string, error) {
	infos, err := mounts.ReadInfo(mountinfo)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(infos))
	for i, in := range infos {
		out[i] = in.MountPoint
	}
	return out, nil
}
