package blockdev

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// A fake /sys/class/block laid out as the kernel does it: symlinks into
// /sys/devices, partitions inside their disk's directory.
func TestList(t *testing.T) {
	root := t.TempDir()
	devs := filepath.Join(root, "devices/pci0000:00/0000:00:04.0/virtio1/block")
	write := func(p, v string) {
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte(v+"\n"), 0o644)
	}
	write(filepath.Join(devs, "vda/size"), "131072")
	write(filepath.Join(devs, "vda/removable"), "0")
	write(filepath.Join(devs, "vda/vda2/size"), "16384")
	write(filepath.Join(devs, "vda/vda2/partition"), "2")
	write(filepath.Join(devs, "vda/vda2/start"), "10240")
	write(filepath.Join(root, "devices/sr0/size"), "1000")
	write(filepath.Join(root, "devices/sr0/removable"), "1")
	class := filepath.Join(root, "class/block")
	os.MkdirAll(class, 0o755)
	os.Symlink(filepath.Join(devs, "vda"), filepath.Join(class, "vda"))
	os.Symlink(filepath.Join(devs, "vda/vda2"), filepath.Join(class, "vda2"))
	os.Symlink(filepath.Join(root, "devices/sr0"), filepath.Join(class, "sr0"))

	l, err := List(class)
	if err != nil {
		t.Fatal(err)
	}
	if len(l) != 3 || l[0].Name != "sr0" || !l[0].Removable || l[1].Name != "vda" || l[1].Sectors != 131072 {
		t.Fatalf("List = %+v", l)
	}
	p, err := PartitionOf(l, "vda", 2, 10240)
	if err != nil || p.Name != "vda2" || p.Path() != "/dev/vda2" || p.Sectors != 16384 {
		t.Fatalf("PartitionOf = %+v, %v", p, err)
	}
	if _, err := PartitionOf(l, "vda", 3, 99); err == nil {
		t.Error("found a partition at sector 99")
	}
	if _, err := PartitionOf(l, "vda", 3, 10240); err == nil {
		t.Error("partition number mismatch accepted")
	}
}

func TestSizeFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	os.WriteFile(p, make([]byte, 4096), 0o644)
	f, _ := os.Open(p)
	defer f.Close()
	if n, err := Size(f); err != nil || n != 4096 {
		t.Fatalf("Size = %d, %v", n, err)
	}
}

// On the machine running the tests, List agrees with reading the real
// /sys/class/block through the os package.
func TestListRealSysfs(t *testing.T) {
	l, err := List("/sys/class/block")
	if err != nil {
		t.Fatalf("this test reads the real sysfs: %v", err)
	}
	for _, d := range l {
		b, err := os.ReadFile(filepath.Join("/sys/class/block", d.Name, "size"))
		if err != nil {
			continue // gone meanwhile
		}
		if want, _ := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64); d.Sectors != want {
			t.Errorf("%s: %d sectors, sysfs says %d", d.Name, d.Sectors, want)
		}
		if _, err := os.Stat(filepath.Join("/sys/class/block", d.Name, "partition")); (err == nil) != (d.Partition > 0) {
			t.Errorf("%s: partition %d, partition attribute present: %v", d.Name, d.Partition, err == nil)
		}
		if d.Partition > 0 {
			real, _ := filepath.EvalSymlinks(filepath.Join("/sys/class/block", d.Name))
			if want := filepath.Base(filepath.Dir(real)); d.Parent != want {
				t.Errorf("%s: parent %q, want %q", d.Name, d.Parent, want)
			}
		}
	}
	t.Logf("%d block devices", len(l))
}
