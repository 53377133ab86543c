package gpt

import (
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"unicode/utf16"
)

// ErrNoGPT means there is no "EFI PART" signature where a header should be.
var ErrNoGPT = errors.New("no GPT signature")

// Limits on what a table may declare before anything is allocated for it.
const (
	maxReadEntries   = 1024
	maxReadEntrySize = 4096
)

// Table is one copy of a GPT as stored on a disk: the header at HeaderLBA and
// the entry array it points to, both checked against their CRC32. It keeps
// the raw bytes so that a caller can patch a field and write it back.
type Table struct {
	HeaderLBA      uint64 // where this header is: 1, or the last LBA for the backup
	AlternateLBA   uint64 // where the other copy's header is
	FirstUsableLBA uint64
	LastUsableLBA  uint64
	DiskGUID       GUID
	EntriesLBA     uint64
	EntryCount     uint32
	EntrySize      uint32

	Header  []byte // the header's own bytes (as long as its size field says)
	Entries []byte // the entry array, EntryCount*EntrySize bytes
}

// ReadTable reads and checks the header at lba and its entry array. Without
// a signature there, the error wraps ErrNoGPT.
func ReadTable(r io.ReaderAt, lba uint64) (*Table, error) {
	t, err := readTable(r, lba)
	if err != nil {
		return nil, fmt.Errorf("gpt: %w", err)
	}
	return t, nil
}

// readTable is ReadTable with errors that do not repeat "gpt:", for Read,
// which reports on both copies in one message.
func readTable(r io.ReaderAt, lba uint64) (*Table, error) {
	h := make([]byte, SectorSize)
	if _, err := r.ReadAt(h, int64(lba)*SectorSize); err != nil {
		return nil, fmt.Errorf("reading header at LBA %d: %w", lba, err)
	}
	if string(h[:8]) != signature {
		return nil, fmt.Errorf("%w at LBA %d", ErrNoGPT, lba)
	}
	hs := le.Uint32(h[12:])
	if hs < headerSize || hs > SectorSize {
		return nil, fmt.Errorf("header at LBA %d: size %d out of range", lba, hs)
	}
	h = h[:hs]
	if got, want := HeaderCRC(h), le.Uint32(h[16:]); got != want {
		return nil, fmt.Errorf("header at LBA %d: CRC32 %08x, stored %08x", lba, got, want)
	}
	if my := le.Uint64(h[24:]); my != lba {
		return nil, fmt.Errorf("header at LBA %d says it is at LBA %d", lba, my)
	}
	t := &Table{
		Header:         h,
		HeaderLBA:      lba,
		AlternateLBA:   le.Uint64(h[32:]),
		FirstUsableLBA: le.Uint64(h[40:]),
		LastUsableLBA:  le.Uint64(h[48:]),
		EntriesLBA:     le.Uint64(h[72:]),
		EntryCount:     le.Uint32(h[80:]),
		EntrySize:      le.Uint32(h[84:]),
	}
	copy(t.DiskGUID[:], h[56:72])
	n, es := t.EntryCount, t.EntrySize
	if n > maxReadEntries || es < entrySize || es%8 != 0 || es > maxReadEntrySize {
		return nil, fmt.Errorf("header at LBA %d: %d entries of %d bytes not supported", lba, n, es)
	}
	if t.EntriesLBA > math.MaxInt64/SectorSize {
		return nil, fmt.Errorf("header at LBA %d: entries at LBA %d beyond any disk", lba, t.EntriesLBA)
	}
	t.Entries = make([]byte, int(n)*int(es))
	if _, err := r.ReadAt(t.Entries, int64(t.EntriesLBA)*SectorSize); err != nil {
		return nil, fmt.Errorf("reading entries at LBA %d: %w", t.EntriesLBA, err)
	}
	if got, want := crc32.ChecksumIEEE(t.Entries), le.Uint32(h[88:]); got != want {
		return nil, fmt.Errorf("entries at LBA %d: CRC32 %08x, stored %08x", t.EntriesLBA, got, want)
	}
	return t, nil
}

// Entry decodes entry i (0-based; the partition number is i+1). used is
// false for an empty slot (zero type GUID).
func (t *Table) Entry(i int) (p Partition, used bool) {
	e := t.Entries[i*int(t.EntrySize):]
	copy(p.Type[:], e[0:16])
	if p.Type.IsZero() {
		return Partition{}, false
	}
	copy(p.GUID[:], e[16:32])
	p.FirstLBA = le.Uint64(e[32:])
	p.LastLBA = le.Uint64(e[40:])
	p.Attributes = le.Uint64(e[48:])
	units := make([]uint16, 0, maxNameUnits)
	for j := 0; j < maxNameUnits; j++ {
		u := le.Uint16(e[56+2*j:])
		if u == 0 {
			break
		}
		units = append(units, u)
	}
	p.Name = string(utf16.Decode(units))
	return p, true
}

// HeaderCRC is the CRC32 of header h computed with its CRC field as zero,
// which is how the header's own checksum is defined.
func HeaderCRC(h []byte) uint32 {
	c := bytes.Clone(h)
	le.PutUint32(c[16:], 0)
	return crc32.ChecksumIEEE(c)
}

// Read reads the table of a disk of size bytes: the primary copy, or the
// backup when the primary is damaged. Empty entries are dropped.
func Read(r io.ReaderAt, size int64) (*Disk, error) {
	if size%SectorSize != 0 || size < minDiskBytes {
		return nil, fmt.Errorf("gpt: disk size %d is not a multiple of %d of at least %d bytes", size, SectorSize, minDiskBytes)
	}
	mbr := make([]byte, SectorSize)
	if _, err := r.ReadAt(mbr, 0); err != nil {
		return nil, fmt.Errorf("gpt: reading MBR: %w", err)
	}
	last := uint64(size/SectorSize) - 1
	t, perr := readTable(r, 1)
	if perr != nil {
		var berr error
		if t, berr = readTable(r, last); berr != nil {
			return nil, fmt.Errorf("gpt: primary table: %v; backup table: %v", perr, berr)
		}
	}
	d := &Disk{SizeBytes: size, GUID: t.DiskGUID, BootCode: bytes.Clone(mbr[:bootCodeMax])}
	for i := range int(t.EntryCount) {
		if p, ok := t.Entry(i); ok {
			d.Partitions = append(d.Partitions, p)
		}
	}
	for i := 0; i < 4; i++ {
		if p := mbr[446+16*i:]; p[4] == mbrTypeGPT && p[0] == 0x80 {
			d.MBRBootable = true
		}
	}
	return d, nil
}
