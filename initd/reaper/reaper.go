// Package reaper is PID 1's child reaping. Orphans re-parented to PID 1 must
// be waited for or they stay zombies forever; but a blind wait4(-1) would
// also steal the exit status of processes other code is waiting for. So:
// processes started through Start get their status on a channel; any other
// zombie child is reaped only after it has stayed a zombie for a grace
// period (os/exec callers wait for their own children at once).
package reaper

import (
	"context"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Reaper routes exit statuses and reaps orphans.
type Reaper struct {
	mu      sync.Mutex
	waiting map[int]chan syscall.WaitStatus
	seen    map[int]time.Time // unclaimed zombies and when first seen
	Grace   time.Duration     // default 2s
	Log     func(format string, args ...any)
	proc    string
}

// New returns a reaper; call Run to start it.
func New() *Reaper {
	return &Reaper{waiting: map[int]chan syscall.WaitStatus{}, seen: map[int]time.Time{}, Grace: 2 * time.Second, proc: "/proc"}
}

// Start starts cmd and returns a channel that receives its exit status.
// The lock is held across fork and registration, so a child that exits at
// once is still routed to the channel.
func (r *Reaper) Start(cmd *exec.Cmd) (<-chan syscall.WaitStatus, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	ch := make(chan syscall.WaitStatus, 1)
	r.waiting[cmd.Process.Pid] = ch
	return ch, nil
}

// Run reaps on every SIGCHLD and on a timer until ctx ends.
func (r *Reaper) Run(ctx context.Context) {
	sig := make(chan os.Signal, 16)
	signal.Notify(sig, unix.SIGCHLD)
	defer signal.Stop(sig)
	tick := time.NewTicker(r.Grace / 2)
	defer tick.Stop()
	for {
		r.Reap()
		select {
		case <-ctx.Done():
			return
		case <-sig:
		case <-tick.C:
		}
	}
}

// Reap handles every current zombie child once.
func (r *Reaper) Reap() {
	self := os.Getpid()
	now := time.Now()
	var zombies []int
	if anyExited() {
		zombies = r.zombies(self)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	// Registered children first: they may have been reaped by the kernel's
	// view changing since the scan, so wait for each registered pid directly.
	for pid, ch := range r.waiting {
		var ws unix.WaitStatus
		got, err := unix.Wait4(pid, &ws, unix.WNOHANG, nil)
		if got == pid {
			ch <- syscall.WaitStatus(ws)
			delete(r.waiting, pid)
		} else if err == unix.ECHILD {
			delete(r.waiting, pid)
			close(ch)
		}
	}
	alive := map[int]bool{}
	for _, pid := range zombies {
		if _, mine := r.waiting[pid]; mine {
			continue
		}
		alive[pid] = true
		first, ok := r.seen[pid]
		if !ok {
			r.seen[pid] = now
			continue
		}
		if now.Sub(first) >= r.Grace {
			var ws unix.WaitStatus
			if got, _ := unix.Wait4(pid, &ws, unix.WNOHANG, nil); got == pid && r.Log != nil {
				r.Log("reaped orphan %d (exit %d)", pid, ws.ExitStatus())
			}
			delete(r.seen, pid)
		}
	}
	for pid := range r.seen {
		if !alive[pid] {
			delete(r.seen, pid)
		}
	}
}

// anyExited reports whether some child has exited and waits to be reaped,
// without reaping it (WNOWAIT). Listing the zombies means reading every
// process's stat file; a node has hundreds of processes and a reaper
// that wakes every second, so the list is read only when there is one.
func anyExited() bool {
	var info unix.Siginfo
	err := unix.Waitid(unix.P_ALL, 0, &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil)
	return err == nil && info.Signo == int32(unix.SIGCHLD)
}

// zombies lists our children in state Z, from /proc/PID/stat.
func (r *Reaper) zombies(parent int) []int {
	ents, _ := os.ReadDir(r.proc)
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join(r.proc, e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...; comm may contain spaces and ')'.
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 2 || f[0] != "Z" || f[1] != strconv.Itoa(parent) {
			continue
		}
		out = append(out, pid)
	}
	return out
}
