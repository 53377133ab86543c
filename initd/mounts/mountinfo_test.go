package mounts

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestReadInfo(t *testing.T) {
	p := filepath.Join(t.TempDir(), "mountinfo")
	os.WriteFile(p, []byte(`22 1 0:21 / / rw - squashfs /dev/vda2 ro
40 27 11:0 /kiln /run/kiln/sub ro - iso9660 /dev/sr0 ro
41 27 11:0 / /run/kiln/boot\040medium ro,relatime shared:9 - iso9660 /dev/sr0 ro
`), 0o644)
	got, err := ReadInfo(p)
	want := []Info{
		{Root: "/", MountPoint: "/", FSType: "squashfs", Source: "/dev/vda2"},
		{Root: "/kiln", MountPoint: "/run/kiln/sub", FSType: "iso9660", Source: "/dev/sr0"},
		{Root: "/", MountPoint: "/run/kiln/boot medium", FSType: "iso9660", Source: "/dev/sr0"}, // optional fields skipped
	}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("ReadInfo = %+v, %v\nwant %+v", got, err, want)
	}
	if _, err := ReadInfo(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("a missing file read without error")
	}
}
