package initd

import (
	"cmp"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// cpuMark is what cpuTop needs from the moment initd started, cheap to
// take (two small reads) so kiln.debug does not slow the boot it measures.
type cpuMark struct {
	busy  time.Duration // all CPUs, /proc/stat
	initd time.Duration // this process so far: the kernel's own init ran as PID 1 too
	user  time.Duration // of which in user space (Go), the rest in system calls
	// faults are this process's minor page faults: each maps a page, and
	// a new anonymous one is zeroed first, dear under emulation.
	faults uint64
	// switches are the kernel's context switches (/proc/stat ctxt): each
	// flushes the emulated TLB and saves the FPU under TCG.
	switches uint64
}

func markCPU() cpuMark {
	var m cpuMark
	if b, err := os.ReadFile("/proc/stat"); err == nil {
		m.busy, _, _ = ParseCPUStat(string(b))
		m.switches = contextSwitches(string(b))
	}
	if b, err := os.ReadFile("/proc/self/stat"); err == nil {
		var sys time.Duration
		_, m.user, sys, _ = parseTaskStat(string(b))
		m.initd = m.user + sys
		m.faults = minorFaults(string(b))
	}
	return m
}

// cpuTop says where the CPU time since start went, for kiln.debug: initd
// itself (its system calls include the modules' init functions), then the
// kernel threads by name (kworker/0:1 and kworker/u2:3 are one "kworker"
// line). The kernel threads' figures are their totals, from boot: taking
// each thread's time when initd starts would cost that start a read per
// thread.
func cpuTop(proc string, n int, start cpuMark) string {
	now := markCPU()
	initd := now.initd - start.initd
	byName := map[string]time.Duration{}
	tasks, _ := filepath.Glob(filepath.Join(proc, "[0-9]*", "task", "[0-9]*", "stat"))
	self := strconv.Itoa(os.Getpid())
	for _, p := range tasks {
		if strings.HasPrefix(p, filepath.Join(proc, self)+"/") {
			continue // counted whole, from /proc/self/stat
		}
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		if name, u, sys, ok := parseTaskStat(string(b)); ok && u+sys > 0 {
			byName[name] += u + sys
		}
	}
	names := topKeys(byName, n)
	parts := []string{fmt.Sprintf("busy %dms, %d context switches: initd %dms (user %dms, %d page faults); kernel threads since boot:", (now.busy - start.busy).Milliseconds(),
		now.switches-start.switches, initd.Milliseconds(), (now.user - start.user).Milliseconds(), now.faults-start.faults)}
	for _, k := range names {
		parts = append(parts, fmt.Sprintf("%s %dms", k, byName[k].Milliseconds()))
	}
	return "cpu since initd started: " + strings.Join(parts, ", ")
}

// parseTaskStat returns a /proc/PID[/task/TID]/stat line's command, with
// the kernel threads' per-CPU and per-instance suffixes cut
// ("kworker/u2:3-events" is "kworker"), and its user and system time.
func parseTaskStat(s string) (name string, user, sys time.Duration, ok bool) {
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < open {
		return "", 0, 0, false
	}
	name = s[open+1 : end]
	if i := strings.IndexAny(name, "/:"); i > 0 {
		name = name[:i]
	}
	f := strings.Fields(s[end+1:])
	// After the command: state is field 3 of the line, utime 14, stime 15.
	if len(f) < 13 {
		return "", 0, 0, false
	}
	u, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return "", 0, 0, false
	}
	const tick = 10 * time.Millisecond // USER_HZ
	return name, time.Duration(u) * tick, time.Duration(st) * tick, true
}

// minorFaults is a stat line's minflt (field 10).
func minorFaults(s string) uint64 {
	end := strings.LastIndexByte(s, ')')
	if end < 0 {
		return 0
	}
	f := strings.Fields(s[end+1:])
	if len(f) < 8 {
		return 0
	}
	n, _ := strconv.ParseUint(f[7], 10, 64)
	return n
}

// contextSwitches is /proc/stat's ctxt line.
func contextSwitches(stat string) uint64 {
	for _, l := range strings.Split(stat, "\n") {
		if v, ok := strings.CutPrefix(l, "ctxt "); ok {
			n, _ := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	return 0
}

// topKeys are m's n keys with the largest values, largest first (ties by
// name, so the output is stable).
func topKeys[V cmp.Ordered](m map[string]V, n int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] > m[keys[j]]
		}
		return keys[i] < keys[j]
	})
	return keys[:min(n, len(keys))]
}
