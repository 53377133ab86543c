package fat

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/kilnproject/kiln/builder/fstree"
)

// requireTool fails (never skips) when an oracle tool is missing: the tools
// are installed in CI, so a missing one is a broken environment.
func requireTool(t *testing.T, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Fatalf("%s is required for this test (apt-get install dosfstools mtools): %v", name, err)
	}
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	requireTool(t, name)
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=0", "LC_ALL=C.UTF-8")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// pattern returns n deterministic, non-repeating-looking bytes.
func pattern(seed, n int) []byte {
	b := make([]byte, n)
	x := uint32(seed*2654435761 + 1)
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}

// testTree has what an ESP or a syslinux volume holds plus the awkward cases:
// nested dirs, long and Unicode names, exact 8.3 names in either case, names
// whose aliases collide, empty and multi-cluster files, a directory larger
// than one cluster.
func testTree(t *testing.T) *fstree.Tree {
	t.Helper()
	tr := fstree.New()
	add := func(p string, data []byte) {
		if err := tr.AddFile(p, 0o644, data); err != nil {
			t.Fatal(err)
		}
	}
	add("EFI/BOOT/BOOTX64.EFI", pattern(1, 150000))
	add("EFI/Linux/kiln-A.efi", pattern(2, 70001))
	add("EFI/Linux/kiln-B.efi", pattern(3, 4096))
	add("loader/loader.conf", []byte("timeout 3\ndefault kiln-A.efi\n"))
	add("loader/entries/very long entry name with spaces.conf", []byte("title kiln\n"))
	add("ldlinux.sys", pattern(4, 60000))
	add("syslinux.cfg", []byte("DEFAULT kiln\n"))
	add("README.TXT", []byte("upper 8.3\n"))
	add("Makefile", []byte("mixed case\n"))
	add(".hidden", []byte("leading dot\n"))
	add("archive.tar.gz", pattern(5, 1000))
	add("a+b=c[1];d,e.txt", []byte("odd characters\n"))
	add("ünïcødé ☃.txt", []byte("unicode\n"))
	add("empty", nil)
	add("deep/a/b/c/d/e/f/g/leaf.bin", pattern(6, 513))
	tr.Mkdir("emptydir", 0o755)
	for i := range 120 {
		add(fmt.Sprintf("many/longfilename-%03d.conf", i), pattern(100+i, i*7))
	}
	add("many/LONGFI~1.CON", []byte("an exact name that looks like an alias\n"))
	return tr
}

func writeImage(t *testing.T, tr *fstree.Tree, o Options) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), "fat.img")
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := Write(f, tr, o); err != nil {
		t.Fatalf("Write: %v", err)
	}
	st, _ := f.Stat()
	if st.Size() != o.Size {
		t.Fatalf("image is %d bytes, want %d", st.Size(), o.Size)
	}
	return img
}

func fsck(t *testing.T, img string) string {
	t.Helper()
	out := run(t, "fsck.vfat", "-n", "-v", img)
	for _, bad := range []string{"wrong", "nvalid", "orrect", "Bad", "differ", "Dirty", "will be", "?"} {
		for _, line := range strings.Split(out, "\n") {
			if strings.Contains(line, bad) && !strings.Contains(line, "Checking free cluster summary") {
				t.Errorf("fsck.vfat complains: %q\n%s", line, out)
			}
		}
	}
	return out
}

var typeCases = []struct {
	name    string
	size    int64
	fatType int
}{
	{"FAT12", 2 << 20, 12},
	{"FAT16", 24 << 20, 16},
	{"FAT32", 64 << 20, 32},
	{"auto-small", 3 << 20, 0},
	{"auto-esp", 96 << 20, 0},
}

func TestFsckAndMtools(t *testing.T) {
	for _, tc := range typeCases {
		t.Run(tc.name, func(t *testing.T) {
			tr := testTree(t)
			o := Options{Size: tc.size, Label: "kiln-esp", VolumeID: 0x4b494c4e, ModTime: 1700000001, FATType: tc.fatType,
				Attributes: map[string]uint8{"ldlinux.sys": AttrReadOnly | AttrHidden | AttrSystem}}
			img := writeImage(t, tr, o)
			want := tc.fatType
			if want == 0 {
				want = autoType(tc.size)
			}

			out := fsck(t, img)
			if !strings.Contains(out, fmt.Sprintf("%d bit entries", want)) {
				t.Errorf("fsck.vfat does not see FAT%d:\n%s", want, out)
			}

			info := run(t, "minfo", "-i", img, "::")
			if !strings.Contains(info, `disk label="KILN-ESP   "`) || !strings.Contains(info, fmt.Sprintf(`disk type="FAT%d   "`, want)) ||
				!strings.Contains(info, "serial number: 4B494C4E") {
				t.Errorf("minfo shows the wrong label, type or serial:\n%s", info)
			}

			listing := run(t, "mdir", "-i", img, "-/", "::")
			for _, name := range []string{"very long entry name with spaces.conf", "ünïcødé ☃.txt", "longfilename-119.conf", "Makefile"} {
				if !strings.Contains(listing, name) {
					t.Errorf("mdir does not list %q", name)
				}
			}
			if !strings.Contains(listing, "Volume in drive : is KILN-ESP") {
				t.Errorf("mdir does not show the volume label entry:\n%s", listing[:200])
			}

			attrs := run(t, "mattrib", "-i", img, "::/ldlinux.sys")
			if flags, _, _ := strings.Cut(attrs, "::"); strings.Join(strings.Fields(flags), "") != "SHR" {
				t.Errorf("ldlinux.sys attributes: %q, want read-only, hidden, system", attrs)
			}

			dir := filepath.Join(t.TempDir(), "out")
			os.Mkdir(dir, 0o755)
			run(t, "mcopy", "-s", "-n", "-i", img, "::", dir)
			compareTree(t, tr, dir)
			checkExtents(t, tr, img, dir)
		})
	}
}

// compareTree checks that dir holds exactly the tree: same paths, kinds and bytes.
func compareTree(t *testing.T, tr *fstree.Tree, dir string) {
	t.Helper()
	got := map[string]string{}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." {
			return nil
		}
		if d.IsDir() {
			got[filepath.ToSlash(rel)] = "dir"
		} else {
			b, _ := os.ReadFile(p)
			got[filepath.ToSlash(rel)] = string(b)
		}
		return nil
	})
	want := map[string]string{}
	for _, e := range tr.Entries() {
		if e.Path == "" {
			continue
		}
		if e.Kind == fstree.Dir {
			want[e.Path] = "dir"
		} else {
			b, _ := e.ReadAll()
			want[e.Path] = string(b)
		}
	}
	var keys []string
	for k := range want {
		keys = append(keys, k)
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		w, okw := want[k]
		g, okg := got[k]
		switch {
		case !okg:
			t.Errorf("mcopy did not extract %q", k)
		case !okw:
			t.Errorf("mcopy extracted %q, which is not in the tree", k)
		case w != g:
			t.Errorf("%s: mcopy returned %d bytes that differ from the tree's %d", k, len(g), len(w))
		}
	}
}

// checkExtents reads every file through FileExtents and compares with what
// mcopy extracted; files must also be contiguous (one extent).
func checkExtents(t *testing.T, tr *fstree.Tree, img, dir string) {
	t.Helper()
	raw, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	r := bytes.NewReader(raw)
	for _, e := range tr.Entries() {
		if e.Kind != fstree.File {
			continue
		}
		ext, err := FileExtents(r, e.Path)
		if err != nil {
			t.Errorf("FileExtents(%s): %v", e.Path, err)
			continue
		}
		if e.Size() > 0 && len(ext) != 1 {
			t.Errorf("%s: %d extents, want 1 (contiguous)", e.Path, len(ext))
		}
		var b []byte
		for _, x := range ext {
			b = append(b, raw[x.Offset:x.Offset+x.Length]...)
		}
		want, _ := os.ReadFile(filepath.Join(dir, filepath.FromSlash(e.Path)))
		if !bytes.Equal(b, want) {
			t.Errorf("%s: bytes at FileExtents %v differ from mcopy's (%d vs %d bytes)", e.Path, ext, len(b), len(want))
		}
	}
	// Case-insensitive lookup, and the 8.3 alias, as FAT resolves them.
	if _, err := FileExtents(r, "efi/boot/bootx64.efi"); err != nil {
		t.Errorf("case-insensitive lookup: %v", err)
	}
	if _, err := FileExtents(r, "nope/file"); err == nil || !strings.Contains(err.Error(), "nope/file") {
		t.Errorf("missing file: err = %v, want one naming the path", err)
	}
}

func TestDeterministic(t *testing.T) {
	for _, tc := range typeCases[:3] {
		t.Run(tc.name, func(t *testing.T) {
			o := Options{Size: tc.size, Label: "EFI", VolumeID: 1, ModTime: 1700000000, FATType: tc.fatType}
			a := writeImage(t, testTree(t), o)
			// The second image goes over junk: every byte must be written.
			b := filepath.Join(t.TempDir(), "b.img")
			os.WriteFile(b, bytes.Repeat([]byte{0xA5}, int(tc.size)), 0o644)
			f, _ := os.OpenFile(b, os.O_RDWR, 0)
			if err := Write(f, testTree(t), o); err != nil {
				t.Fatal(err)
			}
			f.Close()
			x, _ := os.ReadFile(a)
			y, _ := os.ReadFile(b)
			if !bytes.Equal(x, y) {
				t.Fatal("two writes of the same tree differ")
			}
		})
	}
}

func TestMinSize(t *testing.T) {
	tr := testTree(t)
	for _, ft := range []int{0, 12, 16, 32} {
		size := MinSize(tr, ft)
		if size%minSizeStep != 0 {
			t.Errorf("FAT%d: MinSize %d is not a multiple of 64 KiB", ft, size)
		}
		img := writeImage(t, tr, Options{Size: size, Label: "MIN", FATType: ft})
		fsck(t, img)
		if size > minSizeStep {
			f, _ := os.Create(filepath.Join(t.TempDir(), "small.img"))
			if err := Write(f, tr, Options{Size: size - minSizeStep, Label: "MIN", FATType: ft}); err == nil {
				t.Errorf("FAT%d: %d bytes is below MinSize %d but Write succeeded", ft, size-minSizeStep, size)
			}
			f.Close()
		}
	}
}

func TestErrors(t *testing.T) {
	w := &discard{}
	big := fstree.New()
	big.AddFile("EFI/BOOT/BOOTX64.EFI", 0o644, make([]byte, 3<<20))
	cases := []struct {
		name string
		tree func() *fstree.Tree
		o    Options
		want []string
	}{
		{"file larger than disk", func() *fstree.Tree { return big }, Options{Size: 1 << 20}, []string{"EFI/BOOT/BOOTX64.EFI", "3145728", "1048576"}},
		{"tree too big", func() *fstree.Tree {
			tr := fstree.New()
			for i := range 3 {
				tr.AddFile(fmt.Sprintf("f%d", i), 0o644, make([]byte, 400<<10))
			}
			return tr
		}, Options{Size: 1 << 20}, []string{"f2", "MinSize"}},
		{"symlink", func() *fstree.Tree { tr := fstree.New(); tr.Symlink("boot/link", "x"); return tr }, Options{Size: 1 << 20}, []string{"boot/link", "symlink"}},
		{"case clash", func() *fstree.Tree {
			tr := fstree.New()
			tr.AddFile("d/Readme", 0o644, nil)
			tr.AddFile("d/README", 0o644, nil)
			return tr
		}, Options{Size: 1 << 20}, []string{"d/README", "d/Readme", "case"}},
		{"bad name", func() *fstree.Tree { tr := fstree.New(); tr.AddFile("a:b", 0o644, nil); return tr }, Options{Size: 1 << 20}, []string{"a:b"}},
		{"label", func() *fstree.Tree { return fstree.New() }, Options{Size: 1 << 20, Label: "THIS-IS-TOO-LONG"}, []string{"THIS-IS-TOO-LONG"}},
		{"FAT32 too small", func() *fstree.Tree { return fstree.New() }, Options{Size: 16 << 20, FATType: 32}, []string{"FAT32", "too small"}},
		{"FAT12 too large", func() *fstree.Tree { return fstree.New() }, Options{Size: 1 << 30, FATType: 12}, []string{"FAT12", "too large"}},
		{"odd size", func() *fstree.Tree { return fstree.New() }, Options{Size: 1000}, []string{"1000"}},
		{"unknown attribute path", func() *fstree.Tree { return fstree.New() }, Options{Size: 1 << 20, Attributes: map[string]uint8{"ldlinux.sys": 7}}, []string{"ldlinux.sys"}},
	}
	for _, c := range cases {
		err := Write(w, c.tree(), c.o)
		if err == nil {
			t.Errorf("%s: no error", c.name)
			continue
		}
		for _, s := range c.want {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("%s: error %q does not mention %q", c.name, err, s)
			}
		}
	}
}

type discard struct{}

func (discard) WriteAt(p []byte, off int64) (int, error) { return len(p), nil }

// TestBigRoot fills a FAT12/16 root directory past the usual 512 entries:
// the fixed root region must grow to hold it.
func TestBigRoot(t *testing.T) {
	tr := fstree.New()
	for i := range 300 {
		tr.AddFile(fmt.Sprintf("root file number %03d.txt", i), 0o644, []byte{byte(i)})
	}
	for _, ft := range []int{12, 16} {
		img := writeImage(t, tr, Options{Size: 4 << 20, FATType: ft, Label: "ROOT"})
		fsck(t, img)
		dir := filepath.Join(t.TempDir(), "out")
		os.Mkdir(dir, 0o755)
		run(t, "mcopy", "-s", "-n", "-i", img, "::", dir)
		compareTree(t, tr, dir)
	}
}

// TestHostFilesAndHiddenSectors writes files streamed from the host and a
// partition offset into the BPB.
func TestHostFilesAndHiddenSectors(t *testing.T) {
	src := filepath.Join(t.TempDir(), "kernel")
	os.WriteFile(src, pattern(9, 300000), 0o644)
	tr := fstree.New()
	if err := tr.AddHostFile("boot/vmlinuz", 0o644, src); err != nil {
		t.Fatal(err)
	}
	img := writeImage(t, tr, Options{Size: 2 << 20, HiddenSectors: 2048})
	if out := fsck(t, img); !strings.Contains(out, "2048 hidden sectors") {
		t.Errorf("fsck.vfat does not see the hidden sectors:\n%s", out)
	}
	dir := filepath.Join(t.TempDir(), "out")
	os.Mkdir(dir, 0o755)
	run(t, "mcopy", "-s", "-n", "-i", img, "::", dir)
	compareTree(t, tr, dir)

	// The source shrinking after Add must not produce a silently short file.
	os.WriteFile(src, []byte("short"), 0o644)
	if err := Write(discard{}, tr, Options{Size: 2 << 20}); err == nil || !strings.Contains(err.Error(), "boot/vmlinuz") {
		t.Errorf("changed source: err = %v", err)
	}
}
