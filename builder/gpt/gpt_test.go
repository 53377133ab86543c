package gpt

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// requireTool fails (never skips) when an oracle tool is missing.
func requireTool(t *testing.T, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Fatalf("%s is required for this test (apt-get install gdisk fdisk): %v", name, err)
	}
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	requireTool(t, name)
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// testDisk is the installed-disk layout of the boot contract.
func testDisk(t *testing.T) Disk {
	t.Helper()
	const size = 300 << 20
	parts, err := Layout(size, []Want{
		{Name: "ESP", Type: TypeESP, Size: 64 << 20, Attributes: AttrLegacyBIOSBootable},
		{Name: "SYS-A", Type: TypeLinuxFS, Size: 100 << 20},
		{Name: "SYS-B", Type: TypeLinuxFS, Size: 100 << 20, GUID: MustParseGUID("01234567-89AB-CDEF-0123-456789ABCDEF")},
		{Name: "STATE", Type: TypeLinuxFS},
	})
	if err != nil {
		t.Fatal(err)
	}
	return Disk{SizeBytes: size, GUID: NameGUID("disk", "test"), Partitions: parts}
}

func writeDisk(t *testing.T, d Disk) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "disk.img")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(d.SizeBytes); err != nil {
		t.Fatal(err)
	}
	if err := Write(f, d); err != nil {
		t.Fatalf("Write: %v", err)
	}
	return p
}

func TestSgdiskVerify(t *testing.T) {
	d := testDisk(t)
	code, err := os.ReadFile("/usr/lib/syslinux/mbr/gptmbr.bin")
	if err != nil {
		t.Fatalf("syslinux's gptmbr.bin is required (apt-get install syslinux-common): %v", err)
	}
	d.BootCode = code
	img := writeDisk(t, d)
	out := run(t, "sgdisk", "-v", img)
	if !strings.Contains(out, "No problems found") || strings.Contains(out, "Caution") || strings.Contains(out, "Warning") {
		t.Errorf("sgdisk -v:\n%s", out)
	}
	p := run(t, "sgdisk", "-p", img)
	for _, want := range []string{
		"Disk identifier (GUID): " + d.GUID.String(),
		"First usable sector is 34, last usable sector is 614366",
		"   1            2048          133119   64.0 MiB    EF00  ESP",
		"   2          133120          337919   100.0 MiB   8300  SYS-A",
		"   3          337920          542719   100.0 MiB   8300  SYS-B",
		"   4          542720          612351   34.0 MiB    8300  STATE",
	} {
		if !strings.Contains(p, want) {
			t.Errorf("sgdisk -p lacks %q:\n%s", want, p)
		}
	}
	if info := run(t, "sgdisk", "-i", "1", img); !strings.Contains(info, "Attribute flags: 0000000000000004") {
		t.Errorf("ESP legacy BIOS bootable attribute missing:\n%s", info)
	}
	// The boot code is in place and the partition table follows it.
	raw, _ := os.ReadFile(img)
	if !bytes.Equal(raw[:440], code[:440]) || raw[450] != 0xEE || raw[510] != 0x55 || raw[511] != 0xAA {
		t.Errorf("protective MBR: boot code, 0xEE entry or signature wrong")
	}
}

func TestSfdiskJSON(t *testing.T) {
	d := testDisk(t)
	img := writeDisk(t, d)
	var got struct {
		PartitionTable struct {
			Label      string
			ID         string
			FirstLBA   uint64
			LastLBA    uint64
			Partitions []struct {
				Start, Size      uint64
				Type, UUID, Name string
				Attrs            string
			}
		}
	}
	if err := json.Unmarshal([]byte(run(t, "sfdisk", "--json", img)), &got); err != nil {
		t.Fatal(err)
	}
	pt := got.PartitionTable
	if pt.Label != "gpt" || pt.ID != d.GUID.String() || pt.FirstLBA != 34 || pt.LastLBA != LastUsableLBA(d.SizeBytes) {
		t.Errorf("sfdisk table header: %+v", pt)
	}
	if len(pt.Partitions) != len(d.Partitions) {
		t.Fatalf("sfdisk sees %d partitions, want %d", len(pt.Partitions), len(d.Partitions))
	}
	for i, p := range d.Partitions {
		s := pt.Partitions[i]
		want := d.partitionGUID(p)
		if s.Name != p.Name || s.Type != p.Type.String() || s.UUID != want.String() ||
			s.Start != p.FirstLBA || s.Size != p.LastLBA-p.FirstLBA+1 {
			t.Errorf("partition %d: sfdisk %+v, want %+v (GUID %s)", i+1, s, p, want)
		}
	}
	if pt.Partitions[0].Attrs != "LegacyBIOSBootable" {
		t.Errorf("ESP attrs %q, want LegacyBIOSBootable", pt.Partitions[0].Attrs)
	}
	if pt.Partitions[2].UUID != "01234567-89AB-CDEF-0123-456789ABCDEF" {
		t.Errorf("explicit partition GUID not kept: %s", pt.Partitions[2].UUID)
	}
}

func TestReadRoundTrip(t *testing.T) {
	d := testDisk(t)
	d.BootCode = []byte{0xFA, 0xEB, 0xFE}
	d.MBRBootable = true
	img := writeDisk(t, d)
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := Read(f, d.SizeBytes)
	if err != nil {
		t.Fatal(err)
	}
	want := d
	want.BootCode = make([]byte, 440)
	copy(want.BootCode, d.BootCode)
	want.Partitions = append([]Partition(nil), d.Partitions...)
	for i := range want.Partitions {
		want.Partitions[i].GUID = d.partitionGUID(d.Partitions[i])
	}
	if !reflect.DeepEqual(*got, want) {
		t.Errorf("Read(Write(d)):\n got %+v\nwant %+v", *got, want)
	}
	if p := got.Find("STATE"); p == nil || p.Size() != 34<<20 {
		t.Errorf("Find(STATE) = %+v", p)
	}

	// A damaged primary header falls back to the backup table.
	raw, _ := os.ReadFile(img)
	raw[SectorSize+30] ^= 0xFF
	got2, err := Read(bytes.NewReader(raw), d.SizeBytes)
	if err != nil {
		t.Fatalf("Read with damaged primary: %v", err)
	}
	if !reflect.DeepEqual(got2.Partitions, want.Partitions) {
		t.Errorf("backup table differs: %+v", got2.Partitions)
	}
	// Both damaged: an error that says what is wrong with each.
	raw[d.SizeBytes-SectorSize+30] ^= 0xFF
	if _, err := Read(bytes.NewReader(raw), d.SizeBytes); err == nil || !strings.Contains(err.Error(), "CRC32") {
		t.Errorf("Read with both tables damaged: err = %v", err)
	}
}

func TestDeterministic(t *testing.T) {
	a, _ := os.ReadFile(writeDisk(t, testDisk(t)))
	b, _ := os.ReadFile(writeDisk(t, testDisk(t)))
	if !bytes.Equal(a, b) {
		t.Fatal("two writes of the same disk differ")
	}
}

func TestGUID(t *testing.T) {
	// The ESP type GUID's on-disk bytes, as the UEFI specification lists them.
	onDisk := []byte{0x28, 0x73, 0x2A, 0xC1, 0x1F, 0xF8, 0xD2, 0x11, 0xBA, 0x4B, 0x00, 0xA0, 0xC9, 0x3E, 0xC9, 0x3B}
	if !bytes.Equal(TypeESP[:], onDisk) {
		t.Errorf("TypeESP bytes % X", TypeESP[:])
	}
	if s := TypeESP.String(); s != "C12A7328-F81F-11D2-BA4B-00A0C93EC93B" {
		t.Errorf("String() = %s", s)
	}
	if g, err := ParseGUID("{c12a7328-f81f-11d2-ba4b-00a0c93ec93b}"); err != nil || g != TypeESP {
		t.Errorf("ParseGUID lower case in braces: %v %v", g, err)
	}
	for _, bad := range []string{"", "C12A7328F81F11D2BA4B00A0C93EC93B", "C12A7328-F81F-11D2-BA4B-00A0C93EC93G"} {
		if _, err := ParseGUID(bad); err == nil {
			t.Errorf("ParseGUID(%q) accepted", bad)
		}
	}
	// RFC 4122 appendix-style check of the version 5 construction: the DNS
	// namespace and "python.org" give 886313E1-3B8A-5372-9B90-0C9AEE199E5D.
	dns := MustParseGUID("6BA7B810-9DAD-11D1-80B4-00C04FD430C8")
	if g := nameGUID(dns, "python.org"); g.String() != "886313E1-3B8A-5372-9B90-0C9AEE199E5D" {
		t.Errorf("v5(DNS, python.org) = %s", g)
	}
	a, b := NameGUID("disk", "x"), NameGUID("disk", "x")
	if a != b || a == NameGUID("disk", "y") || NameGUID("ab", "c") == NameGUID("a", "bc") {
		t.Error("NameGUID is not a deterministic function of its parts")
	}
	if s := a.String(); s[14] != '5' || !strings.ContainsAny(s[19:20], "89AB") {
		t.Errorf("NameGUID %s is not version 5, RFC 4122 variant", s)
	}
}

func TestErrors(t *testing.T) {
	cases := []struct {
		name string
		d    func() Disk
		want string
	}{
		{"zero disk GUID", func() Disk { d := testDisk(t); d.GUID = GUID{}; return d }, "disk GUID"},
		{"overlap", func() Disk { d := testDisk(t); d.Partitions[1].FirstLBA = 4096; return d }, `"ESP"`},
		{"beyond end", func() Disk { d := testDisk(t); d.Partitions[3].LastLBA = 614367; return d }, `"STATE"`},
		{"long name", func() Disk {
			d := testDisk(t)
			d.Partitions[0].Name = strings.Repeat("x", 37)
			return d
		}, "36"},
		{"boot code", func() Disk { d := testDisk(t); d.BootCode = make([]byte, 446); return d }, "440"},
		{"zero type", func() Disk { d := testDisk(t); d.Partitions[2].Type = GUID{}; return d }, `"SYS-B"`},
		{"duplicate GUID", func() Disk {
			d := testDisk(t)
			d.Partitions[0].GUID = d.Partitions[2].GUID
			return d
		}, "same GUID"},
	}
	for _, c := range cases {
		err := Write(discard{}, c.d())
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want it to mention %s", c.name, err, c.want)
		}
	}
	if _, err := Layout(100<<20, []Want{{Name: "big", Type: TypeLinuxFS, Size: 200 << 20}}); err == nil || !strings.Contains(err.Error(), `"big"`) {
		t.Errorf("Layout too big: %v", err)
	}
	if _, err := Layout(100<<20, []Want{{Name: "rest", Type: TypeLinuxFS}, {Name: "b", Type: TypeLinuxFS, Size: 1}}); err == nil {
		t.Error("Layout accepted Size 0 before the last partition")
	}
}

type discard struct{}

func (discard) WriteAt(p []byte, off int64) (int, error) { return len(p), nil }

func TestSectionWriter(t *testing.T) {
	d := testDisk(t)
	buf := &memDisk{b: make([]byte, d.SizeBytes)}
	esp := d.Partitions[0]
	sw := esp.SectionWriter(buf)
	if _, err := sw.WriteAt([]byte("FAT"), 3); err != nil {
		t.Fatal(err)
	}
	if string(buf.b[esp.Offset()+3:esp.Offset()+6]) != "FAT" {
		t.Error("SectionWriter wrote to the wrong place")
	}
	if _, err := sw.WriteAt([]byte("xy"), esp.Size()-1); err == nil || !strings.Contains(err.Error(), `"ESP"`) {
		t.Errorf("write past the partition end: err = %v", err)
	}
}

type memDisk struct{ b []byte }

func (m *memDisk) WriteAt(p []byte, off int64) (int, error) { return copy(m.b[off:], p), nil }
