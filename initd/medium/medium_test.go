package medium

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
)

func need(t *testing.T, tool, pkg string) {
	t.Helper()
	if _, err := exec.LookPath(tool); err != nil {
		t.Fatalf("%s is required for this test (Debian package %s): %v", tool, pkg, err)
	}
}

func makeISO(t *testing.T, label string) string {
	t.Helper()
	need(t, "xorriso", "xorriso")
	src := t.TempDir()
	os.MkdirAll(filepath.Join(src, "kiln"), 0o755)
	os.WriteFile(filepath.Join(src, "kiln/system.sqfs"), []byte("not really"), 0o644)
	iso := filepath.Join(t.TempDir(), "test.iso")
	out, err := exec.Command("xorriso", "-as", "mkisofs", "-quiet", "-R", "-V", label, "-o", iso, src).CombinedOutput()
	if err != nil {
		t.Fatalf("xorriso: %v\n%s", err, out)
	}
	return iso
}

func TestISOLabel(t *testing.T) {
	iso := makeISO(t, "KILN-DEV_1")
	f, err := os.Open(iso)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := ISOLabel(f)
	if err != nil || got != "KILN-DEV_1" {
		t.Fatalf("ISOLabel = %q, %v", got, err)
	}
	blank := filepath.Join(t.TempDir(), "blank")
	os.WriteFile(blank, make([]byte, 64<<10), 0o644)
	b, _ := os.Open(blank)
	defer b.Close()
	if _, err := ISOLabel(b); err != ErrNotISO {
		t.Errorf("blank: %v", err)
	}
}

// fakeSys lays out /sys/class/block and /dev with regular files standing in
// for device nodes.
type fakeSys struct{ class, dev string }

func newFakeSys(t *testing.T) fakeSys {
	r := t.TempDir()
	f := fakeSys{filepath.Join(r, "class/block"), filepath.Join(r, "dev")}
	os.MkdirAll(f.class, 0o755)
	os.MkdirAll(f.dev, 0o755)
	return f
}

func (f fakeSys) add(t *testing.T, name, parent, image string, part int, start, sectors uint64) {
	t.Helper()
	dir := filepath.Join(filepath.Dir(f.class), "devices", parent, name)
	os.MkdirAll(dir, 0o755)
	w := func(n, v string) { os.WriteFile(filepath.Join(dir, n), []byte(v+"\n"), 0o644) }
	w("size", itoa(sectors))
	if part > 0 {
		w("partition", itoa(uint64(part)))
		w("start", itoa(start))
	}
	if err := os.Symlink(dir, filepath.Join(f.class, name)); err != nil {
		t.Fatal(err)
	}
	if image != "" {
		os.Symlink(image, filepath.Join(f.dev, name))
	}
}

func itoa(v uint64) string { return strconv.FormatUint(v, 10) }

func TestFindISOAndDisk(t *testing.T) {
	need(t, "sgdisk", "gdisk")
	iso := makeISO(t, "KILN-X")
	disk := filepath.Join(t.TempDir(), "disk.img")
	os.WriteFile(disk, nil, 0o644)
	os.Truncate(disk, 32<<20)
	out, err := exec.Command("sgdisk", "-n", "1:2048:+4M", "-c", "1:ESP", "-n", "2:0:+8M", "-c", "2:SYS-A",
		"-n", "3:0:+8M", "-c", "3:SYS-B", "-n", "4:0:+1M", "-c", "4:STATE", disk).CombinedOutput()
	if err != nil {
		t.Fatalf("sgdisk: %v\n%s", err, out)
	}
	fs := newFakeSys(t)
	fs.add(t, "sr0", "", iso, 0, 0, 1000)
	fs.add(t, "vda", "", disk, 0, 0, 65536)
	fs.add(t, "vda1", "vda", "", 1, 2048, 8192)
	fs.add(t, "vda2", "vda", "", 2, 10240, 16384)
	fs.add(t, "vda3", "vda", "", 3, 26624, 16384)
	fs.add(t, "vda4", "vda", "", 4, 43008, 2048)
	fs.add(t, "loop0", "", iso, 0, 0, 1000) // not a candidate

	m, err := Find(Options{SysClassBlock: fs.class, DevDir: fs.dev, Label: "KILN-X", Slot: "A"})
	if err != nil || m.Kind != ISO || m.Device != fs.dev+"/sr0" {
		t.Fatalf("Find(label) = %+v, %v", m, err)
	}
	m, err = Find(Options{SysClassBlock: fs.class, DevDir: fs.dev, Label: "OTHER", Slot: "B"})
	if err != nil || m.Kind != Disk || m.System != fs.dev+"/vda3" || m.State != fs.dev+"/vda4" || m.StateIndex != 4 {
		t.Fatalf("Find(disk, slot B) = %+v, %v", m, err)
	}
	empty := newFakeSys(t)
	fs2 := empty
	fs2.add(t, "sr0", "", iso, 0, 0, 1000)
	if _, err := Find(Options{SysClassBlock: fs2.class, DevDir: fs2.dev, Label: "NOPE", Slot: "A"}); err != ErrNotFound {
		t.Fatalf("Find(nothing) = %v", err)
	}
}

// isCandidate must accept exactly what the regexp it replaced accepted.
func TestIsCandidate(t *testing.T) {
	re := regexp.MustCompile(`^(sr[0-9]+|sd[a-z]+[0-9]*|vd[a-z]+[0-9]*|xvd[a-z]+[0-9]*|nvme[0-9]+n[0-9]+(p[0-9]+)?|mmcblk[0-9]+(p[0-9]+)?)$`)
	names := []string{"sr0", "sr12", "sr", "sra", "sda", "sdab", "sda1", "sda12", "sd", "sd1", "sdA", "sda1b",
		"vda", "vdb2", "vd", "xvda", "xvdb3", "xvd", "nvme0n1", "nvme0n1p2", "nvme10n12p3", "nvme", "nvme0",
		"nvme0n", "nvmen1", "nvme0n1p", "nvme0n1q1", "mmcblk0", "mmcblk0p1", "mmcblk", "mmcblkp1", "mmcblk0p",
		"loop0", "ram0", "dm-0", "md0", "zram0", "", "s", "sr0 ", "vda-1"}
	// Every prefix with every short tail over the bytes that matter.
	tails := []string{""}
	for _, a := range "a1pnz" {
		tails = append(tails, string(a))
		for _, b := range "a1pn" {
			tails = append(tails, string(a)+string(b))
			for _, c := range "a1p" {
				tails = append(tails, string(a)+string(b)+string(c))
			}
		}
	}
	for _, p := range []string{"sr", "sd", "vd", "xvd", "nvme", "nvme0", "nvme0n1", "mmcblk", "mmcblk0", "x"} {
		for _, tail := range tails {
			names = append(names, p+tail)
		}
	}
	for _, n := range names {
		if got, want := isCandidate(n), re.MatchString(n); got != want {
			t.Errorf("isCandidate(%q) = %v, regexp says %v", n, got, want)
		}
	}
}
