package gpt

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func need(t *testing.T, tool string) {
	t.Helper()
	if _, err := exec.LookPath(tool); err != nil {
		t.Fatalf("%s is required for this test (Debian package gdisk): %v", tool, err)
	}
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}

// makeDisk creates the installed-disk layout with sgdisk: ESP, SYS-A, SYS-B
// and a small STATE at the end.
func makeDisk(t *testing.T, mib int64) string {
	t.Helper()
	need(t, "sgdisk")
	p := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(p, mib<<20); err != nil {
		t.Fatal(err)
	}
	run(t, "sgdisk", "-n", "1:2048:+4M", "-t", "1:ef00", "-c", "1:ESP",
		"-n", "2:0:+8M", "-c", "2:SYS-A",
		"-n", "3:0:+8M", "-c", "3:SYS-B",
		"-n", "4:0:+1M", "-c", "4:STATE", p)
	return p
}

func TestReadAgainstSgdisk(t *testing.T) {
	p := makeDisk(t, 32)
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tab, err := Read(f)
	if err != nil {
		t.Fatal(err)
	}
	if len(tab.Partitions) != 4 {
		t.Fatalf("%d partitions", len(tab.Partitions))
	}
	for i, name := range []string{"ESP", "SYS-A", "SYS-B", "STATE"} {
		got, ok := tab.Find(name)
		if !ok || got.Index != i+1 {
			t.Fatalf("Find(%s) = %+v, %v", name, got, ok)
		}
		info := run(t, "sgdisk", "-i", string(rune('1'+i)), p)
		if !strings.Contains(info, "First sector: "+itoa(got.FirstLBA)+" ") ||
			!strings.Contains(info, "Last sector: "+itoa(got.LastLBA)+" ") {
			t.Errorf("%s: we read %d-%d, sgdisk says:\n%s", name, got.FirstLBA, got.LastLBA, info)
		}
	}
	if _, ok := tab.Find("SYS-C"); ok {
		t.Error("found SYS-C")
	}
}

func itoa(v uint64) string { return strconv.FormatUint(v, 10) }

func TestGrow(t *testing.T) {
	p := makeDisk(t, 32)
	if err := os.Truncate(p, 64<<20); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	changed, err := Grow(f, 64<<20, "STATE")
	if err != nil || !changed {
		t.Fatalf("Grow = %v, %v", changed, err)
	}
	if changed, err := Grow(f, 64<<20, "STATE"); err != nil || changed {
		t.Fatalf("second Grow = %v, %v; want no change", changed, err)
	}
	if _, err := Grow(f, 64<<20, "SYS-A"); err == nil || !strings.Contains(err.Error(), "not the last") {
		t.Errorf("growing SYS-A: %v", err)
	}
	f.Close()
	if out := run(t, "sgdisk", "-v", p); !strings.Contains(out, "No problems found") {
		t.Fatalf("sgdisk -v after Grow:\n%s", out)
	}
	// 64 MiB = 131072 sectors; backup array 32 sectors + header: last usable 131038.
	if info := run(t, "sgdisk", "-i", "4", p); !strings.Contains(info, "Last sector: 131038 ") {
		t.Errorf("STATE after grow:\n%s", info)
	}
}

func TestNoGPT(t *testing.T) {
	p := filepath.Join(t.TempDir(), "blank")
	os.WriteFile(p, make([]byte, 8192), 0o644)
	f, _ := os.Open(p)
	defer f.Close()
	if _, err := Read(f); err != ErrNoGPT {
		t.Fatalf("Read(blank) = %v, want ErrNoGPT", err)
	}
}
