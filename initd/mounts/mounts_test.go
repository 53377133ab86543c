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

func TestRemoveAt(t *testing.T) {
	d := t.TempDir()
	os.MkdirAll(filepath.Join(d, "a/b"), 0o755)
	os.WriteFile(filepath.Join(d, "a/b/f"), nil, 0o644)
	os.Symlink("/etc", filepath.Join(d, "link"))
	var st = statDev(t, d)
	removeAt(openDir(t, d), st)
	if ents, _ := os.ReadDir(d); len(ents) != 0 {
		t.Fatalf("left %v", ents)
	}
	if _, err := os.Stat("/etc"); err != nil {
		t.Fatal("followed the symlink")
	}
	// Another device's files are kept.
	os.WriteFile(filepath.Join(d, "keep"), nil, 0o644)
	removeAt(openDir(t, d), st+1)
	if _, err := os.Stat(filepath.Join(d, "keep")); err != nil {
		t.Fatal("removed a file on another device")
	}
}

func openDir(t *testing.T, p string) *os.File {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func statDev(t *testing.T, p string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil {
		t.Fatal(err)
	}
	return st.Dev
}

// Mount tells NeedFS the filesystem type before it mounts, whether or not
// the mount then works, so the module can be loaded first.
func TestMountCallsNeedFS(t *testing.T) {
	var got []string
	NeedFS = func(fstype string) { got = append(got, fstype) }
	defer func() { NeedFS = nil }()
	err := Mount("none", filepath.Join(t.TempDir(), "m"), "kiln-no-such-fs", unix.MS_RDONLY, "")
	if err == nil {
		t.Fatal("mounting an unknown filesystem type worked")
	}
	if len(got) != 1 || got[0] != "kiln-no-such-fs" {
		t.Errorf("NeedFS calls = %q, want [kiln-no-such-fs]", got)
	}
}

// FreeRoot empties the directory it is given and closes it.
func TestFreeRoot(t *testing.T) {
	d := t.TempDir()
	os.MkdirAll(filepath.Join(d, "lib/modules"), 0o755)
	os.WriteFile(filepath.Join(d, "init"), []byte("x"), 0o755)
	f, err := os.Open(d)
	if err != nil {
		t.Fatal(err)
	}
	FreeRoot(f)
	if ents, _ := os.ReadDir(d); len(ents) != 0 {
		t.Errorf("left %v", ents)
	}
	if _, err := f.Stat(); err == nil {
		t.Error("the directory is still open")
	}
}
