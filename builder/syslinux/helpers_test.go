package syslinux

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/kilnproject/kiln/builder/fat"
	"github.com/kilnproject/kiln/builder/fstree"
	"github.com/kilnproject/kiln/builder/gpt"
)

// Host files from Debian's syslinux and syslinux-common packages; the
// builder takes the same files out of the .debs.
const (
	hostInstaller = "/usr/bin/syslinux"
	hostC32       = "/usr/lib/syslinux/modules/bios/ldlinux.c32"
	hostGPTMBR    = "/usr/lib/syslinux/mbr/gptmbr.bin"
)

func requireTool(t *testing.T, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Fatalf("%s is required for this test (apt-get install the package that ships it): %v", name, err)
	}
}

func readHost(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%s is required (apt-get install syslinux syslinux-common): %v", path, err)
	}
	return b
}

func hostLoader(t *testing.T) *Loader {
	t.Helper()
	l, err := Extract(readHost(t, hostInstaller), readHost(t, hostC32))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// testDisk is a GPT disk image with one ESP (legacy BIOS bootable) holding
// a FAT volume with the loader's files; Install has not run yet.
type testDisk struct {
	path string
	f    *os.File
	esp  gpt.Partition
	bs   []byte // the volume's boot sector as builder/fat wrote it
}

func makeDisk(t *testing.T, l *Loader, fatType int, espSize int64, cfg string, extra ...func(*fstree.Tree)) *testDisk {
	t.Helper()
	diskSize := espSize + 2<<20
	parts, err := gpt.Layout(diskSize, []gpt.Want{{
		Name: "ESP", Type: gpt.MustParseGUID("C12A7328-F81F-11D2-BA4B-00A0C93EC93B"), Size: espSize,
		Attributes: gpt.AttrLegacyBIOSBootable,
	}})
	if err != nil {
		t.Fatal(err)
	}
	mbr, err := GPTMBR(readHost(t, hostGPTMBR))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "disk.raw")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if err := f.Truncate(diskSize); err != nil {
		t.Fatal(err)
	}
	if err := gpt.Write(f, gpt.Disk{SizeBytes: diskSize, GUID: gpt.NameGUID("syslinux-test", "disk"), Partitions: parts, BootCode: mbr, MBRBootable: true}); err != nil {
		t.Fatal(err)
	}
	tr := fstree.New()
	if err := l.AddFiles(tr, []byte(cfg)); err != nil {
		t.Fatal(err)
	}
	for _, f := range extra {
		f(tr)
	}
	esp := parts[0]
	err = fat.Write(esp.SectionWriter(f), tr, fat.Options{
		Size: esp.Size(), Label: "ESP", VolumeID: 0x12345678, ModTime: 1700000000, FATType: fatType,
		Attributes: l.FATAttributes(), HiddenSectors: uint32(esp.FirstLBA),
	})
	if err != nil {
		t.Fatal(err)
	}
	bs := make([]byte, 512)
	if _, err := f.ReadAt(bs, esp.Offset()); err != nil {
		t.Fatal(err)
	}
	return &testDisk{path: path, f: f, esp: esp, bs: bs}
}
