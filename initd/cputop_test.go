package initd

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseTaskStat(t *testing.T) {
	for _, c := range []struct {
		line string
		name string
		t    time.Duration
	}{
		{"1 (init) S 0 1 1 0 -1 4194560 1205 0 3 0 37 52 0 0 20 0 6 0 250 1", "init", 890 * time.Millisecond},
		{"48 (kworker/u2:3-events_unbound) I 2 0 0 0 -1 69238880 0 0 0 0 0 14 0 0 20 0 1 0 95 0", "kworker", 140 * time.Millisecond},
		{"7 (cryptomgr_test) R 2 0 0 0 -1 2129984 0 0 0 0 0 9 0 0 20 0 1 0 260 0", "cryptomgr_test", 90 * time.Millisecond},
		{"9 (a (b) c) S 2 0 0 0 -1 0 0 0 0 0 1 1 0 0 20 0 1 0 1 0", "a (b) c", 20 * time.Millisecond},
	} {
		name, u, sys, ok := parseTaskStat(c.line)
		if d := u + sys; !ok || name != c.name || d != c.t {
			t.Errorf("parseTaskStat(%q) = %q %v %v, want %q %v", c.line, name, d, ok, c.name, c.t)
		}
	}
	if _, u, _, _ := parseTaskStat("1 (init) S 0 1 1 0 -1 4194560 1205 0 3 0 37 52 0 0 20 0 6 0 250 1"); u != 370*time.Millisecond {
		t.Errorf("user time %v, want 370ms", u)
	}
	if _, _, _, ok := parseTaskStat("12 (short) S 1 2"); ok {
		t.Error("a truncated line parsed")
	}
}

func TestCPUTopGroupsAndSorts(t *testing.T) {
	proc := t.TempDir()
	write := func(pid, tid, line string) {
		dir := filepath.Join(proc, pid, "task", tid)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "stat"), []byte(line), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("20", "20", "20 (kworker/0:1) S 2 0 0 0 -1 0 0 0 0 0 0 20 0 0 20 0 1 0 1 0")
	write("21", "21", "21 (kworker/u2:0) S 2 0 0 0 -1 0 0 0 0 0 0 3 0 0 20 0 1 0 1 0")
	write("22", "22", "22 (scsi_eh_2) S 2 0 0 0 -1 0 0 0 0 0 0 4 0 0 20 0 1 0 1 0")
	write("30", "30", "30 (idle) S 2 0 0 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 1 0")
	got := cpuTop(proc, 1, cpuMark{})
	if !strings.Contains(got, ": initd ") || !strings.HasSuffix(got, ", kworker 230ms") {
		t.Errorf("cpuTop = %q: want initd first, then only the top kernel thread, kworker summed", got)
	}
	if strings.Contains(got, "idle") || strings.Contains(got, "scsi_eh") {
		t.Errorf("cpuTop = %q lists a thread past the top 1 or with no CPU time", got)
	}
}
