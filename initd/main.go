package initd

import (
	"context"
	"os"
	"runtime"
	"strings"

	"github.com/kilnproject/kiln/initd/bootlog"
	"github.com/kilnproject/kiln/initd/mounts"
	"github.com/kilnproject/kiln/initd/power"
	"github.com/kilnproject/kiln/initd/reaper"
	"golang.org/x/sys/unix"
)

// Main runs the init daemon. It never returns as PID 1: a fatal error is
// logged and the process keeps serving signals, so the kernel does not
// panic and the console and network stay up for repair.
func Main() int {
	defer bootProcs()()
	system := os.Getenv(envStage) == "system"
	kernel := kernelTime(system)
	console := &stampedConsole{w: openConsole(), now: uptime}
	log := bootlog.New(console)
	if system {
		loadInitramfsLog(log)
	}
	b := &Boot{Log: log, Kernel: kernel, Reaper: reaper.New(), console: console}
	b.Reaper.Log = log.Debugf
	mounts.NeedFS = b.needFS

	ctx := context.Background()
	actions := make(chan power.Action, 4)
	b.actions = actions
	if os.Getpid() == 1 {
		if err := power.DisableCAD(); err != nil {
			log.Printf("Ctrl-Alt-Del: %v", err)
		}
		go power.Signals(ctx, actions)
		go b.Reaper.Run(ctx)
	}

	if !system {
		log.Printf("initd starting (initramfs) at %.2fs", kernel.Seconds())
		if err := RunPhases(ctx, log, b.InitramfsPhases()); err != nil {
			return fatal(b, actions, err)
		}
		if !b.sameInit {
			err := b.ExecSystem()
			return fatal(b, actions, err)
		}
		// The system image's init is this binary: run on as it, which is
		// what exec would give, minus reading it and a new Go runtime.
		os.Setenv(envStage, "system")
		os.Setenv("PATH", strings.TrimPrefix(systemPATH, "PATH="))
		log.Printf("initd continuing (system) at %.2fs, no exec: /sbin/init is this binary", uptime().Seconds())
	} else {
		log.Printf("initd starting (system) at %.2fs", uptime().Seconds())
	}
	if err := RunPhases(ctx, log, b.recorded(b.SystemPhases())); err != nil {
		return fatal(b, actions, err)
	}
	power.StartButtons(ctx, "/sys/class/input", "/dev/input", log.Printf, actions) // open before "ready"
	b.Ready()
	runtime.SetDefaultGOMAXPROCS() // see bootProcs
	b.loadAfterReady()
	b.freeInitramfs()
	return serve(b, actions)
}

// bootProcs gives the Go runtime two Ps on a one-CPU machine until the
// node is ready (the runtime's default is one per CPU). The boot keeps
// goroutines blocked in long system calls (a module insertion takes tens
// of milliseconds under emulation): with a single P the runtime hands it
// to another thread each time one blocks, and its monitor polls every
// 20µs while any does, so the boot paid thousands of context switches
// for it. A GOMAXPROCS from the environment is left alone. The returned
// func restores the default, for when Main returns before ready.
func bootProcs() (restore func()) {
	if os.Getenv("GOMAXPROCS") != "" || runtime.GOMAXPROCS(0) > 1 {
		return func() {}
	}
	runtime.GOMAXPROCS(2)
	return runtime.SetDefaultGOMAXPROCS
}

// serve waits for a power action and carries it out.
func serve(b *Boot, actions <-chan power.Action) int {
	if os.Getpid() != 1 {
		return 0
	}
	for a := range actions {
		var stop func()
		if b.Super != nil {
			stop = b.Super.Stop
		}
		b.Log.Close()
		if err := power.Shutdown(a, stop, b.Log.Printf); err != nil {
			b.Log.Printf("%v", err)
		}
	}
	return 0
}

func fatal(b *Boot, actions chan power.Action, err error) int {
	b.Log.Printf("FATAL: %v", err)
	if os.Getpid() != 1 {
		return 1
	}
	b.Log.Printf("initd keeps running so the console stays usable; send a power action to stop")
	go power.WatchButtons(context.Background(), "/sys/class/input", "/dev/input", b.Log.Printf, actions)
	return serve(b, actions)
}

// openConsole returns /dev/console, mounting devtmpfs first if the
// initramfs has no device nodes yet.
func openConsole() *os.File {
	f, err := os.OpenFile("/dev/console", os.O_WRONLY|unix.O_NOCTTY, 0)
	if err == nil {
		return f
	}
	if os.Getpid() == 1 {
		os.MkdirAll("/dev", 0o755)
		unix.Mount("devtmpfs", "/dev", "devtmpfs", unix.MS_NOSUID, "mode=0755")
		if f, err := os.OpenFile("/dev/console", os.O_WRONLY|unix.O_NOCTTY, 0); err == nil {
			return f
		}
	}
	return os.Stderr
}
