package cpio

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/kilnproject/kiln/builder/fstree"
)

const testMtime = 1700000000 // 2023-11-14 22:13:20 UTC

func requireTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is required as the test oracle but is not installed (apt-get install %s)", name, name)
	}
	return p
}

// sampleTree has one of every entry kind, odd permissions and owners, a
// host-backed file and a file whose length needs padding.
func sampleTree(t *testing.T) *fstree.Tree {
	t.Helper()
	host := filepath.Join(t.TempDir(), "host.bin")
	if err := os.WriteFile(host, bytes.Repeat([]byte("0123456789"), 1000), 0o600); err != nil {
		t.Fatal(err)
	}
	tr := fstree.New()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(tr.Mkdir("dev", 0o755))
	must(tr.Add(&fstree.Entry{Path: "dev/console", Kind: fstree.CharDev, Perm: 0o600, Major: 5, Minor: 1}))
	must(tr.Add(&fstree.Entry{Path: "dev/vda", Kind: fstree.BlockDev, Perm: 0o660, GID: 6, Major: 254, Minor: 0}))
	must(tr.Add(&fstree.Entry{Path: "run/initctl", Kind: fstree.FIFO, Perm: 0o600}))
	must(tr.AddFile("init", 0o755, []byte("#!/bin/sh\necho hi\n")))
	must(tr.Symlink("sbin/init", "../init"))
	must(tr.AddFile("etc/empty", 0o644, nil))
	must(tr.AddFile("etc/a", 0o644, []byte("a")))
	must(tr.Add(&fstree.Entry{Path: "usr/bin/su", Kind: fstree.File, Perm: 0o755 | fs.ModeSetuid, Data: []byte("suid")}))
	must(tr.Add(&fstree.Entry{Path: "tmp", Kind: fstree.Dir, Perm: 0o777 | fs.ModeSticky}))
	must(tr.Add(&fstree.Entry{Path: "home/user/notes", Kind: fstree.File, Perm: 0o640, UID: 1000, GID: 1000, Data: []byte("mine\n")}))
	must(tr.AddHostFile("lib/blob", 0o444, host))
	return tr
}

func build(t *testing.T, tr *fstree.Tree) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Write(&buf, tr, testMtime); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestDeterministic(t *testing.T) {
	a := build(t, sampleTree(t))
	b := build(t, sampleTree(t))
	if !bytes.Equal(a, b) {
		t.Fatal("two writes of the same tree differ")
	}
	if len(a)%4 != 0 {
		t.Errorf("archive length %d is not a multiple of 4", len(a))
	}
	if !bytes.HasPrefix(a, []byte("07070100000001")) {
		t.Errorf("archive starts with %q, want newc magic and inode 1", a[:14])
	}
}

func TestListWithCpio(t *testing.T) {
	requireTool(t, "cpio")
	archive := build(t, sampleTree(t))
	cmd := exec.Command("cpio", "-it", "-v", "--quiet", "--numeric-uid-gid")
	cmd.Stdin = bytes.NewReader(archive)
	cmd.Env = append(os.Environ(), "TZ=UTC", "LC_ALL=C")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("cpio -it: %v\n%s", err, out)
	}
	// name -> fields "mode links uid gid" (the part cpio prints before size/date).
	want := map[string]string{
		".":               "drwxr-xr-x 2 0 0",
		"dev":             "drwxr-xr-x 2 0 0",
		"dev/console":     "crw------- 1 0 0",
		"dev/vda":         "brw-rw---- 1 0 6",
		"run/initctl":     "prw------- 1 0 0",
		"init":            "-rwxr-xr-x 1 0 0",
		"sbin/init":       "lrwxrwxrwx 1 0 0",
		"usr/bin/su":      "-rwsr-xr-x 1 0 0",
		"tmp":             "drwxrwxrwt 2 0 0",
		"home/user/notes": "-rw-r----- 1 1000 1000",
		"lib/blob":        "-r--r--r-- 1 0 0",
		"etc/empty":       "-rw-r--r-- 1 0 0",
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	seen := map[string]string{}
	var order []string
	for _, l := range lines {
		f := strings.Fields(l)
		name := f[len(f)-1]
		if strings.HasPrefix(f[0], "l") {
			name = f[len(f)-3] // "name -> target"
			if f[len(f)-1] != "../init" {
				t.Errorf("symlink target in %q, want ../init", l)
			}
		}
		if strings.HasPrefix(f[0], "c") || strings.HasPrefix(f[0], "b") {
			if !strings.Contains(l, "5,") && name == "dev/console" {
				t.Errorf("dev/console line %q lacks major 5", l)
			}
		}
		seen[name] = strings.Join(f[:4], " ")
		order = append(order, name)
		if !strings.Contains(l, "Nov 14  2023") {
			t.Errorf("line %q does not show the fixed mtime", l)
		}
	}
	for name, w := range want {
		if seen[name] != w {
			t.Errorf("%s: cpio lists %q, want %q", name, seen[name], w)
		}
	}
	if len(order) != sampleTree(t).Len() {
		t.Errorf("cpio lists %d entries, tree has %d:\n%s", len(order), sampleTree(t).Len(), out)
	}
	for i := 1; i < len(order); i++ {
		if order[i-1] >= order[i] && order[i-1] != "." {
			t.Errorf("entries out of order: %s before %s", order[i-1], order[i])
		}
	}
}

func TestExtractWithCpio(t *testing.T) {
	requireTool(t, "cpio")
	if os.Geteuid() != 0 {
		t.Fatal("extracting device nodes and owners needs root")
	}
	tr := sampleTree(t)
	archive := build(t, tr)
	dir := t.TempDir()
	cmd := exec.Command("cpio", "-idmu", "--quiet")
	cmd.Dir = dir
	cmd.Stdin = bytes.NewReader(archive)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cpio -idmu: %v\n%s", err, out)
	}
	for _, e := range tr.Entries() {
		if e.Path == "" {
			continue
		}
		p := filepath.Join(dir, e.Path)
		fi, err := os.Lstat(p)
		if err != nil {
			t.Errorf("%s: %v", e.Path, err)
			continue
		}
		if fi.Mode() != e.Mode() {
			t.Errorf("%s: extracted mode %v, want %v", e.Path, fi.Mode(), e.Mode())
		}
		st := fi.Sys().(*syscall.Stat_t)
		if st.Uid != e.UID || st.Gid != e.GID {
			t.Errorf("%s: owner %d:%d, want %d:%d", e.Path, st.Uid, st.Gid, e.UID, e.GID)
		}
		// GNU cpio does not restore directory mtimes after filling them; the listing test checks those.
		if e.Kind != fstree.Symlink && e.Kind != fstree.Dir && fi.ModTime().Unix() != testMtime {
			t.Errorf("%s: mtime %d, want %d", e.Path, fi.ModTime().Unix(), testMtime)
		}
		switch e.Kind {
		case fstree.File:
			got, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			want, _ := e.ReadAll()
			if !bytes.Equal(got, want) {
				t.Errorf("%s: content differs (%d bytes, want %d)", e.Path, len(got), len(want))
			}
		case fstree.Symlink:
			if got, _ := os.Readlink(p); got != e.Target {
				t.Errorf("%s: target %q, want %q", e.Path, got, e.Target)
			}
		case fstree.CharDev, fstree.BlockDev:
			maj, min := uint32((st.Rdev>>8)&0xfff), uint32((st.Rdev&0xff)|((st.Rdev>>12)&0xfff00))
			if maj != e.Major || min != e.Minor {
				t.Errorf("%s: device %d,%d, want %d,%d", e.Path, maj, min, e.Major, e.Minor)
			}
		}
	}
}

func TestHostFileShrankIsError(t *testing.T) {
	host := filepath.Join(t.TempDir(), "f")
	os.WriteFile(host, []byte("0123456789"), 0o644)
	tr := fstree.New()
	if err := tr.AddHostFile("f", 0o644, host); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(host, []byte("01"), 0o644)
	err := Write(&bytes.Buffer{}, tr, 0)
	if err == nil || !strings.Contains(err.Error(), "f:") {
		t.Fatalf("got %v, want an error naming f", err)
	}
}

func TestMtimeRange(t *testing.T) {
	if err := Write(&bytes.Buffer{}, fstree.New(), -1); err == nil {
		t.Fatal("negative mtime accepted")
	}
}
