// Package gpt writes and reads GUID partition tables (UEFI specification,
// chapter 5) with a protective MBR, for 512-byte-sector disk images.
//
// Write only touches the table areas (LBA 0-33 and the last 33 sectors); the
// partitions' contents are written by others. Everything is deterministic:
// GUIDs come from the caller (NameGUID derives them from names).
//
// The reader (ReadTable, Table) is also initd's: it imports nothing of the
// builder, so the table on a booted disk is parsed by the same code that wrote it.
package gpt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"unicode/utf16"
)

// SectorSize is the logical block size this package writes.
const SectorSize = 512

const (
	numEntries   = 128
	entrySize    = 128
	entryBytes   = numEntries * entrySize                // 16 KiB
	entrySectors = entryBytes / SectorSize               // 32
	headerSize   = 92                                    //
	firstUsable  = 2 + entrySectors                      // LBA 34
	maxNameUnits = 36                                    // UTF-16 code units in an entry
	revision     = 0x00010000                            // GPT 1.0
	bootCodeMax  = 440                                   // MBR bytes before the disk signature
	signature    = "EFI PART"                            //
	mbrTypeGPT   = 0xEE                                  // protective partition type
	minDiskBytes = (1 + 2*(1+entrySectors)) * SectorSize // MBR + both tables, no room for data
)

// Partition attribute bits.
const (
	AttrRequired           = 1 << 0 // platform required: do not delete
	AttrNoBlockIO          = 1 << 1 // EFI firmware must not read it
	AttrLegacyBIOSBootable = 1 << 2 // syslinux gptmbr.bin boots the partition with this bit
)

// Partition is one entry of the table. LBAs are inclusive.
type Partition struct {
	Name       string // up to 36 UTF-16 code units
	Type       GUID
	GUID       GUID // unique partition GUID; zero = derived from the disk GUID and Name
	FirstLBA   uint64
	LastLBA    uint64
	Attributes uint64
}

// Size is the partition's length in bytes.
func (p Partition) Size() int64 { return int64(p.LastLBA-p.FirstLBA+1) * SectorSize }

// Offset is the partition's first byte on the disk.
func (p Partition) Offset() int64 { return int64(p.FirstLBA) * SectorSize }

// Disk is a partitioned disk.
type Disk struct {
	SizeBytes  int64 // multiple of 512
	GUID       GUID  // disk GUID, must not be zero
	Partitions []Partition
	BootCode   []byte // up to 440 bytes of MBR boot code (e.g. syslinux gptmbr.bin)

	// MBRBootable marks the protective MBR partition active (0x80). Some
	// BIOSes only boot a disk that has an active partition; the UEFI
	// specification wants 0, so leave it off for UEFI-only disks.
	MBRBootable bool
}

// Find returns the partition called name, or nil.
func (d *Disk) Find(name string) *Partition {
	for i := range d.Partitions {
		if d.Partitions[i].Name == name {
			return &d.Partitions[i]
		}
	}
	return nil
}

func (d *Disk) lastLBA() uint64 { return uint64(d.SizeBytes/SectorSize) - 1 }

// LastUsableLBA is the last sector a partition may use on a disk of size bytes.
func LastUsableLBA(size int64) uint64 { return uint64(size/SectorSize) - 2 - entrySectors }

// FirstUsableLBA is the first sector a partition may use.
const FirstUsableLBA = firstUsable

// Write writes the protective MBR, the primary table (LBA 1-33) and the backup
// table (last 33 sectors) of d to w.
func Write(w io.WriterAt, d Disk) error {
	entries, err := d.entries()
	if err != nil {
		return err
	}
	last := d.lastLBA()
	if _, err := w.WriteAt(d.protectiveMBR(), 0); err != nil {
		return fmt.Errorf("gpt: writing protective MBR: %w", err)
	}
	entryCRC := crc32.ChecksumIEEE(entries)
	primary := d.header(1, last, 2, entryCRC)
	backup := d.header(last, 1, last-entrySectors, entryCRC)
	for _, part := range []struct {
		what string
		b    []byte
		lba  uint64
	}{
		{"primary header", primary, 1},
		{"primary entries", entries, 2},
		{"backup entries", entries, last - entrySectors},
		{"backup header", backup, last},
	} {
		if _, err := w.WriteAt(part.b, int64(part.lba)*SectorSize); err != nil {
			return fmt.Errorf("gpt: writing %s: %w", part.what, err)
		}
	}
	return nil
}

// check validates the disk and its partitions.
func (d *Disk) check() error {
	if d.SizeBytes%SectorSize != 0 || d.SizeBytes < minDiskBytes {
		return fmt.Errorf("gpt: disk size %d is not a multiple of %d of at least %d bytes", d.SizeBytes, SectorSize, minDiskBytes)
	}
	if d.GUID.IsZero() {
		return errors.New("gpt: disk GUID is zero; derive one with NameGUID")
	}
	if len(d.BootCode) > bootCodeMax {
		return fmt.Errorf("gpt: MBR boot code is %d bytes, at most %d fit", len(d.BootCode), bootCodeMax)
	}
	if len(d.Partitions) > numEntries {
		return fmt.Errorf("gpt: %d partitions, the table holds %d", len(d.Partitions), numEntries)
	}
	lastUsable := LastUsableLBA(d.SizeBytes)
	for i, p := range d.Partitions {
		switch {
		case p.Type.IsZero():
			return fmt.Errorf("gpt: partition %d (%q) has a zero type GUID", i+1, p.Name)
		case p.FirstLBA < firstUsable || p.LastLBA > lastUsable || p.FirstLBA > p.LastLBA:
			return fmt.Errorf("gpt: partition %d (%q) spans LBA %d-%d, outside the usable %d-%d of a %d-byte disk",
				i+1, p.Name, p.FirstLBA, p.LastLBA, firstUsable, lastUsable, d.SizeBytes)
		case len(utf16.Encode([]rune(p.Name))) > maxNameUnits:
			return fmt.Errorf("gpt: partition %d name %q is longer than %d UTF-16 units", i+1, p.Name, maxNameUnits)
		}
		for j, q := range d.Partitions[:i] {
			if p.FirstLBA <= q.LastLBA && q.FirstLBA <= p.LastLBA {
				return fmt.Errorf("gpt: partitions %d (%q, LBA %d-%d) and %d (%q, LBA %d-%d) overlap",
					j+1, q.Name, q.FirstLBA, q.LastLBA, i+1, p.Name, p.FirstLBA, p.LastLBA)
			}
		}
	}
	return nil
}

// partitionGUID is the unique GUID of partition p: its own, or one derived
// from the disk GUID and its name.
func (d *Disk) partitionGUID(p Partition) GUID {
	if !p.GUID.IsZero() {
		return p.GUID
	}
	return NameGUID(d.GUID.String(), "partition", p.Name)
}

// entries encodes the partition entry array.
func (d *Disk) entries() ([]byte, error) {
	if err := d.check(); err != nil {
		return nil, err
	}
	b := make([]byte, entryBytes)
	seen := map[GUID]string{}
	for i, p := range d.Partitions {
		e := b[i*entrySize : (i+1)*entrySize]
		g := d.partitionGUID(p)
		if other, ok := seen[g]; ok {
			return nil, fmt.Errorf("gpt: partitions %q and %q have the same GUID %s", other, p.Name, g)
		}
		seen[g] = p.Name
		copy(e[0:16], p.Type[:])
		copy(e[16:32], g[:])
		le.PutUint64(e[32:], p.FirstLBA)
		le.PutUint64(e[40:], p.LastLBA)
		le.PutUint64(e[48:], p.Attributes)
		for j, u := range utf16.Encode([]rune(p.Name)) {
			le.PutUint16(e[56+2*j:], u)
		}
	}
	return b, nil
}

// header encodes a GPT header sector.
func (d *Disk) header(my, alt, entryLBA uint64, entryCRC uint32) []byte {
	b := make([]byte, SectorSize)
	copy(b, signature)
	le.PutUint32(b[8:], revision)
	le.PutUint32(b[12:], headerSize)
	le.PutUint64(b[24:], my)
	le.PutUint64(b[32:], alt)
	le.PutUint64(b[40:], firstUsable)
	le.PutUint64(b[48:], LastUsableLBA(d.SizeBytes))
	copy(b[56:72], d.GUID[:])
	le.PutUint64(b[72:], entryLBA)
	le.PutUint32(b[80:], numEntries)
	le.PutUint32(b[84:], entrySize)
	le.PutUint32(b[88:], entryCRC)
	le.PutUint32(b[16:], HeaderCRC(b[:headerSize]))
	return b
}

// protectiveMBR covers the whole disk (up to 2 TiB) with one 0xEE partition
// so MBR-only tools leave it alone; BIOS boot code may precede it.
func (d *Disk) protectiveMBR() []byte {
	b := make([]byte, SectorSize)
	copy(b, d.BootCode)
	p := b[446:462]
	if d.MBRBootable {
		p[0] = 0x80
	}
	sectors := uint64(d.SizeBytes / SectorSize)
	size := min(sectors-1, 0xFFFFFFFF)
	copy(p[1:4], chs(1))
	p[4] = mbrTypeGPT
	copy(p[5:8], chs(size))
	le.PutUint32(p[8:], 1)
	le.PutUint32(p[12:], uint32(size))
	b[510], b[511] = 0x55, 0xAA
	return b
}

// chs encodes lba as cylinder/head/sector for a 255-head, 63-sector
// geometry, saturating at the 1023/254/63 that means "use LBA".
func chs(lba uint64) []byte {
	c := lba / (255 * 63)
	h := (lba / 63) % 255
	s := lba%63 + 1
	if c > 1023 {
		return []byte{0xFE, 0xFF, 0xFF}
	}
	return []byte{byte(h), byte(s) | byte(c>>8)<<6, byte(c)}
}

var le = binary.LittleEndian
