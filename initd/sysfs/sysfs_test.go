package sysfs

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
)

// The os package is the oracle, on a temporary tree and on the real sysfs.
func TestAgainstOS(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "size"), []byte("409600\n"), 0o644)
	long := strings.Repeat("0123456789,", 1200) // longer than a page
	os.WriteFile(filepath.Join(dir, "long"), []byte(long+"\n"), 0o644)
	os.Mkdir(filepath.Join(dir, "vda"), 0o755)
	os.Symlink("../../devices/pci0000:00/block/vda/vda1", filepath.Join(dir, "vda1"))

	if v, err := ReadAttr(filepath.Join(dir, "size")); err != nil || v != "409600" {
		t.Errorf("ReadAttr(size) = %q, %v", v, err)
	}
	if v, err := ReadAttr(filepath.Join(dir, "long")); err != nil || v != long {
		t.Errorf("ReadAttr(long) = %d bytes, %v", len(v), err)
	}
	_, err := ReadAttr(filepath.Join(dir, "nosuch"))
	var pe *fs.PathError
	if !errors.As(err, &pe) || !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "nosuch") {
		t.Errorf("ReadAttr(nosuch) = %v", err)
	}
	names, err := ReadDirNames(dir)
	if err != nil || !reflect.DeepEqual(names, []string{"long", "size", "vda", "vda1"}) {
		t.Errorf("ReadDirNames = %v, %v", names, err)
	}
	if _, err := ReadDirNames(filepath.Join(dir, "size")); err == nil {
		t.Error("ReadDirNames on a file accepted")
	}
	if l, err := Readlink(filepath.Join(dir, "vda1")); err != nil || l != "../../devices/pci0000:00/block/vda/vda1" {
		t.Errorf("Readlink = %q, %v", l, err)
	}

	// The real sysfs: a directory with many entries and attributes.
	if _, err := os.Stat("/sys/class"); err != nil {
		t.Fatalf("this test reads the real sysfs: %v", err)
	}
	ents, err := os.ReadDir("/sys/class")
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, e := range ents {
		want = append(want, e.Name())
	}
	sort.Strings(want)
	if got, err := ReadDirNames("/sys/class"); err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("ReadDirNames(/sys/class) = %v, %v\nos.ReadDir: %v", got, err, want)
	}
	for _, p := range []string{"/sys/kernel/mm/transparent_hugepage/enabled", "/sys/devices/system/cpu/online", "/sys/devices/system/cpu/modalias"} {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		if got, err := ReadAttr(p); err != nil || got != strings.TrimSpace(string(b)) {
			t.Errorf("ReadAttr(%s) = %q, %v; os.ReadFile %q", p, got, err, b)
		}
	}
}
