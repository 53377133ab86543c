package syslinux

import (
	"bytes"
	"crypto/sha256"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/kilnproject/kiln/builder/fat"
	"github.com/kilnproject/kiln/builder/fstree"
)

const testCfg = "SERIAL 0 115200\nSAY syslinux-disk-ok\nDEFAULT nothere\n"

// volumeSectors lists the sectors of ldlinux.sys on the volume of d.
func volumeSectors(t *testing.T, r io.ReaderAt, d *testDisk) []uint64 {
	t.Helper()
	exts, err := fat.FileExtents(io.NewSectionReader(r, d.esp.Offset(), d.esp.Size()), LdlinuxSys)
	if err != nil {
		t.Fatal(err)
	}
	var s []uint64
	for _, x := range exts {
		for o := x.Offset; o < x.Offset+x.Length; o += 512 {
			s = append(s, uint64(o/512))
		}
	}
	return s
}

// TestMatchesSyslinuxInstaller runs the real mtools-based installer
// (`syslinux --install --offset`) on a copy of the same disk and checks that
// our patching gives the same ldlinux.sys bytes for the sectors it chose, and
// the same boot sector.
func TestMatchesSyslinuxInstaller(t *testing.T) {
	requireTool(t, "syslinux")
	requireTool(t, "mcopy") // the installer drives mtools
	l := hostLoader(t)
	for _, ft := range []int{16, 32} {
		t.Run("FAT"+strconv.Itoa(ft), func(t *testing.T) {
			d := makeDisk(t, l, ft, 40<<20, testCfg)
			img, err := os.ReadFile(d.path)
			if err != nil {
				t.Fatal(err)
			}
			ref := d.path + ".ref"
			if err := os.WriteFile(ref, img, 0o644); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command("syslinux", "--install", "--offset", strconv.FormatInt(d.esp.Offset(), 10), ref).CombinedOutput(); err != nil {
				t.Fatalf("syslinux --install: %v\n%s", err, out)
			}
			rf, err := os.Open(ref)
			if err != nil {
				t.Fatal(err)
			}
			defer rf.Close()
			sectors := volumeSectors(t, rf, d)
			file, code, err := l.patch(sectors)
			if err != nil {
				t.Fatal(err)
			}
			sec := make([]byte, 512)
			for i, s := range sectors {
				rf.ReadAt(sec, d.esp.Offset()+int64(s)*512)
				if want := file[i*512 : (i+1)*512]; !bytes.Equal(sec, want) {
					t.Fatalf("ldlinux.sys sector %d (volume sector %d) differs from syslinux's", i, s)
				}
			}
			rf.ReadAt(sec, d.esp.Offset())
			if got := mergeBootSector(d.bs, code); !bytes.Equal(got, sec) {
				t.Fatalf("boot sector differs from syslinux's:\nours   % x\ntheirs % x", got, sec)
			}
			if ft == 32 { // syslinux leaves the backup boot sector alone
				rf.ReadAt(sec, d.esp.Offset()+6*512)
				if !bytes.Equal(sec, d.bs) {
					t.Error("syslinux changed the FAT32 backup boot sector; Install should follow")
				}
			}
		})
	}
}

func fsck(t *testing.T, d *testDisk) string {
	t.Helper()
	requireTool(t, "fsck.vfat")
	part := d.path + ".part"
	b := make([]byte, d.esp.Size())
	if _, err := d.f.ReadAt(b, d.esp.Offset()); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(part, b, 0o644); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(part)
	out, err := exec.Command("fsck.vfat", "-n", part).CombinedOutput()
	if err != nil {
		t.Fatalf("fsck.vfat -n: %v\n%s", err, out)
	}
	return string(out)
}

func TestInstallFsckClean(t *testing.T) {
	l := hostLoader(t)
	for _, c := range []struct {
		fat    int
		size   int64
		backup bool
	}{{12, 4 << 20, false}, {16, 40 << 20, false}, {32, 40 << 20, false}, {32, 40 << 20, true}} {
		t.Run("FAT"+strconv.Itoa(c.fat)+map[bool]string{true: "-backup"}[c.backup], func(t *testing.T) {
			l.WriteBackupBootSector = c.backup
			defer func() { l.WriteBackupBootSector = false }()
			d := makeDisk(t, l, c.fat, c.size, testCfg)
			if err := l.Install(d.f, d.esp.Offset(), d.esp.Size()); err != nil {
				t.Fatal(err)
			}
			out := fsck(t, d)
			lines := strings.Split(strings.TrimSpace(out), "\n")
			if c.fat == 32 && !c.backup {
				// Only bytes syslinux writes may differ from the backup.
				if !strings.Contains(out, "differences between boot sector and its backup") {
					t.Errorf("fsck.vfat did not notice the untouched backup boot sector:\n%s", out)
				}
				for _, f := range strings.FieldsFunc(out[strings.Index(out, "(offset:original/backup)")+24:strings.Index(out, "Not automatically")], func(r rune) bool { return r == ',' || r == ' ' || r == '\n' }) {
					off, _ := strconv.Atoi(f[:strings.Index(f, ":")])
					if off > 509 || off > 10 && off < 90 {
						t.Errorf("boot sector byte %d changed: it belongs to the BPB or signature", off)
					}
				}
			} else if len(lines) != 2 {
				t.Errorf("fsck.vfat -n is not clean:\n%s", out)
			}

			// The patched ldlinux.sys checksums to LDLINUX_MAGIC and its
			// extents and ADV pointers name its own sectors.
			sectors := volumeSectors(t, d.f, d)
			img := make([]byte, len(l.image))
			d.f.ReadAt(img, d.esp.Offset()+int64(sectors[0])*512)
			var sum uint32
			for i := 0; i < len(img); i += 4 {
				sum += le.Uint32(img[i:])
			}
			if sum != ldlinuxMagic {
				t.Errorf("ldlinux.sys dword sum %#x, want %#x", sum, ldlinuxMagic)
			}
			if got := le.Uint64(img[l.epa.secPtrOffset:]); got != sectors[1] {
				t.Errorf("first extent LBA %d, want %d", got, sectors[1])
			}
			if got := le.Uint64(img[l.epa.advPtrOffset+8:]); got != sectors[len(sectors)-1] {
				t.Errorf("second ADV pointer %d, want %d", got, sectors[len(sectors)-1])
			}
			bs := make([]byte, 512)
			d.f.ReadAt(bs, d.esp.Offset())
			if le.Uint32(bs[l.epa.sect1Ptr0:]) != uint32(sectors[0]) || le.Uint32(bs[28:]) != uint32(d.esp.FirstLBA) {
				t.Errorf("boot sector: sector 1 pointer %d (want %d), hidden sectors %d (want %d)",
					le.Uint32(bs[l.epa.sect1Ptr0:]), sectors[0], le.Uint32(bs[28:]), d.esp.FirstLBA)
			}
		})
	}
}

func TestInstallDeterministic(t *testing.T) {
	l := hostLoader(t)
	var sums [2][32]byte
	for i := range sums {
		d := makeDisk(t, l, 32, 40<<20, testCfg)
		if err := l.Install(d.f, d.esp.Offset(), d.esp.Size()); err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(d.path)
		sums[i] = sha256.Sum256(b)
	}
	if sums[0] != sums[1] {
		t.Error("two installs of the same inputs differ")
	}
	// Installing again over an installed volume changes nothing.
	d := makeDisk(t, l, 32, 40<<20, testCfg)
	for range 2 {
		if err := l.Install(d.f, d.esp.Offset(), d.esp.Size()); err != nil {
			t.Fatal(err)
		}
	}
	if b, _ := os.ReadFile(d.path); sha256.Sum256(b) != sums[0] {
		t.Error("a second Install changed the disk")
	}
}

func TestInstallErrors(t *testing.T) {
	l := hostLoader(t)
	d := makeDisk(t, l, 32, 40<<20, testCfg)
	// A volume that does not know it sits at LBA 2048.
	if err := l.Install(d.f, d.esp.Offset()-512, d.esp.Size()); err == nil || !strings.Contains(err.Error(), "0x55AA") {
		t.Errorf("misplaced volume: %v", err)
	}
	bs := append([]byte(nil), d.bs...)
	le.PutUint32(bs[28:], 0)
	d.f.WriteAt(bs, d.esp.Offset())
	if err := l.Install(d.f, d.esp.Offset(), d.esp.Size()); err == nil || !strings.Contains(err.Error(), "hidden sectors") {
		t.Errorf("hidden sectors 0: %v", err)
	}

	// Someone else's ldlinux.sys on the volume.
	for _, c := range []struct {
		size int
		want string
	}{{4096, "bytes, this loader's is"}, {len(l.image) + 1024, "not this loader's"}} {
		d := makeDisk(t, l, 32, 40<<20, testCfg, func(tr *fstree.Tree) { tr.AddFile(LdlinuxSys, 0o444, make([]byte, c.size)) })
		if err := l.Install(d.f, d.esp.Offset(), d.esp.Size()); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("foreign ldlinux.sys of %d bytes: %v", c.size, err)
		}
	}
}

func TestAddFilesRefusesShadowingConfig(t *testing.T) {
	l := hostLoader(t)
	tr := fstree.New()
	tr.AddFile("boot/syslinux/syslinux.cfg", 0o644, []byte("DEFAULT other\n"))
	if err := l.AddFiles(tr, []byte(testCfg)); err == nil || !strings.Contains(err.Error(), "/boot/syslinux/syslinux.cfg") {
		t.Errorf("AddFiles with /boot/syslinux/syslinux.cfg present: %v", err)
	}
	tr = fstree.New()
	if err := l.AddFiles(tr, []byte(testCfg)); err != nil {
		t.Fatal(err)
	}
	for p, a := range l.FATAttributes() {
		if e := tr.Get(p); e == nil || a != fat.AttrReadOnly|fat.AttrHidden|fat.AttrSystem {
			t.Errorf("FATAttributes: %s -> %#x, entry %v", p, a, e)
		}
	}
	if e := tr.Get(ConfigFile); e == nil || string(e.Data) != testCfg {
		t.Errorf("syslinux.cfg not at the root")
	}
}
