package mounts

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

func TestIsMountpoint(t *testing.T) {
	if !IsMountpoint("/") || !IsMountpoint("/proc") {
		t.Error("/ and /proc are mount points")
	}
	d := t.TempDir()
	if IsMountpoint(d) {
		t.Errorf("%s is not a mount point", d)
	}
}

func TestRemoveOnDevice(t *testing.T) {
	d := t.TempDir()
	os.MkdirAll(filepath.Join(d, "a/b"), 0o755)
	os.WriteFile(filepath.Join(d, "a/b/f"), nil, 0o644)
	os.Symlink("/etc", filepath.Join(d, "link"))
	var st = statDev(t, d)
	removeOnDevice(d, st)
	if ents, _ := os.ReadDir(d); len(ents) != 0 {
		t.Fatalf("left %v", ents)
	}
	if _, err := os.Stat("/etc"); err != nil {
		t.Fatal("followed the symlink")
	}
	// Another device's files are kept.
	os.WriteFile(filepath.Join(d, "keep"), nil, 0o644)
	removeOnDevice(d, st+1)
	if _, err := os.Stat(filepath.Join(d, "keep")); err != nil {
		t.Fatal("removed a file on another device")
	}
}

func statDev(t *testing.T, p string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil {
		t.Fatal(err)
	}
	return st.Dev
}
