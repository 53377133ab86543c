// Package state prepares the writable part of a node: the STATE partition
// (grown to the end of the disk and formatted ext4 on first boot, resized
// when the disk grew) or a tmpfs on a live ISO, and the /etc and /var
// overlays whose upper layers live on it.
//
// Layout: STATE is mounted at Dir (/run/kiln/state: /run is a tmpfs so the
// mount point always exists in the read-only image); /etc and /var are
// overlays with lower = the image's directory, upper/work under Dir.
package state

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/kilnproject/kiln/initd/blockdev"
	"github.com/kilnproject/kiln/initd/gpt"
	"github.com/kilnproject/kiln/initd/mounts"
	"golang.org/x/sys/unix"
)

// Dir is where the state filesystem is mounted.
const Dir = "/run/kiln/state"

// Label is the ext4 label of the state filesystem.
const Label = "STATE"

// Options describe the state device.
type Options struct {
	Disk      string // whole disk holding STATE; "" on a live ISO
	Partition string // STATE partition device
	Index     int    // STATE's partition number
	Mke2fs    string // default /sbin/mke2fs
	Resize2fs string // default /sbin/resize2fs
	Log       func(format string, args ...any)
}

// Result says what Prepare did, for the console.
type Result struct {
	Kind    string // "disk" or "tmpfs"
	Grown   bool   // partition grown to the end of the disk
	Created bool   // filesystem created now
	Resized bool   // existing filesystem grown
}

// Prepare mounts the state at Dir and the /etc and /var overlays on top.
func Prepare(o Options) (*Result, error) {
	if o.Mke2fs == "" {
		o.Mke2fs = "/sbin/mke2fs"
	}
	if o.Resize2fs == "" {
		o.Resize2fs = "/sbin/resize2fs"
	}
	logf := o.Log
	if logf == nil {
		logf = func(string, ...any) {}
	}
	r := &Result{Kind: "tmpfs"}
	if o.Partition == "" {
		logf("state: none (live, tmpfs)")
		if err := mounts.Mount("tmpfs", Dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0755"); err != nil {
			return r, err
		}
	} else {
		r.Kind = "disk"
		grown, err := GrowPartition(o.Disk, o.Partition, o.Index)
		if err != nil {
			return r, err
		}
		r.Grown = grown
		size, fsSize, err := sizes(o.Partition)
		if err != nil {
			return r, err
		}
		if fsSize == 0 {
			logf("state: formatting %s ext4 (%d MiB)", o.Partition, size>>20)
			if out, err := exec.Command(o.Mke2fs, "-q", "-F", "-t", "ext4", "-L", Label, o.Partition).CombinedOutput(); err != nil {
				return r, fmt.Errorf("state: %s %s: %v: %s", o.Mke2fs, o.Partition, err, out)
			}
			r.Created = true
		}
		if err := mounts.Mount(o.Partition, Dir, "ext4", unix.MS_NOATIME, ""); err != nil {
			return r, err
		}
		// Grow online: resize2fs needs no fsck for a mounted filesystem.
		if fsSize != 0 && size-fsSize >= 1<<20 {
			logf("state: growing ext4 on %s from %d to %d MiB", o.Partition, fsSize>>20, size>>20)
			if out, err := exec.Command(o.Resize2fs, o.Partition).CombinedOutput(); err != nil {
				logf("state: %s %s failed, keeping the old size: %v: %s", o.Resize2fs, o.Partition, err, out)
			} else {
				r.Resized = true
			}
		}
		logf("state: %s mounted at %s (grown %v, created %v, resized %v)", o.Partition, Dir, r.Grown, r.Created, r.Resized)
	}
	for _, d := range []string{"/etc", "/var"} {
		if err := Overlay(d, filepath.Join(Dir, d)); err != nil {
			return r, err
		}
	}
	return r, nil
}

// Overlay mounts an overlay on dir with the image's dir as lower layer and
// stateDir/upper, stateDir/work as the writable part.
func Overlay(dir, stateDir string) error {
	upper, work := filepath.Join(stateDir, "upper"), filepath.Join(stateDir, "work")
	for _, d := range []string{upper, work} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("overlay %s: %w", dir, err)
		}
	}
	return mounts.Mount("overlay", dir, "overlay", 0,
		fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", dir, upper, work))
}

// GrowPartition grows STATE (partition index of disk) to the end of the
// disk and tells the kernel. It returns whether the table changed.
func GrowPartition(disk, part string, index int) (bool, error) {
	f, err := os.OpenFile(disk, os.O_RDWR|os.O_SYNC, 0)
	if err != nil {
		return false, fmt.Errorf("state: %w", err)
	}
	defer f.Close()
	size, err := blockdev.Size(f)
	if err != nil {
		return false, fmt.Errorf("state: %w", err)
	}
	changed, err := gpt.Grow(f, size, Label)
	if err != nil || !changed {
		if err != nil {
			err = fmt.Errorf("state: grow %s on %s: %w", Label, disk, err)
		}
		return false, err
	}
	t, err := gpt.Read(f)
	if err != nil {
		return true, fmt.Errorf("state: re-read GPT of %s: %w", disk, err)
	}
	p, _ := t.Find(Label)
	if st, _ := f.Stat(); st.Mode()&os.ModeDevice == 0 {
		return true, nil // a disk image in a test
	}
	if err := blockdev.ResizePartition(f, index, int64(p.FirstLBA)*gpt.SectorSize, int64(p.Sectors())*gpt.SectorSize); err != nil {
		if err2 := blockdev.RereadPartitions(f); err2 != nil {
			return true, fmt.Errorf("state: kernel still sees the old size of %s: %v; %v", part, err, err2)
		}
	}
	return true, nil
}

// sizes returns the partition size and the ext2/3/4 filesystem size in
// bytes (0 when there is no ext filesystem).
func sizes(dev string) (devSize, fsSize int64, err error) {
	f, err := os.Open(dev)
	if err != nil {
		return 0, 0, fmt.Errorf("state: %w", err)
	}
	defer f.Close()
	if devSize, err = blockdev.Size(f); err != nil {
		return 0, 0, fmt.Errorf("state: %w", err)
	}
	fsSize, err = ExtSize(f)
	if errors.Is(err, errNoExt) {
		return devSize, 0, nil
	}
	return devSize, fsSize, err
}

var errNoExt = errors.New("no ext2/3/4 superblock")

// ExtSize reads the ext2/3/4 superblock (at byte 1024) and returns the
// filesystem size in bytes.
func ExtSize(r io.ReaderAt) (int64, error) {
	sb := make([]byte, 1024)
	if _, err := r.ReadAt(sb, 1024); err != nil {
		return 0, errNoExt
	}
	le := binary.LittleEndian
	if le.Uint16(sb[0x38:]) != 0xEF53 {
		return 0, errNoExt
	}
	blocks := uint64(le.Uint32(sb[0x04:]))
	if le.Uint32(sb[0x60:])&0x80 != 0 { // INCOMPAT_64BIT
		blocks |= uint64(le.Uint32(sb[0x150:])) << 32
	}
	logBlock := le.Uint32(sb[0x18:])
	if logBlock > 6 {
		return 0, fmt.Errorf("ext superblock: block size 1024<<%d out of range", logBlock)
	}
	return int64(blocks) << (10 + logBlock), nil
}
