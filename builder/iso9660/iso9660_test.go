package iso9660

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/kilnproject/kiln/builder/fstree"
)

var (
	longName   = strings.Repeat("long-lower-case-name-", 9) + "end.json" // 197 bytes: NM through a continuation area
	maxName    = strings.Repeat("n", 255)                                // split into two NM entries
	longTarget = strings.Repeat("t", 120) + "/./../" + strings.Repeat("u", 300) + "/v"
	deepPath   = "a/b/c/d/e/f/g/h/i/j/k/deeply-nested-file.txt" // deeper than ECMA-119's 8 levels
)

// richTree has what NoCloud seeds and config drives need: long lower-case
// names, deep paths, names that collide after mangling, symlinks, modes.
func richTree(t *testing.T) *fstree.Tree {
	tr := fstree.New()
	must(t, tr.AddFile("openstack/latest/meta_data.json", 0o644, []byte(`{"uuid":"x"}`)))
	must(t, tr.AddFile("openstack/latest/user_data", 0o644, []byte("#cloud-config\nhostname: n1\n")))
	must(t, tr.AddFile("openstack/content/0000", 0o600, []byte("secret")))
	must(t, tr.AddFile("meta-data", 0o644, []byte("instance-id: i-1\n")))
	must(t, tr.AddFile("user-data", 0o644, []byte("#cloud-config\n")))
	must(t, tr.AddFile("Meta_Data.json", 0o644, []byte("1")))
	must(t, tr.AddFile("meta-data.json", 0o644, []byte("2")))
	must(t, tr.AddFile("meta.data.json", 0o644, []byte("3")))
	must(t, tr.AddFile(longName, 0o644, []byte("long")))
	must(t, tr.AddFile("dir/"+maxName, 0o640, []byte("max")))
	must(t, tr.AddFile(deepPath, 0o644, []byte("deep")))
	must(t, tr.AddFile("empty", 0o644, nil))
	must(t, tr.Add(&fstree.Entry{Path: "bin/tool", Kind: fstree.File, Perm: 0o755 | fs.ModeSetuid, UID: 1000, GID: 100, Data: []byte("#!/bin/sh\n")}))
	must(t, tr.Mkdir("private", 0o700))
	must(t, tr.Mkdir("tmp", 0o777|fs.ModeSticky))
	must(t, tr.Symlink("link-rel", "openstack/latest/meta_data.json"))
	must(t, tr.Symlink("link-abs", "/openstack/latest/user_data"))
	must(t, tr.Symlink("link-long", longTarget))
	must(t, tr.Add(&fstree.Entry{Path: "fifo", Kind: fstree.FIFO, Perm: 0o644}))
	// enough entries with long names to need several directory blocks
	for i := 0; i < 80; i++ {
		name := "many/" + strings.Repeat("file-with-a-long-name-", 3) + string(rune('a'+i%26)) + string(rune('a'+i/26))
		must(t, tr.AddFile(name, 0o644, bytes.Repeat([]byte{byte(i)}, i*100)))
	}
	must(t, tr.AddFile("big", 0o644, bytes.Repeat([]byte("0123456789abcdef"), 300000))) // 4.8 MB, several buffers
	return tr
}

// lsdl lists the image through xorriso's Rock Ridge reader: path -> line.
func lsdl(t *testing.T, iso string, extra ...string) map[string]string {
	t.Helper()
	need(t, "xorriso")
	args := append(extra, "-indev", iso, "-find", "/", "-exec", "lsdl")
	out := run(t, "xorriso", args...)
	re := regexp.MustCompile(`^(\S+)\s+\d+\s+(\d+)\s+(\d+)\s+(\S+)\s+\w+\s+\d+\s+\d+\s+'([^']*)'(?: -> '([^']*)')?$`)
	m := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if s := re.FindStringSubmatch(line); s != nil {
			m[s[5]] = strings.Join([]string{s[1], s[2], s[3], s[4], s[6]}, " ")
		}
	}
	return m
}

func TestRockRidgeNamesModesLinks(t *testing.T) {
	iso := writeISO(t, richTree(t), Options{VolumeID: "CIDATA", ModTime: testEpoch})
	got := lsdl(t, iso)
	want := map[string]string{
		"/openstack/latest/meta_data.json": "-rw-r--r-- 0 0 12 ",
		"/openstack/content/0000":          "-rw------- 0 0 6 ",
		"/meta-data":                       "-rw-r--r-- 0 0 17 ",
		"/Meta_Data.json":                  "-rw-r--r-- 0 0 1 ",
		"/meta-data.json":                  "-rw-r--r-- 0 0 1 ",
		"/meta.data.json":                  "-rw-r--r-- 0 0 1 ",
		"/" + longName:                     "-rw-r--r-- 0 0 4 ",
		"/dir/" + maxName:                  "-rw-r----- 0 0 3 ",
		"/" + deepPath:                     "-rw-r--r-- 0 0 4 ",
		"/empty":                           "-rw-r--r-- 0 0 0 ",
		"/bin/tool":                        "-rwsr-xr-x 1000 100 10 ",
		"/private":                         "drwx------ 0 0 0 ",
		"/tmp":                             "drwxrwxrwt 0 0 0 ",
		"/link-rel":                        "lrwxrwxrwx 0 0 0 openstack/latest/meta_data.json",
		"/link-abs":                        "lrwxrwxrwx 0 0 0 /openstack/latest/user_data",
		"/link-long":                       "lrwxrwxrwx 0 0 0 " + longTarget,
		"/fifo":                            "prw-r--r-- 0 0 0 ",
	}
	for p, w := range want {
		if got[p] != w {
			t.Errorf("%s: xorriso lists %q, want %q", p, got[p], w)
		}
	}
	if n := len(got); n != richTree(t).Len() {
		t.Errorf("xorriso lists %d entries, tree has %d", n, richTree(t).Len())
	}
}

func TestPrimaryNamesAreUniqueLevel2(t *testing.T) {
	iso := writeISO(t, richTree(t), Options{VolumeID: "CIDATA", ModTime: testEpoch})
	got := lsdl(t, iso, "-read_fs", "norock")
	for _, p := range []string{"/META_DATA.JSON", "/META_DATA_1.JSON", "/META_DATA_2.JSON", "/META_DATA", "/OPENSTACK/LATEST/META_DATA.JSON",
		"/OPENSTACK/LATEST/USER_DATA", "/A/B/C/D/E/F/G/H/I/J/K/DEEPLY_NESTED_FILE.TXT"} {
		if _, ok := got[p]; !ok {
			t.Errorf("primary name %s missing; have %v", p, keys(got))
		}
	}
	valid := regexp.MustCompile(`^[A-Z0-9_]{1,31}$|^[A-Z0-9_]*\.[A-Z0-9_]*$`)
	seen := map[string]bool{}
	for p := range got {
		if p == "/" {
			continue
		}
		if seen[strings.ToUpper(p)] {
			t.Errorf("duplicate primary path %s", p)
		}
		seen[p] = true
		base := p[strings.LastIndexByte(p, '/')+1:]
		if !valid.MatchString(base) || len(strings.Replace(base, ".", "", 1)) > 31 {
			t.Errorf("primary name %q is not a level-2 d-character name", base)
		}
	}
	if len(got) != richTree(t).Len() {
		t.Errorf("ECMA-119 tree lists %d entries, want %d", len(got), richTree(t).Len())
	}
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestExtractIdenticalContent(t *testing.T) {
	tr := richTree(t)
	for _, e := range bootTree(t, efiImage(t)).Entries() {
		if e.Kind == fstree.File {
			must(t, tr.Add(e))
		}
	}
	o := bootOptions(true)
	iso := writeISO(t, tr, o)
	dir := filepath.Join(t.TempDir(), "x")
	run(t, "xorriso", "-osirrox", "on", "-indev", iso, "-extract", "/", dir)
	for _, e := range tr.Entries() {
		host := filepath.Join(dir, e.Path)
		switch e.Kind {
		case fstree.File:
			want, err := e.ReadAll()
			must(t, err)
			got, err := os.ReadFile(host)
			if err != nil {
				t.Errorf("%s: not extracted: %v", e.Path, err)
				continue
			}
			if e.Path == o.BIOS.Image {
				checkBootInfoTable(t, iso, want, got)
				continue
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s: extracted %d bytes differ from the tree's %d", e.Path, len(got), len(want))
			}
		case fstree.Symlink:
			got, err := os.Readlink(host)
			if err != nil || got != e.Target {
				t.Errorf("%s: extracted link %q (%v), want %q", e.Path, got, err, e.Target)
			}
		}
	}
	cat, err := os.ReadFile(filepath.Join(dir, "isolinux/boot.cat"))
	if err != nil || len(cat) != 2048 || cat[0] != 1 || cat[30] != 0x55 || cat[31] != 0xAA {
		t.Errorf("boot catalog not visible at isolinux/boot.cat as a validation entry (%v)", err)
	}
}

// checkBootInfoTable compares the patched isolinux.bin with the original:
// only bytes 8..63 differ, and they hold PVD LBA, file LBA, length, checksum.
func checkBootInfoTable(t *testing.T, iso string, orig, got []byte) {
	t.Helper()
	if len(got) != len(orig) || !bytes.Equal(got[:8], orig[:8]) || !bytes.Equal(got[64:], orig[64:]) {
		t.Fatalf("isolinux.bin changed outside the boot info table")
	}
	img, err := os.ReadFile(iso)
	must(t, err)
	pvd := binary.LittleEndian.Uint32(got[8:])
	lba := binary.LittleEndian.Uint32(got[12:])
	length := binary.LittleEndian.Uint32(got[16:])
	var sum uint32
	for i := 64; i < len(orig); i += 4 {
		sum += binary.LittleEndian.Uint32(orig[i:])
	}
	if pvd != 16 || length != uint32(len(orig)) || binary.LittleEndian.Uint32(got[20:]) != sum {
		t.Errorf("boot info table: pvd %d length %d csum %#x, want 16, %d, %#x", pvd, length, binary.LittleEndian.Uint32(got[20:]), len(orig), sum)
	}
	if !bytes.Equal(img[int64(lba)*2048:int64(lba)*2048+int64(len(got))], got) {
		t.Errorf("boot info table file LBA %d does not point at isolinux.bin", lba)
	}
}

func TestDeterministic(t *testing.T) {
	tr := richTree(t)
	for _, e := range bootTree(t, efiImage(t)).Entries() {
		if e.Kind == fstree.File {
			must(t, tr.Add(e))
		}
	}
	var a, b memWriterAt
	na, err := Write(&a, tr, bootOptions(true))
	must(t, err)
	nb, err := Write(&b, tr, bootOptions(true))
	must(t, err)
	if na != nb || !bytes.Equal(a.b, b.b) {
		t.Fatalf("two writes differ: %d vs %d bytes", na, nb)
	}
	// a file starts out zero: equal bytes prove every gap was written
	f, err := os.ReadFile(writeISO(t, tr, bootOptions(true)))
	must(t, err)
	if !bytes.Equal(f, a.b) {
		t.Fatalf("image in memory (0xAA-filled) differs from the file: some bytes were not written")
	}
	o := bootOptions(true)
	o.ModTime++
	var c memWriterAt
	_, err = Write(&c, tr, o)
	must(t, err)
	if sha256.Sum256(c.b) == sha256.Sum256(a.b) {
		t.Fatal("ModTime does not reach the image")
	}
}

func TestVolumeLabels(t *testing.T) {
	need(t, "blkid")
	tr := richTree(t)
	for _, o := range []Options{
		{VolumeID: "CIDATA"},
		{VolumeID: "cidata", AllowLowerCaseVolumeID: true},
		{VolumeID: "config-2", AllowLowerCaseVolumeID: true},
		{VolumeID: "KILN-MINIMAL_0123456789ABCDEFGHI"},
	} {
		o.ModTime = testEpoch
		iso := writeISO(t, tr, o)
		out := run(t, "blkid", "-p", "-o", "export", iso)
		if !strings.Contains(out, "LABEL="+o.VolumeID+"\n") || !strings.Contains(out, "TYPE=iso9660") ||
			!strings.Contains(out, "UUID=2023-11-14-22-13-20-00") {
			t.Errorf("%s: blkid says\n%s", o.VolumeID, out)
		}
	}
}

func TestErrors(t *testing.T) {
	tr := bootTree(t, "")
	big := filepath.Join(t.TempDir(), "big")
	f, err := os.Create(big)
	must(t, err)
	must(t, f.Truncate(1<<32)) // sparse, one byte over the limit
	f.Close()
	huge := fstree.New()
	must(t, huge.AddHostFile("huge.bin", 0o644, big))
	bios := bootOptions(false).BIOS
	for _, c := range []struct {
		tree *fstree.Tree
		o    Options
		want string
	}{
		{tr, Options{VolumeID: "config-2"}, `VolumeID "config-2": character 'c'`},
		{tr, Options{VolumeID: ""}, "VolumeID"},
		{tr, Options{VolumeID: strings.Repeat("A", 33)}, "1 to 32"},
		{tr, Options{VolumeID: "A B"}, "character ' '"},
		{tr, Options{VolumeID: "A", ModTime: -3000000000}, "ModTime"},
		{tr, Options{VolumeID: "A", Hybrid: true}, "Hybrid needs"},
		{tr, Options{VolumeID: "A", Hybrid: true, BIOS: &BIOSBoot{Image: bios.Image, MBR: []byte{1}}}, "BIOS.MBR"},
		{tr, Options{VolumeID: "A", BIOS: &BIOSBoot{Image: "nope.bin"}}, `BIOS.Image "nope.bin": not in the tree`},
		{tr, Options{VolumeID: "A", EFI: &EFIBoot{Image: "isolinux"}}, `EFI.Image "isolinux": is a dir`},
		{tr, Options{VolumeID: "A", BIOS: &BIOSBoot{Image: bios.Image, Catalog: "isolinux/isolinux.cfg"}}, "isolinux/isolinux.cfg: already in the tree"},
		{huge, Options{VolumeID: "A"}, "huge.bin: 4294967296 bytes"},
	} {
		var m memWriterAt
		_, err := Write(&m, c.tree, c.o)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want it to mention %q", c.o, err, c.want)
		}
	}
}
