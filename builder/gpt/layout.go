package gpt

import (
	"fmt"
	"io"
)

// Alignment is where Layout starts partitions: 1 MiB, which suits 4 KiB
// sectors, SSD erase blocks and every partitioning tool's default.
const Alignment = 1 << 20

// Want is a partition to allocate.
type Want struct {
	Name       string
	Type       GUID
	Size       int64 // bytes, rounded up to whole sectors; 0 = the rest of the disk (last partition only)
	Attributes uint64
	GUID       GUID // optional; zero = derived by Write from the disk GUID and Name
}

// Layout places parts one after the other on a disk of sizeBytes, each
// starting on a 1 MiB boundary, in the order given.
func Layout(sizeBytes int64, parts []Want) ([]Partition, error) {
	if sizeBytes%SectorSize != 0 || sizeBytes < minDiskBytes {
		return nil, fmt.Errorf("gpt: disk size %d is not a multiple of %d of at least %d bytes", sizeBytes, SectorSize, minDiskBytes)
	}
	const align = Alignment / SectorSize
	lastUsable := LastUsableLBA(sizeBytes)
	next := uint64(align)
	out := make([]Partition, 0, len(parts))
	for i, w := range parts {
		if w.Size < 0 {
			return nil, fmt.Errorf("gpt: partition %q: negative size %d", w.Name, w.Size)
		}
		if w.Size == 0 && i != len(parts)-1 {
			return nil, fmt.Errorf("gpt: partition %q: only the last partition may take the rest of the disk (Size 0)", w.Name)
		}
		first := (next + align - 1) / align * align
		var last uint64
		if w.Size == 0 {
			// End on a 1 MiB boundary too (the backup table takes the
			// disk's last 33 sectors), unless that leaves nothing.
			last = lastUsable
			if end := (lastUsable + 1) / align * align; end > first {
				last = end - 1
			}
		} else {
			last = first + uint64((w.Size+SectorSize-1)/SectorSize) - 1
		}
		if first > lastUsable || last > lastUsable {
			return nil, fmt.Errorf("gpt: partition %q (%d bytes) does not fit: it would span LBA %d-%d, the last usable LBA of a %d-byte disk is %d",
				w.Name, w.Size, first, last, sizeBytes, lastUsable)
		}
		out = append(out, Partition{Name: w.Name, Type: w.Type, GUID: w.GUID, FirstLBA: first, LastLBA: last, Attributes: w.Attributes})
		next = last + 1
	}
	return out, nil
}

// SectionWriter returns a writer for the bytes of partition p inside the disk
// image w: offset 0 is the partition's first byte, and writes past its end
// fail, so a filesystem writer cannot spill into the next partition.
func (p Partition) SectionWriter(w io.WriterAt) io.WriterAt {
	return &sectionWriter{w: w, off: p.Offset(), size: p.Size(), name: p.Name}
}

type sectionWriter struct {
	w         io.WriterAt
	off, size int64
	name      string
}

func (s *sectionWriter) WriteAt(b []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(b)) > s.size {
		return 0, fmt.Errorf("gpt: write of %d bytes at %d is outside partition %q (%d bytes)", len(b), off, s.name, s.size)
	}
	return s.w.WriteAt(b, s.off+off)
}
