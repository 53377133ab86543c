// Package gpt reads a GUID Partition Table and grows its last partition to
// the end of a disk that got bigger (the STATE partition on first boot).
// It follows UEFI 2.x chapter 5: protective MBR at LBA 0, header at LBA 1,
// entry array after it, a backup array and header at the end of the disk.
// Parsing and checking is builder/gpt's, the code that wrote the table.
package gpt

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	bgpt "github.com/kilnproject/kiln/builder/gpt"
)

// SectorSize is the logical block size assumed for disk images and the
// virtual disks initd boots from.
const SectorSize = bgpt.SectorSize

// ErrNoGPT means the disk has no valid GPT header at LBA 1.
var ErrNoGPT = bgpt.ErrNoGPT

// Partition is one used entry of the table.
type Partition struct {
	Index    int // 1-based, as in /dev/vda1
	Type     [16]byte
	GUID     [16]byte
	FirstLBA uint64
	LastLBA  uint64
	Attrs    uint64
	Name     string
}

// Sectors is the partition's length in sectors.
func (p Partition) Sectors() uint64 { return p.LastLBA - p.FirstLBA + 1 }

// Table is a parsed GPT.
type Table struct {
	header                  []byte // primary header, as long as its size field says
	entries                 []byte // raw entry array
	EntryCount              uint32
	EntrySize               uint32
	EntriesLBA              uint64
	FirstUsable, LastUsable uint64
	BackupLBA               uint64
	DiskGUID                [16]byte
	Partitions              []Partition
}

// Read parses and checks (signature, CRCs) the primary GPT of a disk.
func Read(r io.ReaderAt) (*Table, error) {
	bt, err := bgpt.ReadTable(r, 1)
	if errors.Is(err, bgpt.ErrNoGPT) {
		return nil, ErrNoGPT // callers compare with ==
	}
	if err != nil {
		return nil, err
	}
	t := &Table{
		header:      bt.Header,
		entries:     bt.Entries,
		EntryCount:  bt.EntryCount,
		EntrySize:   bt.EntrySize,
		EntriesLBA:  bt.EntriesLBA,
		FirstUsable: bt.FirstUsableLBA,
		LastUsable:  bt.LastUsableLBA,
		BackupLBA:   bt.AlternateLBA,
		DiskGUID:    bt.DiskGUID,
	}
	for i := range int(bt.EntryCount) {
		if p, ok := bt.Entry(i); ok {
			t.Partitions = append(t.Partitions, Partition{Index: i + 1, Type: p.Type, GUID: p.GUID,
				FirstLBA: p.FirstLBA, LastLBA: p.LastLBA, Attrs: p.Attributes, Name: p.Name})
		}
	}
	return t, nil
}

// Find returns the partition with the given GPT name.
func (t *Table) Find(name string) (Partition, bool) {
	for _, p := range t.Partitions {
		if p.Name == name {
			return p, true
		}
	}
	return Partition{}, false
}

// WriterAt is a disk that can be read and written at offsets.
type WriterAt interface {
	io.ReaderAt
	io.WriterAt
}

// Grow makes the GPT span a disk of diskBytes (moving the backup header and
// entries to the new end) and extends partition name to the new last usable
// sector. The partition must be the one that ends last. It returns whether
// anything changed: a table that already spans the disk with the partition
// at the end is left alone.
func Grow(d WriterAt, diskBytes int64, name string) (bool, error) {
	t, err := Read(d)
	if err != nil {
		return false, err
	}
	p, ok := t.Find(name)
	if !ok {
		return false, fmt.Errorf("gpt: no partition named %q", name)
	}
	for _, q := range t.Partitions {
		if q.LastLBA > p.LastLBA {
			return false, fmt.Errorf("gpt: partition %q is not the last one (%q ends after it)", name, q.Name)
		}
	}
	totalLBA := uint64(diskBytes / SectorSize)
	arraySectors := (uint64(len(t.entries)) + SectorSize - 1) / SectorSize
	if totalLBA < arraySectors+2+t.FirstUsable {
		return false, fmt.Errorf("gpt: disk of %d bytes too small", diskBytes)
	}
	backup := totalLBA - 1
	lastUsable := backup - arraySectors - 1
	if lastUsable < t.LastUsable || lastUsable < p.LastLBA {
		return false, fmt.Errorf("gpt: disk of %d bytes is smaller than the table (last usable LBA %d)", diskBytes, t.LastUsable)
	}
	if backup == t.BackupLBA && lastUsable == t.LastUsable && p.LastLBA == lastUsable {
		return false, nil
	}
	le := binary.LittleEndian
	e := t.entries[(p.Index-1)*int(t.EntrySize):]
	le.PutUint64(e[40:], lastUsable)
	entriesCRC := crc32.ChecksumIEEE(t.entries)

	primary := t.header
	le.PutUint64(primary[24:], 1)
	le.PutUint64(primary[32:], backup)
	le.PutUint64(primary[48:], lastUsable)
	le.PutUint64(primary[72:], t.EntriesLBA)
	le.PutUint32(primary[88:], entriesCRC)
	le.PutUint32(primary[16:], bgpt.HeaderCRC(primary))

	secondary := append([]byte(nil), primary...)
	backupEntries := backup - arraySectors
	le.PutUint64(secondary[24:], backup)
	le.PutUint64(secondary[32:], 1)
	le.PutUint64(secondary[72:], backupEntries)
	le.PutUint32(secondary[16:], bgpt.HeaderCRC(secondary))

	// Backup first: if we stop half way, the primary still describes the
	// old, consistent layout.
	if _, err := d.WriteAt(t.entries, int64(backupEntries)*SectorSize); err != nil {
		return false, fmt.Errorf("gpt: write backup entries: %w", err)
	}
	if _, err := d.WriteAt(pad(secondary), int64(backup)*SectorSize); err != nil {
		return false, fmt.Errorf("gpt: write backup header: %w", err)
	}
	if _, err := d.WriteAt(t.entries, int64(t.EntriesLBA)*SectorSize); err != nil {
		return false, fmt.Errorf("gpt: write entries: %w", err)
	}
	if _, err := d.WriteAt(pad(primary), SectorSize); err != nil {
		return false, fmt.Errorf("gpt: write header: %w", err)
	}
	if err := fixProtectiveMBR(d, totalLBA); err != nil {
		return false, err
	}
	return true, nil
}

func pad(h []byte) []byte {
	b := make([]byte, SectorSize)
	copy(b, h)
	return b
}

// fixProtectiveMBR sets the size of the 0xEE entry to cover the whole disk
// (capped at 32 bits), as the spec asks.
func fixProtectiveMBR(d WriterAt, totalLBA uint64) error {
	mbr := make([]byte, SectorSize)
	if _, err := d.ReadAt(mbr, 0); err != nil {
		return fmt.Errorf("gpt: read MBR: %w", err)
	}
	if mbr[510] != 0x55 || mbr[511] != 0xAA {
		return nil
	}
	size := totalLBA - 1
	if size > 0xFFFFFFFF {
		size = 0xFFFFFFFF
	}
	for i := 0; i < 4; i++ {
		e := mbr[446+16*i:][:16]
		if e[4] != 0xEE {
			continue
		}
		var b [4]byte
		binary.LittleEndian.PutUint32(b[:], uint32(size))
		if bytes.Equal(e[12:16], b[:]) {
			return nil
		}
		if _, err := d.WriteAt(b[:], int64(446+16*i+12)); err != nil {
			return fmt.Errorf("gpt: write protective MBR: %w", err)
		}
	}
	return nil
}
