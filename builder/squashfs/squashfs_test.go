package squashfs

import (
	"bufio"
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kilnproject/kiln/builder/fstree"
)

const testTime = 1700000000 // 2023-11-14 22:13:20 UTC

// requireTool fails (never skips) when a squashfs-tools binary is missing:
// the real tool is the oracle these tests rely on.
func requireTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s not found in PATH: install squashfs-tools (apt-get install squashfs-tools)", name)
	}
	return p
}

// memFile is an in-memory io.WriterAt.
type memFile struct{ b []byte }

func (m *memFile) WriteAt(p []byte, off int64) (int, error) {
	if end := int(off) + len(p); end > len(m.b) {
		m.b = slices.Grow(m.b, end-len(m.b))[:end]
	}
	return copy(m.b[off:], p), nil
}

// pseudo returns n deterministic bytes; text-like when compressible, noise otherwise.
func pseudo(n int, seed uint32, compressible bool) []byte {
	b := make([]byte, n)
	x := seed*2654435761 + 1
	words := []string{"kiln ", "squashfs ", "block ", "fragment ", "inode ", "\n", "kernel ", "0123 "}
	for i := 0; i < n; {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		if compressible {
			i += copy(b[i:], words[x%uint32(len(words))])
		} else {
			b[i] = byte(x)
			i++
		}
	}
	return b
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// testTree builds a tree exercising every inode kind and the layout corners.
func testTree(t testing.TB, bs int) *fstree.Tree {
	tr := fstree.New()
	add := func(e *fstree.Entry) { t.Helper(); must(t, tr.Add(e)) }
	must(t, tr.AddFile("etc/os-release", 0o644, []byte("NAME=kiln\n")))
	must(t, tr.AddFile("a/b/c/d/deep.txt", 0o600, []byte("deep\n")))
	for i := 0; i < 600; i++ {
		p := fmt.Sprintf("many/entry-%03d", i)
		switch {
		case i%100 == 7:
			must(t, tr.Mkdir(p, 0o750))
		case i%100 == 8:
			must(t, tr.Symlink(p, fmt.Sprintf("entry-%03d", i-1)))
		default:
			must(t, tr.AddFile(p, 0o644, []byte(fmt.Sprintf("file number %d\n", i))))
		}
	}
	// Enough long names that the listing passes 64 KiB: extended directory inode with an index.
	for i := 0; i < 1600; i++ {
		must(t, tr.AddFile(fmt.Sprintf("huge/%s-%04d", strings.Repeat("n", 40), i), 0o644, nil))
	}
	must(t, tr.AddFile("files/empty", 0o644, nil))
	must(t, tr.AddFile("files/one-block", 0o644, pseudo(bs, 1, true)))
	must(t, tr.AddFile("files/multi", 0o644, pseudo(3*bs+1234, 2, true)))
	must(t, tr.AddFile("files/random", 0o644, pseudo(2*bs+77, 3, false)))
	must(t, tr.AddFile("files/zeros", 0o644, make([]byte, 3*bs+100)))
	holey := append(append(pseudo(bs, 4, true), make([]byte, bs)...), pseudo(bs+10, 5, false)...)
	must(t, tr.AddFile("files/holey", 0o644, holey))
	must(t, tr.AddFile("files/"+strings.Repeat("L", 255), 0o644, []byte("long name\n")))
	host := filepath.Join(t.TempDir(), "host-file")
	must(t, os.WriteFile(host, pseudo(2*bs+999, 6, true), 0o644))
	must(t, tr.AddHostFile("files/from-host", 0o755, host))

	must(t, tr.Symlink("bin/sh", "busybox"))
	must(t, tr.AddFile("bin/busybox", 0o755, []byte("#!fake\n")))
	must(t, tr.Symlink("abs-link", "/etc/os-release"))
	must(t, tr.Symlink("dangling", "nowhere/at/all"))

	add(&fstree.Entry{Path: "dev/console", Kind: fstree.CharDev, Perm: 0o600, Major: 5, Minor: 1})
	add(&fstree.Entry{Path: "dev/null", Kind: fstree.CharDev, Perm: 0o666, Major: 1, Minor: 3})
	add(&fstree.Entry{Path: "dev/sda", Kind: fstree.BlockDev, Perm: 0o660, GID: 6, Major: 8, Minor: 0})
	add(&fstree.Entry{Path: "dev/initctl", Kind: fstree.FIFO, Perm: 0o600})

	add(&fstree.Entry{Path: "usr/bin/sudo", Kind: fstree.File, Perm: 0o755 | fs.ModeSetuid, Data: []byte("sudo")})
	add(&fstree.Entry{Path: "usr/bin/wall", Kind: fstree.File, Perm: 0o755 | fs.ModeSetgid, GID: 5, Data: []byte("wall")})
	add(&fstree.Entry{Path: "tmp", Kind: fstree.Dir, Perm: 0o777 | fs.ModeSticky})
	add(&fstree.Entry{Path: "home/user", Kind: fstree.Dir, Perm: 0o700, UID: 1000, GID: 1000})
	add(&fstree.Entry{Path: "home/user/notes", Kind: fstree.File, Perm: 0o640, UID: 1000, GID: 1000, Data: []byte("mine\n")})
	add(&fstree.Entry{Path: "home/user/shared", Kind: fstree.File, Perm: 0o644, UID: 0, GID: 1000, Data: []byte("ours\n")})
	return tr
}

func writeImage(t testing.TB, tr *fstree.Tree, o Options) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), "image.sqfs")
	f, err := os.Create(img)
	must(t, err)
	n, err := Write(f, tr, o)
	must(t, err)
	must(t, f.Close())
	st, err := os.Stat(img)
	must(t, err)
	if n != st.Size() || n%4096 != 0 {
		t.Fatalf("Write returned %d, file is %d bytes; want equal and a multiple of 4096", n, st.Size())
	}
	return img
}

func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(requireTool(t, name), args...)
	cmd.Env = append(os.Environ(), "TZ=UTC")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, out.String(), errb.String())
	}
	if s := errb.String(); strings.Contains(strings.ToLower(s), "error") || strings.Contains(strings.ToLower(s), "fail") {
		t.Fatalf("%s %s reported problems:\n%s", name, strings.Join(args, " "), s)
	}
	return out.String()
}

// lsMode renders permissions the way ls and unsquashfs -ll do.
func lsMode(e *fstree.Entry) string {
	typ := map[fstree.Kind]byte{fstree.File: '-', fstree.Dir: 'd', fstree.Symlink: 'l',
		fstree.CharDev: 'c', fstree.BlockDev: 'b', fstree.FIFO: 'p'}[e.Kind]
	b := []byte{typ}
	p := e.Perm.Perm()
	for i, c := range "rwxrwxrwx" {
		if p&(1<<(8-i)) != 0 {
			b = append(b, byte(c))
		} else {
			b = append(b, '-')
		}
	}
	special := func(pos int, flag fs.FileMode, set, unset byte) {
		if e.Perm&flag == 0 {
			return
		}
		if b[pos] == 'x' {
			b[pos] = set
		} else {
			b[pos] = unset
		}
	}
	special(3, fs.ModeSetuid, 's', 'S')
	special(6, fs.ModeSetgid, 's', 'S')
	special(9, fs.ModeSticky, 't', 'T')
	return string(b)
}

func checkSuperblock(t *testing.T, img, comp string, bs int) {
	out := run(t, "unsquashfs", "-s", img)
	for _, want := range []string{"Compression " + comp, fmt.Sprintf("Block size %d", bs), "Xattrs are not stored"} {
		if !strings.Contains(out, want) {
			t.Errorf("unsquashfs -s: missing %q in:\n%s", want, out)
		}
	}
}

func checkListing(t *testing.T, img string, tr *fstree.Tree) {
	out := run(t, "unsquashfs", "-lln", "-d", "R", img)
	wantDate := time.Unix(testTime, 0).UTC().Format("2006-01-02 15:04")
	seen := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 6 || len(f[0]) != 10 {
			continue
		}
		mode, owner, size, rest := f[0], f[1], f[2], f[3:]
		if mode[0] == 'c' || mode[0] == 'b' {
			size, rest = f[2]+f[3], f[4:]
		}
		p := strings.TrimPrefix(strings.TrimPrefix(rest[2], "R"), "/")
		e := tr.Get(p)
		if e == nil {
			t.Errorf("unsquashfs lists %q, not in the tree", p)
			continue
		}
		seen[p] = true
		if want := lsMode(e); mode != want {
			t.Errorf("%s: mode %s, want %s", p, mode, want)
		}
		if want := fmt.Sprintf("%d/%d", e.UID, e.GID); owner != want {
			t.Errorf("%s: owner %s, want %s", p, owner, want)
		}
		if d := rest[0] + " " + rest[1]; d != wantDate {
			t.Errorf("%s: mtime %s, want %s", p, d, wantDate)
		}
		switch e.Kind {
		case fstree.File:
			if want := fmt.Sprint(e.Size()); size != want {
				t.Errorf("%s: size %s, want %s", p, size, want)
			}
		case fstree.Symlink:
			if len(rest) < 5 || rest[3] != "->" || rest[4] != e.Target {
				t.Errorf("%s: symlink listed as %q, want -> %s", p, sc.Text(), e.Target)
			}
		case fstree.CharDev, fstree.BlockDev:
			if want := fmt.Sprintf("%d,%d", e.Major, e.Minor); size != want {
				t.Errorf("%s: device %s, want %s", p, size, want)
			}
		}
	}
	if len(seen) != tr.Len() {
		t.Errorf("unsquashfs listed %d paths, tree has %d", len(seen), tr.Len())
	}
}

func checkExtract(t *testing.T, img string, tr *fstree.Tree) {
	dir := filepath.Join(t.TempDir(), "root")
	run(t, "unsquashfs", "-no-progress", "-d", dir, img)
	count := 0
	err := filepath.WalkDir(dir, func(hp string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, hp)
		if rel == "." {
			rel = ""
		}
		count++
		e := tr.Get(rel)
		if e == nil {
			t.Errorf("extracted %q, not in the tree", rel)
			return nil
		}
		var st syscall.Stat_t
		must(t, syscall.Lstat(hp, &st))
		if got, want := st.Mode&0o7777, uint32(mode(e)); got != want {
			t.Errorf("%q: extracted perm %o, want %o", rel, got, want)
		}
		if st.Uid != e.UID || st.Gid != e.GID {
			t.Errorf("%q: extracted owner %d:%d, want %d:%d", rel, st.Uid, st.Gid, e.UID, e.GID)
		}
		if e.Kind != fstree.Symlink && st.Mtim.Sec != testTime {
			t.Errorf("%q: extracted mtime %d, want %d", rel, st.Mtim.Sec, testTime)
		}
		wantFmt := map[fstree.Kind]uint32{fstree.File: syscall.S_IFREG, fstree.Dir: syscall.S_IFDIR,
			fstree.Symlink: syscall.S_IFLNK, fstree.CharDev: syscall.S_IFCHR, fstree.BlockDev: syscall.S_IFBLK,
			fstree.FIFO: syscall.S_IFIFO}[e.Kind]
		if st.Mode&syscall.S_IFMT != wantFmt {
			t.Errorf("%q: extracted type %o, want %o", rel, st.Mode&syscall.S_IFMT, wantFmt)
			return nil
		}
		switch e.Kind {
		case fstree.File:
			got, err := os.ReadFile(hp)
			must(t, err)
			want, err := e.ReadAll()
			must(t, err)
			if !bytes.Equal(got, want) {
				t.Errorf("%q: extracted content differs (%d bytes, want %d)", rel, len(got), len(want))
			}
		case fstree.Symlink:
			got, err := os.Readlink(hp)
			must(t, err)
			if got != e.Target {
				t.Errorf("%q: link target %q, want %q", rel, got, e.Target)
			}
		case fstree.CharDev, fstree.BlockDev:
			maj, min := uint32((st.Rdev>>8)&0xfff), uint32((st.Rdev&0xff)|((st.Rdev>>12)&0xfff00))
			if maj != e.Major || min != e.Minor {
				t.Errorf("%q: device %d:%d, want %d:%d", rel, maj, min, e.Major, e.Minor)
			}
		}
		return nil
	})
	must(t, err)
	if count != tr.Len() {
		t.Errorf("extracted %d paths, tree has %d", count, tr.Len())
	}
}

func TestWriteReadBack(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("extraction with owners and device nodes needs root")
	}
	for _, tc := range []struct {
		comp string // as passed in Options
		name string // as unsquashfs names it
		bs   int
	}{
		{"", "zstd", 131072},
		{"gzip", "gzip", 131072},
		{"zstd", "zstd", 4096},
	} {
		t.Run(fmt.Sprintf("%s-%d", tc.name, tc.bs), func(t *testing.T) {
			tr := testTree(t, tc.bs)
			o := Options{ModTime: testTime, Compression: tc.comp}
			if tc.bs != 131072 {
				o.BlockSize = tc.bs
			}
			img := writeImage(t, tr, o)
			checkSuperblock(t, img, tc.name, tc.bs)
			checkListing(t, img, tr)
			checkExtract(t, img, tr)
			st := checkKernelLayout(t, img)
			if st.indexedDirs == 0 || st.sparseFiles == 0 {
				t.Errorf("layout stats %+v: want an extended directory with an index and a file with holes", st)
			}
		})
	}
}

func TestDeterministic(t *testing.T) {
	for _, comp := range []string{"zstd", "gzip"} {
		var a, b memFile
		o := Options{ModTime: testTime, Compression: comp}
		na, err := Write(&a, testTree(t, 131072), o)
		must(t, err)
		nb, err := Write(&b, testTree(t, 131072), o)
		must(t, err)
		if na != nb || !bytes.Equal(a.b, b.b) {
			t.Fatalf("%s: two writes of the same tree differ (%d vs %d bytes)", comp, na, nb)
		}
	}
}

func TestEmptyRoot(t *testing.T) {
	tr := fstree.New()
	img := writeImage(t, tr, Options{ModTime: testTime})
	checkListing(t, img, tr)
	checkKernelLayout(t, img)
}

func TestOptionErrors(t *testing.T) {
	for _, tc := range []struct {
		o    Options
		want string
	}{
		{Options{BlockSize: 1000}, "BlockSize"},
		{Options{BlockSize: 2 << 20}, "BlockSize"},
		{Options{Compression: "lzo"}, "Compression"},
		{Options{ModTime: -1}, "ModTime"},
		{Options{ModTime: 1 << 33}, "ModTime"},
	} {
		_, err := Write(&memFile{}, fstree.New(), tc.o)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want one naming %s", tc.o, err, tc.want)
		}
	}
	tr := fstree.New()
	must(t, tr.Add(&fstree.Entry{Path: "dev/big", Kind: fstree.CharDev, Major: 5000}))
	if _, err := Write(&memFile{}, tr, Options{}); err == nil || !strings.Contains(err.Error(), "dev/big") {
		t.Errorf("oversized major: error %v, want one naming dev/big", err)
	}
	tr = fstree.New()
	must(t, tr.AddFile(strings.Repeat("x", 257), 0o644, nil))
	if _, err := Write(&memFile{}, tr, Options{}); err == nil || !strings.Contains(err.Error(), "257 bytes") {
		t.Errorf("long name: error %v", err)
	}
}

func TestEncodeDev(t *testing.T) {
	// Values from the kernel's new_encode_dev.
	for _, tc := range []struct{ maj, min, want uint32 }{
		{5, 1, 0x501}, {8, 0, 0x800}, {259, 65537, 0x10010301}, {4095, 0xfffff, 0xffffffff},
	} {
		if got := encodeDev(tc.maj, tc.min); got != tc.want {
			t.Errorf("encodeDev(%d, %d) = %#x, want %#x", tc.maj, tc.min, got, tc.want)
		}
	}
}
