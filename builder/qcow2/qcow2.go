// Package qcow2 writes a raw disk image as a sparse qcow2 (version 3) image.
//
// The layout is computed up front so the image can be streamed to any
// io.Writer: header, L1 table, refcount table, refcount blocks, L2 tables,
// then the data clusters in guest order. All-zero clusters are not stored;
// every stored cluster has refcount 1, so L1/L2 entries carry the COPIED flag.
package qcow2

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

const (
	clusterBits  = 16
	clusterSize  = 1 << clusterBits // 64 KiB
	refcountBits = 16               // refcount_order 4
	l2Entries    = clusterSize / 8
	refsPerBlock = clusterSize * 8 / refcountBits
	headerLength = 104 // version 3 header without the optional compression_type field

	flagCopied = uint64(1) << 63

	extEnd         = 0x00000000
	extFeatureName = 0x6803f857
)

// Write streams src (size bytes of raw disk) to dst as a qcow2 v3 image with
// 64 KiB clusters. The virtual size is size rounded up to a 512-byte sector
// (qemu truncates anything finer); it need not be a multiple of the cluster
// size, the tail of the last cluster is stored as zeros.
func Write(dst io.Writer, src io.ReaderAt, size int64) error {
	if size <= 0 {
		return fmt.Errorf("qcow2: virtual size %d must be positive", size)
	}
	used, err := scanClusters(src, size)
	if err != nil {
		return err
	}
	l := plan((size+511)&^511, used)
	w := bufio.NewWriterSize(dst, 1<<20)
	if err := l.writeMetadata(w); err != nil {
		return fmt.Errorf("qcow2: writing metadata: %w", err)
	}
	buf := make([]byte, clusterSize)
	for c, u := range used {
		if !u {
			continue
		}
		if err := readCluster(src, size, int64(c), buf); err != nil {
			return err
		}
		if _, err := w.Write(buf); err != nil {
			return fmt.Errorf("qcow2: writing cluster %d: %w", c, err)
		}
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("qcow2: flushing output: %w", err)
	}
	return nil
}

// readCluster reads guest cluster c into buf, zero-filling past the end of src.
func readCluster(src io.ReaderAt, size, c int64, buf []byte) error {
	off := c * clusterSize
	n := int64(len(buf))
	if off+n > size {
		n = size - off
	}
	clear(buf[n:])
	got, err := src.ReadAt(buf[:n], off)
	if got < int(n) {
		if err == nil || errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return fmt.Errorf("qcow2: reading source at offset %d: %w", off, err)
	}
	return nil
}

// scanClusters reports, per guest cluster, whether it holds any non-zero byte.
func scanClusters(src io.ReaderAt, size int64) ([]bool, error) {
	n := (size + clusterSize - 1) / clusterSize
	used := make([]bool, n)
	buf := make([]byte, clusterSize)
	for c := int64(0); c < n; c++ {
		if err := readCluster(src, size, c, buf); err != nil {
			return nil, err
		}
		used[c] = !allZero(buf)
	}
	return used, nil
}

func allZero(b []byte) bool {
	for len(b) >= 8 {
		if binary.LittleEndian.Uint64(b) != 0 {
			return false
		}
		b = b[8:]
	}
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}

// layout is where every structure lives in the output, in cluster numbers.
type layout struct {
	size          int64
	used          []bool
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

func plan(size int64, used []bool) *layout {
	l := &layout{size: size, used: used}
	l.l1Entries = ceilDiv(int64(len(used)), l2Entries)
	l.l1Clusters = ceilDiv(l.l1Entries*8, clusterSize)
	l.l2Index = make([]int64, l.l1Entries)
	for i := range l.l2Index {
		l.l2Index[i] = -1
	}
	for c, u := range used {
		if !u {
			continue
		}
		l.dataClusters++
		if i := int64(c) / l2Entries; l.l2Index[i] < 0 {
			l.l2Index[i] = l.l2Clusters
			l.l2Clusters++
		}
	}
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
	// Refcount blocks: every cluster up to totalClusters is used exactly once.
	rb := make([]byte, l.rbClusters*clusterSize)
	for c := int64(0); c < l.totalClusters; c++ {
		binary.BigEndian.PutUint16(rb[c*2:], 1)
	}
	if _, err := w.Write(rb); err != nil {
		return err
	}
	// L2 tables, in L1 order; data clusters follow in guest order.
	next := l.dataOff
	l2 := make([]byte, clusterSize)
	for i, ord := range l.l2Index {
		if ord < 0 {
			continue
		}
		clear(l2)
		for j := int64(0); j < l2Entries; j++ {
			c := int64(i)*l2Entries + j
			if c >= int64(len(l.used)) {
				break
			}
			if l.used[c] {
				binary.BigEndian.PutUint64(l2[j*8:], uint64(next)*clusterSize|flagCopied)
				next++
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
