// Package vmdk writes a raw disk image as a monolithic streamOptimized VMDK,
// the disk format OVF/OVA packages carry.
//
// The stream follows the VMware Virtual Disk Format 5.0 layout: a sparse
// extent header whose gdOffset says "at end", the embedded descriptor, then
// for each grain table its deflate-compressed grains (with grain markers)
// followed by a grain table marker and the table, then the grain directory
// marker and directory, the footer marker and footer (a copy of the header
// with the real gdOffset), and the end-of-stream marker. All-zero grains are
// not stored.
package vmdk

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"strings"

	"github.com/kilnproject/kiln/builder/sparse"
	"github.com/klauspost/compress/zlib"
)

const (
	sector      = 512
	grainSecs   = 128 // 64 KiB grains
	grainSize   = grainSecs * sector
	gtEntries   = 512 // grain table entries
	descSecs    = 20  // room reserved for the embedded descriptor
	overheadSec = 128 // first grain starts at a grain boundary

	magic      = 0x564d444b // "KDMV"
	gdAtEnd    = ^uint64(0)
	flagNL     = 1 << 0  // valid newline detection
	flagComp   = 1 << 16 // compressed grains
	flagMarker = 1 << 17 // markers present

	markerEOS    = 0
	markerGT     = 1
	markerGD     = 2
	markerFooter = 3
)

// Options tune the descriptor; the zero value is a valid lsilogic disk.
type Options struct {
	// AdapterType is "lsilogic" (default), "ide", "buslogic" or "pvscsi".
	AdapterType string
	// CID is the descriptor content ID; 0 derives it from the disk content.
	CID uint32
	// HWVersion is ddb.virtualHWVersion; 0 means 4 (7 for pvscsi, which
	// older virtual hardware lacks).
	HWVersion int
	// FileName is the extent file name in the descriptor; default "disk.vmdk".
	FileName string
}

// Info describes a written disk, as an OVF DiskSection needs it.
type Info struct {
	Capacity      int64  // virtual size in bytes (source size rounded up to a sector)
	PopulatedSize int64  // bytes of guest data actually stored (non-zero grains)
	FileSize      int64  // bytes written to dst
	CID           uint32 // content ID written into the descriptor
}

// WriteStreamOptimized writes src (size bytes of raw disk) to dst as a
// streamOptimized VMDK.
func WriteStreamOptimized(dst io.Writer, src io.ReaderAt, size int64, o Options) error {
	_, err := Write(dst, src, size, o)
	return err
}

// Write is WriteStreamOptimized that also reports the sizes an OVF needs.
func Write(dst io.Writer, src io.ReaderAt, size int64, o Options) (Info, error) {
	if size <= 0 {
		return Info{}, fmt.Errorf("vmdk: virtual size %d must be positive", size)
	}
	adapter, hw, err := o.resolve()
	if err != nil {
		return Info{}, err
	}
	capSecs := (size + sector - 1) / sector
	grains := (capSecs + grainSecs - 1) / grainSecs

	// First pass: which grains hold data, and a content digest for the CID
	// (the descriptor comes first in the stream, so it must be known now).
	used := make([]bool, grains)
	h := sha256.New()
	buf := make([]byte, grainSize)
	var populated int64
	for g := int64(0); g < grains; g++ {
		if err := sparse.ReadChunk(src, size, g, buf); err != nil {
			return Info{}, fmt.Errorf("vmdk: %w", err)
		}
		if !sparse.IsZero(buf) {
			used[g] = true
			populated += grainSize
			var idx [8]byte
			binary.LittleEndian.PutUint64(idx[:], uint64(g))
			h.Write(idx[:])
			h.Write(buf)
		}
	}
	var sz [8]byte
	binary.LittleEndian.PutUint64(sz[:], uint64(capSecs))
	h.Write(sz[:])
	sum := h.Sum(nil)
	cid := o.CID
	if cid == 0 {
		cid = binary.BigEndian.Uint32(sum)
		if cid == 0 || cid == 0xffffffff { // reserved meanings: none / no parent
			cid = 1
		}
	}

	bw := bufio.NewWriterSize(dst, 1<<20)
	cw := &sparse.CountingWriter{W: bw}
	info := Info{Capacity: capSecs * sector, PopulatedSize: populated, CID: cid}
	name := o.FileName
	if name == "" {
		name = "disk.vmdk"
	}
	desc := descriptor(cid, hex.EncodeToString(sum[:16]), name, capSecs, adapter, hw)
	if len(desc) > descSecs*sector {
		return Info{}, fmt.Errorf("vmdk: descriptor is %d bytes, more than the %d reserved", len(desc), descSecs*sector)
	}
	hdr := header(capSecs, gdAtEnd)
	cw.Write(hdr)
	d := make([]byte, (overheadSec-1)*sector)
	copy(d, desc)
	cw.Write(d)

	numGTs := (grains + gtEntries - 1) / gtEntries
	gd := make([]byte, padSector(numGTs*4))
	gt := make([]byte, gtEntries*4)
	var zbuf bytes.Buffer
	zw, _ := zlib.NewWriterLevel(&zbuf, zlib.BestSpeed)
	for t := int64(0); t < numGTs && cw.Err == nil; t++ {
		clear(gt)
		stored := false
		for i := int64(0); i < gtEntries; i++ {
			g := t*gtEntries + i
			if g >= grains || !used[g] {
				continue
			}
			if err := sparse.ReadChunk(src, size, g, buf); err != nil {
				return Info{}, fmt.Errorf("vmdk: %w", err)
			}
			zbuf.Reset()
			zw.Reset(&zbuf)
			zw.Write(buf)
			if err := zw.Close(); err != nil {
				return Info{}, fmt.Errorf("vmdk: compressing grain %d: %w", g, err)
			}
			binary.LittleEndian.PutUint32(gt[i*4:], uint32(cw.N/sector))
			// Grain marker: LBA, compressed size, data, padded to a sector.
			m := make([]byte, padSector(int64(12+zbuf.Len())))
			binary.LittleEndian.PutUint64(m[0:], uint64(g*grainSecs))
			binary.LittleEndian.PutUint32(m[8:], uint32(zbuf.Len()))
			copy(m[12:], zbuf.Bytes())
			cw.Write(m)
			stored = true
		}
		if !stored {
			continue // no table: a zero GD entry reads as unallocated
		}
		cw.Write(marker(int64(len(gt))/sector, markerGT))
		binary.LittleEndian.PutUint32(gd[t*4:], uint32(cw.N/sector))
		cw.Write(gt)
	}
	cw.Write(marker(int64(len(gd))/sector, markerGD))
	gdOff := cw.N / sector
	cw.Write(gd)
	cw.Write(marker(1, markerFooter))
	cw.Write(header(capSecs, uint64(gdOff)))
	cw.Write(marker(0, markerEOS))
	if cw.Err != nil {
		return Info{}, fmt.Errorf("vmdk: writing output: %w", cw.Err)
	}
	if err := bw.Flush(); err != nil {
		return Info{}, fmt.Errorf("vmdk: flushing output: %w", err)
	}
	info.FileSize = cw.N
	return info, nil
}

func (o Options) resolve() (adapter string, hw int, err error) {
	adapter = o.AdapterType
	if adapter == "" {
		adapter = "lsilogic"
	}
	switch adapter {
	case "lsilogic", "ide", "buslogic", "pvscsi":
	default:
		return "", 0, fmt.Errorf("vmdk: AdapterType %q: want lsilogic, ide, buslogic or pvscsi", o.AdapterType)
	}
	hw = o.HWVersion
	if hw == 0 {
		hw = 4
		if adapter == "pvscsi" {
			hw = 7
		}
	}
	if hw < 4 {
		return "", 0, fmt.Errorf("vmdk: HWVersion %d: want 4 or later", hw)
	}
	if strings.ContainsAny(o.FileName, "\"\n/") {
		return "", 0, fmt.Errorf("vmdk: FileName %q: must be a plain file name", o.FileName)
	}
	return adapter, hw, nil
}

// geometry is the BIOS CHS geometry VMware records: IDE disks use 16 heads,
// SCSI disks 255; sectors per track is always 63, cylinders are capped.
func geometry(capSecs int64, adapter string) (c, h, s int64) {
	h, s = 255, 63
	if adapter == "ide" {
		h = 16
	}
	c = capSecs / (h * s)
	if c > 16383 && adapter == "ide" {
		c = 16383
	}
	if c > 65535 {
		c = 65535
	}
	if c == 0 {
		c = 1
	}
	return c, h, s
}

func descriptor(cid uint32, longCID, name string, capSecs int64, adapter string, hw int) string {
	c, h, s := geometry(capSecs, adapter)
	var b strings.Builder
	fmt.Fprintf(&b, "# Disk DescriptorFile\nversion=1\nencoding=\"UTF-8\"\nCID=%08x\nparentCID=ffffffff\ncreateType=\"streamOptimized\"\n\n", cid)
	fmt.Fprintf(&b, "# Extent description\nRW %d SPARSE \"%s\"\n\n", capSecs, name)
	fmt.Fprintf(&b, "# The Disk Data Base\n#DDB\n\n")
	fmt.Fprintf(&b, "ddb.adapterType = \"%s\"\n", adapter)
	fmt.Fprintf(&b, "ddb.geometry.cylinders = \"%d\"\nddb.geometry.heads = \"%d\"\nddb.geometry.sectors = \"%d\"\n", c, h, s)
	fmt.Fprintf(&b, "ddb.longContentID = \"%s\"\n", longCID)
	fmt.Fprintf(&b, "ddb.virtualHWVersion = \"%d\"\n", hw)
	return b.String()
}

// header is the 512-byte SparseExtentHeader (little endian).
func header(capSecs int64, gdOffset uint64) []byte {
	b := make([]byte, sector)
	le := binary.LittleEndian
	le.PutUint32(b[0:], magic)
	le.PutUint32(b[4:], 3) // version 3: streamOptimized
	le.PutUint32(b[8:], flagNL|flagComp|flagMarker)
	le.PutUint64(b[12:], uint64(capSecs))
	le.PutUint64(b[20:], grainSecs)
	le.PutUint64(b[28:], 1) // descriptorOffset
	le.PutUint64(b[36:], descSecs)
	le.PutUint32(b[44:], gtEntries)
	le.PutUint64(b[48:], 0) // rgdOffset: no redundant tables in a stream
	le.PutUint64(b[56:], gdOffset)
	le.PutUint64(b[64:], overheadSec)
	b[72] = 0 // uncleanShutdown
	b[73], b[74], b[75], b[76] = '\n', ' ', '\r', '\n'
	le.PutUint16(b[77:], 1) // compressAlgorithm: deflate
	return b
}

// marker is a metadata marker sector: numSectors, size 0, type.
func marker(numSecs int64, typ uint32) []byte {
	b := make([]byte, sector)
	binary.LittleEndian.PutUint64(b[0:], uint64(numSecs))
	binary.LittleEndian.PutUint32(b[12:], typ)
	return b
}

func padSector(n int64) int64 { return (n + sector - 1) / sector * sector }
