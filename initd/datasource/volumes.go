package datasource

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/kilnproject/kiln/initd/blockdev"
	"github.com/kilnproject/kiln/initd/mounts"
	"golang.org/x/sys/unix"
)

// Volume is a block device holding a filesystem we can read a seed from.
type Volume struct {
	Device string // /dev/sr0
	FSType string // "iso9660" or "vfat"
	Label  string
}

// Volumes lists candidate filesystems and mounts them read-only.
type Volumes interface {
	List() ([]Volume, error)
	// Mount mounts v read-only and returns the directory and a release func.
	Mount(v Volume) (dir string, release func(), err error)
}

// SysVolumes reads labels from the kernel's block devices.
type SysVolumes struct {
	SysClassBlock string // default /sys/class/block
	DevDir        string // default /dev
	MountDir      string // where to mount, default /run/kiln/seed
}

func (s SysVolumes) List() ([]Volume, error) {
	sys, dev := s.SysClassBlock, s.DevDir
	if sys == "" {
		sys = "/sys/class/block"
	}
	if dev == "" {
		dev = "/dev"
	}
	devs, err := blockdev.List(sys)
	if err != nil {
		return nil, err
	}
	var out []Volume
	for _, d := range devs {
		if d.Sectors == 0 || strings.HasPrefix(d.Name, "loop") || strings.HasPrefix(d.Name, "ram") {
			continue
		}
		p := filepath.Join(dev, d.Name)
		f, err := os.Open(p)
		if err != nil {
			continue // e.g. an empty CD-ROM drive
		}
		fstype, label, err := ReadLabel(f)
		f.Close()
		if err == nil {
			out = append(out, Volume{Device: p, FSType: fstype, Label: label})
		}
	}
	return out, nil
}

func (s SysVolumes) Mount(v Volume) (string, func(), error) {
	base := s.MountDir
	if base == "" {
		base = "/run/kiln/seed"
	}
	dir := filepath.Join(base, filepath.Base(v.Device))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", nil, err
	}
	flags := uintptr(unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC)
	if err := mounts.Mount(v.Device, dir, v.FSType, flags, ""); err != nil {
		return "", nil, err
	}
	return dir, func() { unix.Unmount(dir, unix.MNT_DETACH); os.Remove(dir) }, nil
}

var errNoFS = errors.New("no iso9660 or FAT filesystem")

// ReadLabel recognises ISO 9660 (volume ID of the primary volume descriptor
// at byte 32768) and FAT12/16/32 (the volume-label entry of the root
// directory, else the boot sector label, as blkid does).
func ReadLabel(r io.ReaderAt) (fstype, label string, err error) {
	pvd := make([]byte, 2048)
	if _, err := r.ReadAt(pvd, 16*2048); err == nil && pvd[0] == 1 && string(pvd[1:6]) == "CD001" {
		return "iso9660", strings.TrimRight(string(pvd[40:72]), " \x00"), nil
	}
	bs := make([]byte, 512)
	if _, err := r.ReadAt(bs, 0); err != nil {
		return "", "", errNoFS
	}
	if bs[510] != 0x55 || bs[511] != 0xaa || (bs[0] != 0xeb && bs[0] != 0xe9) {
		return "", "", errNoFS
	}
	le := binary.LittleEndian
	bps := int64(le.Uint16(bs[11:]))
	spc := int64(bs[13])
	reserved := int64(le.Uint16(bs[14:]))
	nfats := int64(bs[16])
	rootEnts := int64(le.Uint16(bs[17:]))
	fatSz := int64(le.Uint16(bs[22:]))
	if bps < 512 || bps > 4096 || bps&(bps-1) != 0 || spc == 0 || nfats == 0 || reserved == 0 {
		return "", "", errNoFS
	}
	var bootLabel []byte
	var rootOff, rootLen int64
	if fatSz == 0 { // FAT32
		if string(bs[82:85]) != "FAT" {
			return "", "", errNoFS
		}
		fatSz = int64(le.Uint32(bs[36:]))
		rootClus := int64(le.Uint32(bs[44:]))
		bootLabel = bs[71:82]
		rootOff = (reserved + nfats*fatSz + (rootClus-2)*spc) * bps
		rootLen = spc * bps
	} else {
		if string(bs[54:57]) != "FAT" {
			return "", "", errNoFS
		}
		bootLabel = bs[43:54]
		rootOff = (reserved + nfats*fatSz) * bps
		rootLen = rootEnts * 32
	}
	if rootLen > 1<<20 {
		rootLen = 1 << 20
	}
	dir := make([]byte, rootLen)
	n, _ := r.ReadAt(dir, rootOff)
	dir = dir[:n-n%32]
	for i := 0; i+32 <= len(dir); i += 32 {
		e := dir[i : i+32]
		if e[0] == 0 {
			break
		}
		if e[0] == 0xe5 || e[11]&0x0f == 0x0f || e[11]&0x08 == 0 {
			continue
		}
		return "vfat", strings.TrimRight(string(e[:11]), " "), nil
	}
	l := strings.TrimRight(string(bytes.TrimRight(bootLabel, "\x00")), " ")
	if l == "NO NAME" {
		l = ""
	}
	return "vfat", l, nil
}

// readSeedFile reads name under dir; a missing file gives nil, nil.
func readSeedFile(dir, name string, limit int64) ([]byte, error) {
	f, err := os.Open(filepath.Join(dir, name))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s: larger than %d bytes", name, limit)
	}
	return b, nil
}

// DirVolumes serves directories as volumes; tests and already-mounted media use it.
type DirVolumes map[Volume]string

func (d DirVolumes) List() ([]Volume, error) {
	var out []Volume
	for v := range d {
		out = append(out, v)
	}
	sortVolumes(out)
	return out, nil
}

func (d DirVolumes) Mount(v Volume) (string, func(), error) {
	dir, ok := d[v]
	if !ok {
		return "", nil, fmt.Errorf("%s: no such volume", v.Device)
	}
	return dir, func() {}, nil
}

func sortVolumes(v []Volume) {
	for i := 1; i < len(v); i++ {
		for j := i; j > 0 && v[j].Device < v[j-1].Device; j-- {
			v[j], v[j-1] = v[j-1], v[j]
		}
	}
}
