// Package vhd writes a raw disk image as a VHD (Virtual Hard Disk format
// specification 1.0), fixed or dynamic, for Hyper-V and Azure.
//
// Both kinds round the disk up to a whole MiB (Azure requires it) and record
// that size as the current size; CHS geometry follows the specification's
// algorithm. Dynamic disks store only 2 MiB blocks that hold data.
package vhd

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/kilnproject/kiln/builder/sparse"
)

const (
	sector    = 512
	mib       = 1 << 20
	blockSize = 2 * mib // dynamic disk block
	// The sector bitmap of a 2 MiB block: 4096 bits = 512 bytes = one sector.
	bitmapSize = blockSize / sector / 8

	typeFixed   = 2
	typeDynamic = 3

	headerOffset = sector        // dynamic header follows the footer copy
	batOffset    = sector + 1024 // BAT follows the 1024-byte dynamic header
	noOffset     = ^uint64(0)    // data offset of a fixed disk
	unusedBlock  = uint32(0xffffffff)
	hostWindows  = uint32(0x5769326b) // "Wi2k"
)

// Options are the footer fields that would otherwise come from the clock or
// a random generator; set them from the build so output is reproducible.
type Options struct {
	// UniqueID identifies the disk; derive it from the build (e.g. a hash
	// of the image name and version). The zero ID is allowed but discouraged.
	UniqueID [16]byte
	// Timestamp is seconds since 2000-01-01 00:00:00 UTC (the VHD epoch);
	// use SOURCE_DATE_EPOCH - 946684800.
	Timestamp uint32
	// CreatorApp is the 4-byte creator application; default "kiln".
	CreatorApp string
}

// VHDEpoch is the Unix time of the VHD timestamp epoch, 2000-01-01 UTC.
const VHDEpoch = 946684800

// TimestampFromUnix converts a Unix time (SOURCE_DATE_EPOCH) to a VHD
// timestamp, clamping times before 2000 to 0.
func TimestampFromUnix(unix int64) uint32 {
	if unix <= VHDEpoch {
		return 0
	}
	return uint32(unix - VHDEpoch)
}

// DiskSize is the size a VHD of a size-byte source records: rounded up to a MiB.
func DiskSize(size int64) int64 { return (size + mib - 1) / mib * mib }

// WriteFixed writes src (size bytes of raw disk) as a fixed VHD: the disk
// bytes, zero-padded to DiskSize(size), then the 512-byte footer.
func WriteFixed(dst io.Writer, src io.ReaderAt, size int64, o Options) error {
	if err := o.check(size); err != nil {
		return err
	}
	disk := DiskSize(size)
	w := bufio.NewWriterSize(dst, 1<<20)
	buf := make([]byte, mib)
	for off := int64(0); off < disk; off += mib {
		if err := sparse.ReadChunk(src, size, off/mib, buf); err != nil {
			return fmt.Errorf("vhd: %w", err)
		}
		if _, err := w.Write(buf); err != nil {
			return fmt.Errorf("vhd: writing data at %d: %w", off, err)
		}
	}
	if _, err := w.Write(footer(disk, typeFixed, noOffset, o)); err != nil {
		return fmt.Errorf("vhd: writing footer: %w", err)
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("vhd: flushing output: %w", err)
	}
	return nil
}

// WriteDynamic writes src as a dynamic VHD: footer copy, dynamic header,
// block allocation table, then each 2 MiB block that holds data (sector
// bitmap, all sectors marked present, then the data), then the footer.
func WriteDynamic(dst io.Writer, src io.ReaderAt, size int64, o Options) error {
	if err := o.check(size); err != nil {
		return err
	}
	disk := DiskSize(size)
	blocks := (disk + blockSize - 1) / blockSize
	buf := make([]byte, blockSize)

	// First pass: which blocks hold data, so the BAT can precede them.
	used := make([]bool, blocks)
	for b := range used {
		if err := sparse.ReadChunk(src, size, int64(b), buf); err != nil {
			return fmt.Errorf("vhd: %w", err)
		}
		used[b] = !sparse.IsZero(buf)
	}
	batBytes := (blocks*4 + sector - 1) / sector * sector
	bat := make([]byte, batBytes)
	for i := range bat {
		bat[i] = 0xff // unused BAT entries and padding are all ones
	}
	next := int64(batOffset) + batBytes
	for b, u := range used {
		if u {
			binary.BigEndian.PutUint32(bat[b*4:], uint32(next/sector))
			next += bitmapSize + blockSize
		}
	}

	ft := footer(disk, typeDynamic, headerOffset, o)
	w := bufio.NewWriterSize(dst, 1<<20)
	w.Write(ft)
	w.Write(dynamicHeader(blocks))
	w.Write(bat)
	bitmap := make([]byte, bitmapSize)
	for i := range bitmap {
		bitmap[i] = 0xff
	}
	for b, u := range used {
		if !u {
			continue
		}
		if err := sparse.ReadChunk(src, size, int64(b), buf); err != nil {
			return fmt.Errorf("vhd: %w", err)
		}
		w.Write(bitmap)
		if _, err := w.Write(buf); err != nil {
			return fmt.Errorf("vhd: writing block %d: %w", b, err)
		}
	}
	if _, err := w.Write(ft); err != nil {
		return fmt.Errorf("vhd: writing footer: %w", err)
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("vhd: flushing output: %w", err)
	}
	return nil
}

func (o Options) check(size int64) error {
	if size <= 0 {
		return fmt.Errorf("vhd: disk size %d must be positive", size)
	}
	// 2040 GiB is the format's limit (BAT and CHS both top out around it).
	if DiskSize(size) > 2040<<30 {
		return fmt.Errorf("vhd: disk size %d is over the 2040 GiB VHD limit", size)
	}
	if len(o.CreatorApp) > 4 {
		return fmt.Errorf("vhd: CreatorApp %q is longer than 4 bytes", o.CreatorApp)
	}
	return nil
}

// chs is the geometry algorithm from the VHD specification (appendix).
func chs(disk int64) (cyl uint16, heads, spt uint8) {
	total := disk / sector
	if total > 65535*16*255 {
		total = 65535 * 16 * 255
	}
	var s, h, cth int64
	if total >= 65535*16*63 {
		s, h = 255, 16
		cth = total / s
	} else {
		s = 17
		cth = total / s
		h = (cth + 1023) / 1024
		if h < 4 {
			h = 4
		}
		if cth >= h*1024 || h > 16 {
			s, h = 31, 16
			cth = total / s
		}
		if cth >= h*1024 {
			s, h = 63, 16
			cth = total / s
		}
	}
	return uint16(cth / h), uint8(h), uint8(s)
}

// footer is the 512-byte hard disk footer (big endian).
func footer(disk int64, diskType uint32, dataOffset uint64, o Options) []byte {
	b := make([]byte, sector)
	be := binary.BigEndian
	copy(b[0:], "conectix")
	be.PutUint32(b[8:], 2)           // features: reserved bit always set
	be.PutUint32(b[12:], 0x00010000) // file format version 1.0
	be.PutUint64(b[16:], dataOffset)
	be.PutUint32(b[24:], o.Timestamp)
	app := o.CreatorApp
	if app == "" {
		app = "kiln"
	}
	copy(b[28:32], app+"    ")
	be.PutUint32(b[32:], 0x00010000) // creator version
	be.PutUint32(b[36:], hostWindows)
	be.PutUint64(b[40:], uint64(disk)) // original size
	be.PutUint64(b[48:], uint64(disk)) // current size
	c, h, s := chs(disk)
	be.PutUint16(b[56:], c)
	b[58], b[59] = h, s
	be.PutUint32(b[60:], diskType)
	copy(b[68:84], o.UniqueID[:])
	be.PutUint32(b[64:], checksum(b))
	return b
}

// dynamicHeader is the 1024-byte dynamic disk header (big endian).
func dynamicHeader(blocks int64) []byte {
	b := make([]byte, 1024)
	be := binary.BigEndian
	copy(b[0:], "cxsparse")
	be.PutUint64(b[8:], noOffset) // data offset: unused
	be.PutUint64(b[16:], batOffset)
	be.PutUint32(b[24:], 0x00010000) // header version
	be.PutUint32(b[28:], uint32(blocks))
	be.PutUint32(b[32:], blockSize)
	be.PutUint32(b[36:], checksum(b))
	return b
}

// checksum is the one's complement of the byte sum; the checksum field
// itself is still zero when this runs.
func checksum(b []byte) uint32 {
	var sum uint32
	for _, x := range b {
		sum += uint32(x)
	}
	return ^sum
}
