// Package blockdev lists the kernel's block devices from sysfs and wraps the
// few block ioctls initd needs (size, partition resize).
package blockdev

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"unsafe"

	"github.com/kilnproject/kiln/initd/sysfs"
	"golang.org/x/sys/unix"
)

// Device is one entry of /sys/class/block.
type Device struct {
	Name      string // vda, vda1, sr0, nvme0n1p2
	Parent    string // the whole disk for a partition, "" for a disk
	Partition int    // partition number, 0 for a whole disk
	Start     uint64 // first sector (512-byte units) of a partition
	Sectors   uint64 // size in 512-byte sectors
	Removable bool
}

// Path is the device node under /dev (devtmpfs names them after sysfs).
func (d Device) Path() string { return "/dev/" + d.Name }

// List reads every block device under sysClassBlock (normally
// /sys/class/block), sorted by name. It runs on every look for the boot
// medium, so it reads each attribute with one raw open/read/close and the
// parent disk from the class link itself.
func List(sysClassBlock string) ([]Device, error) {
	names, err := sysfs.ReadDirNames(sysClassBlock)
	if err != nil {
		return nil, fmt.Errorf("list block devices: %w", err)
	}
	out := make([]Device, 0, len(names))
	for _, name := range names {
		dir := filepath.Join(sysClassBlock, name)
		d := Device{Name: name}
		d.Sectors, _ = readUint(filepath.Join(dir, "size"))
		if p, err := readUint(filepath.Join(dir, "partition")); err == nil {
			d.Partition = int(p)
			d.Start, _ = readUint(filepath.Join(dir, "start"))
			// /sys/class/block/vda1 -> ../../devices/.../block/vda/vda1
			if target, err := sysfs.Readlink(dir); err == nil {
				d.Parent = filepath.Base(filepath.Dir(target))
			}
		} else if r, err := readUint(filepath.Join(dir, "removable")); err == nil {
			d.Removable = r == 1 // a disk attribute: partitions have none
		}
		out = append(out, d)
	}
	return out, nil
}

func readUint(p string) (uint64, error) {
	s, err := sysfs.ReadAttr(p)
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(s, 10, 64)
}

// PartitionOf returns the partition of disk that starts at sector start
// (the GPT entry's first LBA) and, as a check, carries number index.
func PartitionOf(devs []Device, disk string, index int, start uint64) (Device, error) {
	for _, d := range devs {
		if d.Parent == disk && d.Start == start {
			if d.Partition != index {
				return d, fmt.Errorf("%s starts at sector %d but is partition %d, GPT says %d", d.Name, start, d.Partition, index)
			}
			return d, nil
		}
	}
	return Device{}, fmt.Errorf("no partition of %s starts at sector %d (GPT entry %d); kernel has not seen it yet", disk, start, index)
}

// Size returns the size in bytes of a block device or regular file.
func Size(f *os.File) (int64, error) {
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	if st.Mode()&os.ModeDevice == 0 {
		return st.Size(), nil
	}
	n, err := unix.IoctlGetUint64(int(f.Fd()), unix.BLKGETSIZE64)
	if err != nil {
		return 0, fmt.Errorf("%s: BLKGETSIZE64: %w", f.Name(), err)
	}
	return int64(n), nil
}

// ResizePartition tells the kernel that partition number pno of the disk
// open as f now spans [start, start+length) bytes. Unlike BLKRRPART it works
// while other partitions of the disk are mounted.
func ResizePartition(f *os.File, pno int, start, length int64) error {
	p := unix.BlkpgPartition{Start: start, Length: length, Pno: int32(pno)}
	arg := unix.BlkpgIoctlArg{
		Op:      unix.BLKPG_RESIZE_PARTITION,
		Datalen: int32(unsafe.Sizeof(p)),
		Data:    (*byte)(unsafe.Pointer(&p)),
	}
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), unix.BLKPG, uintptr(unsafe.Pointer(&arg)))
	if errno != 0 {
		return fmt.Errorf("%s: BLKPG resize partition %d: %w", f.Name(), pno, errno)
	}
	return nil
}

// RereadPartitions asks the kernel to re-read the whole table (BLKRRPART);
// it fails with EBUSY while a partition of the disk is in use.
func RereadPartitions(f *os.File) error {
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), unix.BLKRRPART, 0); errno != 0 {
		return fmt.Errorf("%s: BLKRRPART: %w", f.Name(), errno)
	}
	return nil
}
