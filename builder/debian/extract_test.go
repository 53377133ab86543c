package debian

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/kilnproject/kiln/builder/fstree"
)

// buildDeb makes a real .deb with dpkg-deb, compressing data.tar with comp
// (xz, gzip, zstd).
func buildDeb(t *testing.T, comp string) string {
	t.Helper()
	needTool(t, "dpkg-deb")
	root := filepath.Join(t.TempDir(), "pkg")
	mk := func(rel string, mode fs.FileMode, content string) {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	mk("DEBIAN/control", 0o644, "Package: kiln-test\nVersion: 1.0-1\nArchitecture: all\nMaintainer: kiln <kiln@example.invalid>\nDescription: test\n")
	mk("usr/bin/hello", 0o755, "#!/bin/sh\necho hello\n")
	mk("usr/bin/setuid-tool", 0o755|fs.ModeSetuid, "suid\n")
	mk("usr/share/doc/kiln-test/README", 0o644, "read me\n")
	mk("etc/secret/key", 0o600, "s3cret\n")
	if err := os.Chmod(filepath.Join(root, "etc/secret"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("hello", filepath.Join(root, "usr/bin/hi")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/usr/share/doc/kiln-test/README", filepath.Join(root, "usr/share/readme-abs")); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(root, "usr/bin/hello"), filepath.Join(root, "usr/bin/hello-again")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(root, "usr/share/fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	deb := filepath.Join(t.TempDir(), "kiln-test_"+comp+".deb")
	out, err := exec.Command("dpkg-deb", "--root-owner-group", "-Z"+comp, "--build", root, deb).CombinedOutput()
	if err != nil {
		t.Fatalf("dpkg-deb -Z%s --build: %v\n%s", comp, err, out)
	}
	return deb
}

func TestExtractDpkgDeb(t *testing.T) {
	for comp, member := range map[string]string{"xz": "data.tar.xz", "gzip": "data.tar.gz", "zstd": "data.tar.zst"} {
		t.Run(comp, func(t *testing.T) {
			deb := buildDeb(t, comp)
			// dpkg-deb itself says which member it wrote.
			out, err := exec.Command("ar", "t", deb).Output()
			if err == nil && !strings.Contains(string(out), member) {
				t.Fatalf("%s has no %s member: %s", deb, member, out)
			}
			dir := filepath.Join(t.TempDir(), "out")
			var logs []string
			if err := Extract(deb, dir, func(f string, a ...any) { logs = append(logs, fmt.Sprintf(f, a...)) }); err != nil {
				t.Fatal(err)
			}
			checkFile := func(rel string, mode fs.FileMode, content string) {
				t.Helper()
				p := filepath.Join(dir, rel)
				fi, err := os.Lstat(p)
				if err != nil {
					t.Fatal(err)
				}
				if got := fi.Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky | fs.ModeType); got != mode {
					t.Errorf("%s: mode %v, want %v", rel, got, mode)
				}
				if content != "" {
					b, _ := os.ReadFile(p)
					if string(b) != content {
						t.Errorf("%s: content %q, want %q", rel, b, content)
					}
				}
			}
			checkFile("usr/bin/hello", 0o755, "#!/bin/sh\necho hello\n")
			checkFile("usr/bin/setuid-tool", 0o755|fs.ModeSetuid, "suid\n")
			checkFile("usr/share/doc/kiln-test/README", 0o644, "read me\n")
			checkFile("etc/secret", fs.ModeDir|0o700, "")
			checkFile("etc/secret/key", 0o600, "s3cret\n")
			checkFile("usr", fs.ModeDir|0o755, "")
			if l, err := os.Readlink(filepath.Join(dir, "usr/bin/hi")); err != nil || l != "hello" {
				t.Errorf("symlink hi -> %q, %v", l, err)
			}
			if l, err := os.Readlink(filepath.Join(dir, "usr/share/readme-abs")); err != nil || l != "/usr/share/doc/kiln-test/README" {
				t.Errorf("absolute symlink -> %q, %v", l, err)
			}
			a, _ := os.Stat(filepath.Join(dir, "usr/bin/hello"))
			b, _ := os.Stat(filepath.Join(dir, "usr/bin/hello-again"))
			if a == nil || b == nil || !os.SameFile(a, b) {
				t.Errorf("hello-again is not a hard link of hello")
			}
			if _, err := os.Lstat(filepath.Join(dir, "usr/share/fifo")); err == nil {
				t.Errorf("the FIFO was created")
			}
			if !strings.Contains(strings.Join(logs, "\n"), "skipped fifo usr/share/fifo") {
				t.Errorf("the skipped FIFO was not logged: %q", logs)
			}
			if _, err := os.Stat(filepath.Join(dir, "DEBIAN")); err == nil {
				t.Errorf("control files were extracted into the tree")
			}
			// Nothing left beside the result.
			left, _ := os.ReadDir(filepath.Dir(dir))
			if len(left) != 1 {
				t.Errorf("extraction left %d entries beside %s", len(left), dir)
			}
			if err := Extract(deb, dir, nil); err == nil || !strings.Contains(err.Error(), "already exists") {
				t.Errorf("second extract into the same dir: %v", err)
			}
		})
	}
}

// arDeb wraps a raw tar into a .deb by hand (debian-binary, control, data).
func arDeb(t *testing.T, data []byte) string {
	t.Helper()
	var b bytes.Buffer
	b.WriteString("!<arch>\n")
	member := func(name string, content []byte) {
		fmt.Fprintf(&b, "%-16s%-12d%-6d%-6d%-8s%-10d`\n", name, 0, 0, 0, "100644", len(content))
		b.Write(content)
		if len(content)%2 == 1 {
			b.WriteByte('\n')
		}
	}
	member("debian-binary", []byte("2.0\n"))
	member("control.tar", tarOf(t, tar.Header{Name: "./control", Mode: 0o644, Typeflag: tar.TypeReg}))
	member("data.tar", data)
	p := filepath.Join(t.TempDir(), "crafted.deb")
	if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func tarOf(t *testing.T, hdrs ...tar.Header) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, h := range hdrs {
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(h.Name))
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			tw.Write([]byte(h.Name))
		}
	}
	tw.Close()
	return b.Bytes()
}

func TestExtractRejectsEscapes(t *testing.T) {
	outside := t.TempDir()
	cases := map[string][]tar.Header{
		"dotdot": {{Name: "./../escaped", Mode: 0o644, Typeflag: tar.TypeReg}},
		"through symlink": {
			{Name: "./etc", Mode: 0o777, Typeflag: tar.TypeSymlink, Linkname: outside},
			{Name: "./etc/passwd", Mode: 0o644, Typeflag: tar.TypeReg},
		},
		"through relative symlink": {
			{Name: "./up", Mode: 0o777, Typeflag: tar.TypeSymlink, Linkname: "../../../../../../.." + outside},
			{Name: "./up/x", Mode: 0o644, Typeflag: tar.TypeReg},
		},
		"hard link out": {{Name: "./l", Mode: 0o644, Typeflag: tar.TypeLink, Linkname: "../../etc/hostname"}},
		"directory over symlink": {
			{Name: "./f", Mode: 0o777, Typeflag: tar.TypeSymlink, Linkname: filepath.Join(outside, "victim")},
			{Name: "./f/", Mode: 0o755, Typeflag: tar.TypeDir},
		},
	}
	for name, hdrs := range cases {
		t.Run(name, func(t *testing.T) {
			deb := arDeb(t, tarOf(t, hdrs...))
			dir := filepath.Join(t.TempDir(), "out")
			err := Extract(deb, dir, nil)
			if err == nil {
				t.Fatalf("crafted archive extracted without error")
			}
			t.Log(err)
			if _, serr := os.Lstat(dir); serr == nil {
				t.Errorf("a failed extraction left %s", dir)
			}
			if left, _ := os.ReadDir(outside); len(left) != 0 {
				t.Errorf("something was written outside: %v", left)
			}
		})
	}
	// A later plain file over an earlier symlink replaces the link, never writes through it.
	deb := arDeb(t, tarOf(t,
		tar.Header{Name: "./f", Mode: 0o777, Typeflag: tar.TypeSymlink, Linkname: filepath.Join(outside, "victim")},
		tar.Header{Name: "./f", Mode: 0o644, Typeflag: tar.TypeReg},
	))
	dir := filepath.Join(t.TempDir(), "out")
	if err := Extract(deb, dir, nil); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(filepath.Join(dir, "f")); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("f is not a regular file: %v %v", fi, err)
	}
	if left, _ := os.ReadDir(outside); len(left) != 0 {
		t.Errorf("something was written outside: %v", left)
	}
}

func TestExtractNotADeb(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.deb")
	os.WriteFile(p, []byte("hello"), 0o644)
	if err := Extract(p, filepath.Join(t.TempDir(), "out"), nil); err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "not an ar archive") {
		t.Fatalf("not a deb: %v", err)
	}
}

func TestExtractCached(t *testing.T) {
	debBytes, err := os.ReadFile(buildDeb(t, "xz"))
	if err != nil {
		t.Fatal(err)
	}
	a := newFakeArchive(t, "bookworm", []testPkg{{name: "kiln-test", version: "1.0-1", arch: "all", deb: debBytes}})
	cache := t.TempDir()
	src := a.source(cache)
	ctx := context.Background()
	ix, err := src.Index(ctx, "amd64")
	if err != nil {
		t.Fatal(err)
	}
	p, err := ix.Lookup("kiln-test", "")
	if err != nil {
		t.Fatal(err)
	}
	dir, err := src.ExtractCached(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if dir != filepath.Join(cache, "extracted", p.SHA256) {
		t.Errorf("extracted to %s", dir)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "usr/bin/hello")); err != nil || !strings.Contains(string(b), "echo hello") {
		t.Fatalf("usr/bin/hello: %q %v", b, err)
	}
	a.srv.Close()
	src.Offline = true
	dir2, err := src.ExtractCached(ctx, p)
	if err != nil || dir2 != dir {
		t.Fatalf("offline ExtractCached: %s, %v", dir2, err)
	}
}

func TestAddToTree(t *testing.T) {
	deb := buildDeb(t, "zstd")
	dir := filepath.Join(t.TempDir(), "x")
	if err := Extract(deb, dir, nil); err != nil {
		t.Fatal(err)
	}
	tree := fstree.New()
	if err := AddToTree(tree, deb, dir); err != nil {
		t.Fatal(err)
	}
	check := func(p string, kind fstree.Kind, perm fs.FileMode) *fstree.Entry {
		t.Helper()
		e := tree.Get(p)
		if e == nil {
			t.Fatalf("%s missing from the tree", p)
		}
		if e.Kind != kind || e.Perm != perm || e.UID != 0 || e.GID != 0 {
			t.Errorf("%s: %v %v %d:%d, want %v %v 0:0", p, e.Kind, e.Perm, e.UID, e.GID, kind, perm)
		}
		return e
	}
	if b, err := check("usr/bin/hello-again", fstree.File, 0o755).ReadAll(); err != nil || string(b) != "#!/bin/sh\necho hello\n" {
		t.Errorf("hard link content %q %v", b, err)
	}
	check("usr/bin/setuid-tool", fstree.File, 0o755|fs.ModeSetuid)
	check("etc/secret", fstree.Dir, 0o700)
	check("usr/share/fifo", fstree.FIFO, 0o644)
	if e := check("usr/bin/hi", fstree.Symlink, 0o777); e.Target != "hello" {
		t.Errorf("symlink target %q", e.Target)
	}
	if e := tree.Get("usr/bin/hello"); e.Size() != int64(len("#!/bin/sh\necho hello\n")) {
		t.Errorf("size %d", e.Size())
	}
}

func TestDeviceNodes(t *testing.T) {
	deb := arDeb(t, tarOf(t,
		tar.Header{Name: "./dev/", Mode: 0o755, Typeflag: tar.TypeDir},
		tar.Header{Name: "./dev/null", Mode: 0o666, Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3},
		tar.Header{Name: "./dev/sda", Mode: 0o660, Typeflag: tar.TypeBlock, Devmajor: 8, Devminor: 0, Gid: 6},
	))
	dir := filepath.Join(t.TempDir(), "x")
	var logs []string
	if err := Extract(deb, dir, func(f string, a ...any) { logs = append(logs, fmt.Sprintf(f, a...)) }); err != nil {
		t.Fatal(err)
	}
	if len(logs) != 2 || !strings.Contains(logs[0], "char device dev/null") || !strings.Contains(logs[1], "block device dev/sda") {
		t.Errorf("logs: %q", logs)
	}
	if _, err := os.Lstat(filepath.Join(dir, "dev/null")); err == nil {
		t.Errorf("device node created")
	}
	tree := fstree.New()
	if err := AddToTree(tree, deb, dir); err != nil {
		t.Fatal(err)
	}
	if e := tree.Get("dev/null"); e == nil || e.Kind != fstree.CharDev || e.Major != 1 || e.Minor != 3 || e.Perm != 0o666 {
		t.Errorf("dev/null in tree: %+v", e)
	}
	if e := tree.Get("dev/sda"); e == nil || e.Kind != fstree.BlockDev || e.Major != 8 || e.GID != 6 {
		t.Errorf("dev/sda in tree: %+v", e)
	}
}
