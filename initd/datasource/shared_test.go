package datasource

import (
	"os"
	"path/filepath"
	"testing"
)

type countingVolumes struct {
	DirVolumes
	lists, mounts int
}

func (c *countingVolumes) List() ([]Volume, error) { c.lists++; return c.DirVolumes.List() }
func (c *countingVolumes) Mount(v Volume) (string, func(), error) {
	c.mounts++
	return c.DirVolumes.Mount(v)
}

func TestSharedListsOnceAndReusesMounts(t *testing.T) {
	dir := t.TempDir()
	info := filepath.Join(dir, "mountinfo")
	os.WriteFile(info, []byte(
		"22 27 0:21 / /proc rw,relatime - proc proc rw\n"+
			"40 27 11:0 /kiln /run/kiln/sub ro - iso9660 /dev/sr0 ro\n"+ // a bind of a subdirectory: not the volume
			"41 27 11:0 / /run/kiln/boot\\040medium ro,relatime shared:9 - iso9660 /dev/sr0 ro\n"), 0o644)
	inner := &countingVolumes{DirVolumes: DirVolumes{
		{Device: "/dev/sr0", FSType: "iso9660", Label: "KILN"}: "/unused",
		{Device: "/dev/vdb", FSType: "vfat", Label: "CIDATA"}:  "/mnt/vdb",
	}}
	s := &shared{inner: inner, mountinfo: info}
	for i := 0; i < 3; i++ {
		if l, err := s.List(); err != nil || len(l) != 2 {
			t.Fatalf("List = %v, %v", l, err)
		}
	}
	if inner.lists != 1 {
		t.Errorf("inner List called %d times, want 1", inner.lists)
	}
	d, release, err := s.Mount(Volume{Device: "/dev/sr0", FSType: "iso9660", Label: "KILN"})
	if err != nil || d != "/run/kiln/boot medium" {
		t.Errorf("Mount(sr0) = %q, %v; want the existing mount", d, err)
	}
	release()
	if d, _, err := s.Mount(Volume{Device: "/dev/vdb", FSType: "vfat", Label: "CIDATA"}); err != nil || d != "/mnt/vdb" {
		t.Errorf("Mount(vdb) = %q, %v", d, err)
	}
	if inner.mounts != 1 {
		t.Errorf("inner Mount called %d times, want 1 (vdb only)", inner.mounts)
	}
}
