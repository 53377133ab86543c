// Package medium finds the boot medium: an ISO9660 volume whose volume ID
// is kiln.label (CD-ROM, or a hybrid ISO written to a disk or USB stick), or
// an installed GPT disk with SYS-A/SYS-B/STATE partitions.
package medium

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/kilnproject/kiln/initd/blockdev"
	"github.com/kilnproject/kiln/initd/gpt"
)

// Kind says what the boot medium is.
type Kind string

const (
	ISO  Kind = "iso"
	Disk Kind = "disk"
)

// Medium is what Find found.
type Medium struct {
	Kind   Kind
	Device string // ISO: the device holding the ISO; Disk: the whole disk
	System string // Disk: the SYS-<slot> partition device
	State  string // Disk: the STATE partition device ("" if the disk has none)
	// StateIndex is STATE's partition number on Device.
	StateIndex int
}

func (m *Medium) String() string {
	if m.Kind == ISO {
		return fmt.Sprintf("iso %s", m.Device)
	}
	return fmt.Sprintf("disk %s (system %s, state %s)", m.Device, m.System, m.State)
}

const (
	sectorISO = 2048
	pvdOffset = 16 * sectorISO
)

// ErrNotISO means no ISO9660 primary volume descriptor was found.
var ErrNotISO = errors.New("no ISO9660 primary volume descriptor")

// ISOLabel reads the volume ID of the primary volume descriptor. Volume
// descriptors start at byte 32768 and end with a terminator (type 255).
func ISOLabel(r io.ReaderAt) (string, error) {
	buf := make([]byte, sectorISO)
	for i := 0; i < 32; i++ {
		if _, err := r.ReadAt(buf, pvdOffset+int64(i)*sectorISO); err != nil {
			if i == 0 {
				return "", ErrNotISO
			}
			return "", fmt.Errorf("read volume descriptor %d: %w", i, err)
		}
		if string(buf[1:6]) != "CD001" || buf[6] != 1 {
			return "", ErrNotISO
		}
		switch buf[0] {
		case 1:
			return strings.TrimRight(string(buf[40:72]), " \x00"), nil
		case 255:
			return "", ErrNotISO
		}
	}
	return "", ErrNotISO
}

// Candidate reports whether a block device name is one Find looks at.
func Candidate(name string) bool { return isCandidate(name) }

// isCandidate accepts the device names the medium can be on: CD-ROMs,
// SCSI/SATA/USB disks, virtio, Xen, NVMe and MMC, whole or partitioned
// (sr0, sda, sda1, vdb2, xvda, nvme0n1, nvme0n1p2, mmcblk0, mmcblk0p1).
// Written out by hand: compiling the equivalent regexp at start-up costs
// tens of milliseconds under emulation, in both boot stages.
func isCandidate(name string) bool {
	switch {
	case strings.HasPrefix(name, "sr"):
		return digits(name[2:]) > 0 && digits(name[2:]) == len(name)-2
	case strings.HasPrefix(name, "sd"):
		return letterDisk(name[2:])
	case strings.HasPrefix(name, "vd"):
		return letterDisk(name[2:])
	case strings.HasPrefix(name, "xvd"):
		return letterDisk(name[3:])
	case strings.HasPrefix(name, "nvme"):
		rest := name[4:]
		n := digits(rest)
		if n == 0 || n == len(rest) || rest[n] != 'n' {
			return false
		}
		return numberedPart(rest[n+1:])
	case strings.HasPrefix(name, "mmcblk"):
		return numberedPart(name[6:])
	}
	return false
}

// letterDisk matches "[a-z]+[0-9]*".
func letterDisk(s string) bool {
	i := 0
	for i < len(s) && s[i] >= 'a' && s[i] <= 'z' {
		i++
	}
	return i > 0 && digits(s[i:]) == len(s)-i
}

// numberedPart matches "[0-9]+(p[0-9]+)?".
func numberedPart(s string) bool {
	n := digits(s)
	if n == 0 {
		return false
	}
	if n == len(s) {
		return true
	}
	return s[n] == 'p' && digits(s[n+1:]) > 0 && digits(s[n+1:]) == len(s)-n-1
}

// digits is the length of s's leading run of ASCII digits.
func digits(s string) int {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return i
}

// Options tells Find what to look for.
type Options struct {
	SysClassBlock string // /sys/class/block
	DevDir        string // /dev
	Label         string // kiln.label; "" skips the ISO search
	Slot          string // "A" or "B"
	Log           func(format string, args ...any)
}

// ErrNotFound means no device matched (yet: devices may still appear).
var ErrNotFound = errors.New("boot medium not found")

// Find looks at every candidate block device once. An ISO with the label
// wins over a GPT disk, so a live ISO boots live even with an installed disk
// attached.
func Find(o Options) (*Medium, error) {
	devs, err := blockdev.List(o.SysClassBlock)
	if err != nil {
		return nil, err
	}
	logf := o.Log
	if logf == nil {
		logf = func(string, ...any) {}
	}
	var disk *Medium
	for _, d := range devs {
		if !isCandidate(d.Name) || d.Sectors == 0 {
			continue
		}
		f, err := os.Open(o.DevDir + "/" + d.Name)
		if err != nil {
			logf("medium: %s: %v", d.Name, err)
			continue
		}
		if o.Label != "" {
			label, err := ISOLabel(f)
			if err == nil {
				logf("medium: %s has ISO9660 volume %q", d.Name, label)
				if label == o.Label {
					f.Close()
					return &Medium{Kind: ISO, Device: o.DevDir + "/" + d.Name}, nil
				}
			}
		}
		if disk == nil && d.Partition == 0 {
			m, err := fromGPT(f, d, devs, o)
			if err != nil && !errors.Is(err, gpt.ErrNoGPT) {
				logf("medium: %s: %v", d.Name, err)
			}
			disk = m
		}
		f.Close()
	}
	if disk != nil {
		return disk, nil
	}
	return nil, ErrNotFound
}

func fromGPT(f *os.File, d blockdev.Device, devs []blockdev.Device, o Options) (*Medium, error) {
	t, err := gpt.Read(f)
	if err != nil {
		return nil, err
	}
	slotName := "SYS-" + o.Slot
	sys, ok := t.Find(slotName)
	if !ok {
		return nil, fmt.Errorf("GPT has no %s partition", slotName)
	}
	pd, err := blockdev.PartitionOf(devs, d.Name, sys.Index, sys.FirstLBA)
	if err != nil {
		return nil, err
	}
	m := &Medium{Kind: Disk, Device: o.DevDir + "/" + d.Name, System: o.DevDir + "/" + pd.Name}
	if st, ok := t.Find("STATE"); ok {
		sd, err := blockdev.PartitionOf(devs, d.Name, st.Index, st.FirstLBA)
		if err != nil {
			return nil, err
		}
		m.State, m.StateIndex = o.DevDir+"/"+sd.Name, st.Index
	}
	return m, nil
}
