package state

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kilnproject/kiln/initd/gpt"
)

func need(t *testing.T, tool, pkg string) {
	t.Helper()
	if _, err := exec.LookPath(tool); err != nil {
		t.Fatalf("%s is required for this test (Debian package %s): %v", tool, pkg, err)
	}
}

func TestExtSize(t *testing.T) {
	need(t, "mke2fs", "e2fsprogs")
	p := filepath.Join(t.TempDir(), "fs.img")
	os.WriteFile(p, nil, 0o644)
	os.Truncate(p, 16<<20)
	f, _ := os.Open(p)
	defer f.Close()
	if _, err := ExtSize(f); err != errNoExt {
		t.Fatalf("blank: %v", err)
	}
	// A filesystem smaller than its device, as after the partition grew.
	if out, err := exec.Command("mke2fs", "-q", "-F", "-t", "ext4", "-L", Label, p, "8M").CombinedOutput(); err != nil {
		t.Fatalf("mke2fs: %v\n%s", err, out)
	}
	n, err := ExtSize(f)
	if err != nil || n != 8<<20 {
		t.Fatalf("ExtSize = %d, %v; want %d", n, err, 8<<20)
	}
}

// GrowPartition on a disk image: the partition table grows, the kernel part
// is skipped for regular files; sgdisk -v judges the result.
func TestGrowPartitionImage(t *testing.T) {
	need(t, "sgdisk", "gdisk")
	p := filepath.Join(t.TempDir(), "disk.img")
	os.WriteFile(p, nil, 0o644)
	os.Truncate(p, 16<<20)
	if out, err := exec.Command("sgdisk", "-n", "1:2048:+4M", "-c", "1:SYS-A", "-n", "2:0:+1M", "-c", "2:STATE", p).CombinedOutput(); err != nil {
		t.Fatalf("sgdisk: %v\n%s", err, out)
	}
	os.Truncate(p, 48<<20)
	grown, err := GrowPartition(p, p+"2", 2)
	if err != nil || !grown {
		t.Fatalf("GrowPartition = %v, %v", grown, err)
	}
	out, _ := exec.Command("sgdisk", "-v", p).CombinedOutput()
	if !strings.Contains(string(out), "No problems found") {
		t.Fatalf("sgdisk -v:\n%s", out)
	}
	f, _ := os.Open(p)
	defer f.Close()
	tab, _ := gpt.Read(f)
	if st, _ := tab.Find("STATE"); st.LastLBA != 48<<20/512-34 {
		t.Errorf("STATE ends at %d", st.LastLBA)
	}
}
