// Package qcow2 writes a raw disk image as a sparse qcow2 (version 3) image.
//
// The layout is computed up front so the image can be streamed to any
// io.Writer: header, L1 table, refcount table, refcount blocks, L2 tables,
// then the data clusters in guest order. All-zero clusters are not stored;
// every stored cluster has refcount 1, so L1/L2 entries carry the COPIED flag.
package qcow2

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/kilnproject/kiln/builder/sparse"
	"github.com/klauspost/compress/flate"
)

const (
	clusterBits  = 16
	clusterSize  = 1 << clusterBits // 64 KiB
	refcountBits = 16               // refcount_order 4
	l2Entries    = clusterSize / 8
	refsPerBlock = clusterSize * 8 / refcountBits
	headerLength = 104 // version 3 header without the optional compression_type field

	flagCopied      = uint64(1) << 63
	flagCompressed  = uint64(1) << 62
	compressedShift = 62 - (clusterBits - 8) // where the sector count starts

	extEnd         = 0x00000000
	extFeatureName = 0x6803f857
)

// Options select optional encodings; the zero value is what Write uses.
type Options struct {
	// Compress stores each data cluster deflate-compressed (qemu's 4 KiB
	// window) when that saves space. It costs a second compression pass,
	// since the metadata in front of the data depends on the packed sizes.
	Compress bool
}

// Write streams src (size bytes of raw disk) to dst as a qcow2 v3 image with
// 64 KiB clusters. The virtual size is size rounded up to a 512-byte sector
// (qemu truncates anything finer); it need not be a multiple of the cluster
// size, the tail of the last cluster is stored as zeros.
func Write(dst io.Writer, src io.ReaderAt, size int64) error {
	return WriteOptions(dst, src, size, Options{})
}

// WriteOptions is Write with optional encodings.
func WriteOptions(dst io.Writer, src io.ReaderAt, size int64, o Options) error {
	if size <= 0 {
		return fmt.Errorf("qcow2: virtual size %d must be positive", size)
	}
	var z *compressor
	if o.Compress {
		z = newCompressor()
	}
	clen, err := scanClusters(src, size, z)
	if err != nil {
		return err
	}
	l := plan((size+511)&^511, clen)
	bw := bufio.NewWriterSize(dst, 1<<20)
	w := &sparse.CountingWriter{W: bw}
	if err := l.writeMetadata(w); err != nil {
		return fmt.Errorf("qcow2: writing metadata: %w", err)
	}
	buf := make([]byte, clusterSize)
	dataStart := l.dataOff * clusterSize
	for c, n := range clen {
		if n == notStored {
			continue
		}
		if err := sparse.ReadChunk(src, size, int64(c), buf); err != nil {
			return fmt.Errorf("qcow2: %w", err)
		}
		out := buf
		if n != stored {
			if out = z.compress(buf); len(out) != int(n) {
				return fmt.Errorf("qcow2: cluster %d compressed to %d bytes, then %d: compressor is not deterministic", c, n, len(out))
			}
		}
		w.PadTo(dataStart + l.rel[c])
		if _, err := w.Write(out); err != nil {
			return fmt.Errorf("qcow2: writing cluster %d: %w", c, err)
		}
	}
	w.PadTo(l.totalClusters * clusterSize)
	if w.Err != nil {
		return fmt.Errorf("qcow2: writing output: %w", w.Err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("qcow2: flushing output: %w", err)
	}
	return nil
}

// compressor makes raw deflate streams with a 4 KiB window: qemu inflates
// compressed clusters with windowBits -12 and rejects longer distances.
type compressor struct {
	out bytes.Buffer
	fw  *flate.Writer
}

func newCompressor() *compressor {
	z := &compressor{}
	z.fw, _ = flate.NewWriterWindow(&z.out, 4096)
	return z
}

func (z *compressor) compress(p []byte) []byte {
	z.out.Reset()
	z.fw.Reset(&z.out)
	z.fw.Write(p) // writes to a bytes.Buffer cannot fail
	z.fw.Close()
	return z.out.Bytes()
}

// Per guest cluster, how it is stored: not at all, as a plain cluster, or
// (any positive value) as that many bytes of compressed data.
const (
	notStored int32 = 0
	stored    int32 = -1
)

// scanClusters reports how each guest cluster will be stored. All-zero
// clusters are left out; with z, clusters that compress are compressed.
func scanClusters(src io.ReaderAt, size int64, z *compressor) ([]int32, error) {
	n := (size + clusterSize - 1) / clusterSize
	clen := make([]int32, n)
	buf := make([]byte, clusterSize)
	for c := int64(0); c < n; c++ {
		if err := sparse.ReadChunk(src, size, c, buf); err != nil {
			return nil, fmt.Errorf("qcow2: %w", err)
		}
		switch {
		case sparse.IsZero(buf):
			clen[c] = notStored
		case z != nil:
			// Only worth it if it frees at least one sector.
			if m := len(z.compress(buf)); m <= clusterSize-512 {
				clen[c] = int32(m)
			} else {
				clen[c] = stored
			}
		default:
			clen[c] = stored
		}
	}
	return clen, nil
}

// layout is where every structure lives in the output, in cluster numbers.
type layout struct {
	size          int64
	clen          []int32 // per guest cluster, as scanClusters reports
	rel           []int64 // per stored guest cluster, byte offset in the data area
	dataRefs      []uint16
	l1Entries     int64 // l1_size
	l1Off         int64 // first L1 cluster
	l1Clusters    int64
	rtOff         int64 // refcount table
	rtClusters    int64
	rbOff         int64 // refcount blocks
	rbClusters    int64
	l2Off         int64   // L2 tables, one per L1 entry that has data
	l2Index       []int64 // L1 index -> ordinal among stored L2 tables, -1 if none
	l2Clusters    int64
	dataOff       int64
	dataClusters  int64
	totalClusters int64
}

func ceilDiv(a, b int64) int64 { return (a + b - 1) / b }

func plan(size int64, clen []int32) *layout {
	l := &layout{size: size, clen: clen, rel: make([]int64, len(clen))}
	l.l1Entries = ceilDiv(int64(len(clen)), l2Entries)
	l.l1Clusters = ceilDiv(l.l1Entries*8, clusterSize)
	l.l2Index = make([]int64, l.l1Entries)
	for i := range l.l2Index {
		l.l2Index[i] = -1
	}
	// Data area: plain clusters cluster-aligned, compressed ones packed
	// back to back (they may straddle host clusters, as qemu allows).
	// Every host cluster a compressed range touches counts one reference.
	var pos int64
	for c, n := range clen {
		if n == notStored {
			continue
		}
		if i := int64(c) / l2Entries; l.l2Index[i] < 0 {
			l.l2Index[i] = l.l2Clusters
			l.l2Clusters++
		}
		if n == stored {
			pos = ceilDiv(pos, clusterSize) * clusterSize
			l.rel[c] = pos
			l.addRefs(pos, pos+clusterSize)
			pos += clusterSize
			continue
		}
		l.rel[c] = pos
		// The sectors qemu reads: from the one holding the start to the
		// one holding the last byte.
		l.addRefs(pos&^511, ((pos+int64(n)-1)|511)+1)
		pos += int64(n)
	}
	l.dataClusters = ceilDiv(pos, clusterSize)
	// The refcount structures must cover themselves: grow until stable.
	fixed := 1 + l.l1Clusters + l.l2Clusters + l.dataClusters
	l.rbClusters, l.rtClusters = 1, 1
	for {
		total := fixed + l.rtClusters + l.rbClusters
		rb := ceilDiv(total, refsPerBlock)
		rt := ceilDiv(rb*8, clusterSize)
		if rb == l.rbClusters && rt == l.rtClusters {
			l.totalClusters = total
			break
		}
		l.rbClusters, l.rtClusters = rb, rt
	}
	l.l1Off = 1
	l.rtOff = l.l1Off + l.l1Clusters
	l.rbOff = l.rtOff + l.rtClusters
	l.l2Off = l.rbOff + l.rbClusters
	l.dataOff = l.l2Off + l.l2Clusters
	return l
}

// addRefs counts one reference to each data-area cluster in [from, to).
func (l *layout) addRefs(from, to int64) {
	for c := from / clusterSize; c <= (to-1)/clusterSize; c++ {
		for int64(len(l.dataRefs)) <= c {
			l.dataRefs = append(l.dataRefs, 0)
		}
		l.dataRefs[c]++
	}
}

// l2Entry is the L2 table entry of stored guest cluster c.
func (l *layout) l2Entry(c int) uint64 {
	host := uint64(l.dataOff*clusterSize + l.rel[c])
	n := l.clen[c]
	if n == stored {
		return host | flagCopied
	}
	// Compressed descriptor: host byte offset in bits 0..53, the number
	// of sectors after the first in bits 54..61, flag bit 62.
	extra := uint64((int64(host)+int64(n)-1)>>9 - int64(host)>>9)
	return flagCompressed | extra<<compressedShift | host
}

func (l *layout) writeMetadata(w io.Writer) error {
	if err := l.writeHeader(w); err != nil {
		return err
	}
	// L1 table.
	l1 := make([]byte, l.l1Clusters*clusterSize)
	for i, ord := range l.l2Index {
		if ord >= 0 {
			binary.BigEndian.PutUint64(l1[i*8:], uint64(l.l2Off+ord)*clusterSize|flagCopied)
		}
	}
	if _, err := w.Write(l1); err != nil {
		return err
	}
	// Refcount table.
	rt := make([]byte, l.rtClusters*clusterSize)
	for i := int64(0); i < l.rbClusters; i++ {
		binary.BigEndian.PutUint64(rt[i*8:], uint64(l.rbOff+i)*clusterSize)
	}
	if _, err := w.Write(rt); err != nil {
		return err
	}
	// Refcount blocks: metadata clusters once each, then the data area.
	rb := make([]byte, l.rbClusters*clusterSize)
	for c := int64(0); c < l.dataOff; c++ {
		binary.BigEndian.PutUint16(rb[c*2:], 1)
	}
	for i, r := range l.dataRefs {
		binary.BigEndian.PutUint16(rb[(l.dataOff+int64(i))*2:], r)
	}
	if _, err := w.Write(rb); err != nil {
		return err
	}
	// L2 tables, in L1 order.
	l2 := make([]byte, clusterSize)
	for i, ord := range l.l2Index {
		if ord < 0 {
			continue
		}
		clear(l2)
		for j := 0; j < l2Entries; j++ {
			c := i*l2Entries + j
			if c >= len(l.clen) {
				break
			}
			if l.clen[c] != notStored {
				binary.BigEndian.PutUint64(l2[j*8:], l.l2Entry(c))
			}
		}
		if _, err := w.Write(l2); err != nil {
			return err
		}
	}
	return nil
}

// featureNames is the optional table that lets tools name feature bits.
var featureNames = []struct {
	typ  byte // 0 incompatible, 1 compatible, 2 autoclear
	bit  byte
	name string
}{
	{0, 0, "dirty bit"},
	{0, 1, "corrupt bit"},
	{0, 2, "external data file"},
	{0, 3, "compression type"},
	{0, 4, "extended L2 entries"},
	{1, 0, "lazy refcounts"},
	{2, 0, "bitmaps"},
	{2, 1, "raw external data"},
}

func (l *layout) writeHeader(w io.Writer) error {
	h := make([]byte, clusterSize)
	be := binary.BigEndian
	copy(h[0:], "QFI\xfb")
	be.PutUint32(h[4:], 3)            // version
	be.PutUint64(h[8:], 0)            // backing_file_offset
	be.PutUint32(h[16:], 0)           // backing_file_size
	be.PutUint32(h[20:], clusterBits) // cluster_bits
	be.PutUint64(h[24:], uint64(l.size))
	be.PutUint32(h[32:], 0) // crypt_method
	be.PutUint32(h[36:], uint32(l.l1Entries))
	be.PutUint64(h[40:], uint64(l.l1Off)*clusterSize)
	be.PutUint64(h[48:], uint64(l.rtOff)*clusterSize)
	be.PutUint32(h[56:], uint32(l.rtClusters))
	be.PutUint32(h[60:], 0) // nb_snapshots
	be.PutUint64(h[64:], 0) // snapshots_offset
	be.PutUint64(h[72:], 0) // incompatible_features
	be.PutUint64(h[80:], 0) // compatible_features
	be.PutUint64(h[88:], 0) // autoclear_features
	be.PutUint32(h[96:], 4) // refcount_order
	be.PutUint32(h[100:], headerLength)

	off := headerLength
	// Feature name table extension: 48 bytes per entry.
	be.PutUint32(h[off:], extFeatureName)
	be.PutUint32(h[off+4:], uint32(48*len(featureNames)))
	off += 8
	for _, f := range featureNames {
		h[off] = f.typ
		h[off+1] = f.bit
		copy(h[off+2:off+48], f.name)
		off += 48
	}
	// End of header extensions.
	be.PutUint32(h[off:], extEnd)
	be.PutUint32(h[off+4:], 0)
	_, err := w.Write(h)
	return err
}
