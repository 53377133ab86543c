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
	if n := contextSwitches("cpu  1 2 3 4\nintr 5 6\nctxt 98765\nbtime 1\n"); n != 98765 {
		t.Errorf("context switches %d, want 98765", n)
	}
	if n := minorFaults("1 (init) S 0 1 1 0 -1 4194560 1205 0 3 0 37 52 0 0 20 0 6 0 250 1"); n != 1205 {
		t.Errorf("minor faults %d, want 1205", n)
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

func TestKernelTop(t *testing.T) {
	dir := t.TempDir()
	// step 16; counters for _stext+0, +16, +32, +48 and the module bucket.
	prof := []byte{16, 0, 0, 0}
	for _, c := range []uint32{3, 1, 0, 4, 2} {
		prof = append(prof, byte(c), 0, 0, 0)
	}
	os.WriteFile(filepath.Join(dir, "kallsyms"), []byte(
		"ffffffff81000000 T _stext\n"+
			"ffffffff81000000 T startup_64\n"+
			"ffffffff81000010 t clear_page_erms\n"+
			"ffffffff81000020 D some_data\n"+
			"ffffffff81000030 T sha256_transform\n"+
			"ffffffffc0000000 t ahci_probe\t[ahci]\n"), 0o644)
	got, err := kernelTop(prof, filepath.Join(dir, "kallsyms"), 2)
	if err != nil {
		t.Fatal(err)
	}
	// clear_page_erms covers +16 and +32 (data symbols do not split text);
	// of two names for one address the later one in the file counts.
	want := "kernel profile since initd started: 10 ticks, module code 20%, sha256_transform 40%, startup_64 30%"
	if got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	os.WriteFile(filepath.Join(dir, "kallsyms"), []byte("0000000000000000 T _stext\n"), 0o644)
	if _, err := kernelTop(prof, filepath.Join(dir, "kallsyms"), 2); err == nil || !strings.Contains(err.Error(), "kptr_restrict") {
		t.Errorf("hidden addresses: err %v", err)
	}
	if _, err := kernelTop([]byte("ffffffff81000000 T _stext\n"), filepath.Join(dir, "kallsyms"), 2); err == nil {
		t.Error("a text file read as a profile: no error")
	}
}
