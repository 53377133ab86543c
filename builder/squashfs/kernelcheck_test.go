package squashfs

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// checkKernelLayout re-reads an image the way Linux 6.1's fs/squashfs does at
// mount and lookup time, since no kernel mount is possible here: the table
// sanity checks of super.c/id.c/export.c/fragment.c, a zstd window no larger
// than max(block size, 8 KiB), sorted directory entries, headers of at most
// 256 entries sharing one inode block, directory index entries that land on
// headers, link counts and ".." numbers.
func checkKernelLayout(t *testing.T, img string) layoutStats {
	t.Helper()
	raw, err := os.ReadFile(img)
	must(t, err)
	k := &kreader{t: t, b: raw}
	le := binary.LittleEndian
	if le.Uint32(raw) != magic || le.Uint16(raw[28:]) != 4 || le.Uint16(raw[30:]) != 0 {
		t.Fatalf("not a squashfs 4.0 superblock")
	}
	inodes := le.Uint32(raw[4:])
	k.bs = le.Uint32(raw[12:])
	frags := le.Uint32(raw[16:])
	comp := le.Uint16(raw[20:])
	if 1<<le.Uint16(raw[22:]) != k.bs {
		t.Fatalf("block_log %d does not match block_size %d", le.Uint16(raw[22:]), k.bs)
	}
	noIDs := uint64(le.Uint16(raw[26:]))
	root := le.Uint64(raw[32:])
	used := le.Uint64(raw[40:])
	idStart, xattr := le.Uint64(raw[48:]), le.Uint64(raw[56:])
	k.inodeStart, k.dirStart = le.Uint64(raw[64:]), le.Uint64(raw[72:])
	fragStart, lookup := le.Uint64(raw[80:]), le.Uint64(raw[88:])
	if used > uint64(len(raw)) || len(raw)%4096 != 0 {
		t.Fatalf("bytes_used %d, image %d bytes (want <= and padded to 4096)", used, len(raw))
	}
	if xattr != invalidTable {
		t.Fatalf("xattr table start %#x, want all ones", xattr)
	}
	switch comp {
	case compZstd:
		d, err := zstd.NewReader(nil, zstd.WithDecoderMaxWindow(uint64(max(k.bs, metaSize))), zstd.WithDecoderConcurrency(1))
		must(t, err)
		defer d.Close()
		k.decode = func(p []byte) ([]byte, error) { return d.DecodeAll(p, nil) }
	case compGzip:
		k.decode = func(p []byte) ([]byte, error) {
			r, err := zlib.NewReader(bytes.NewReader(p))
			if err != nil {
				return nil, err
			}
			return io.ReadAll(r)
		}
	default:
		t.Fatalf("compression id %d", comp)
	}

	next := used
	idTable := k.lookupTable("id", idStart, next, noIDs, 4, true)
	next = idTable[0]
	var export []uint64
	if lookup != invalidTable {
		export = k.lookupTable("export", lookup, next, uint64(inodes), 8, true)
		next = export[0]
	}
	var fragTable []uint64
	if frags > 0 {
		fragTable = k.lookupTable("fragment", fragStart, next, uint64(frags), 16, false)
		next = fragTable[0]
	}
	if k.dirStart > next || k.inodeStart >= k.dirStart {
		t.Fatalf("inode table %d, directory table %d, next table %d: out of order", k.inodeStart, k.dirStart, next)
	}
	k.inodes, k.inodeMap = k.metaRegion(k.inodeStart, k.dirStart)
	k.dirs, k.dirMap = k.metaRegion(k.dirStart, next)
	k.fragSizes = map[uint32]uint32{}
	for i := uint32(0); i < frags; i++ {
		blk := k.metaAt(fragTable[i*16/metaSize])
		off := i * 16 % metaSize
		k.fragSizes[i] = k.checkData(le.Uint64(blk[off:]), le.Uint32(blk[off+8:]), fmt.Sprintf("fragment %d", i))
	}

	k.seen = map[uint32]uint64{}
	rootIno := k.walkDir(root, 0, "/")
	if uint32(len(k.seen)) != inodes {
		t.Errorf("reached %d inodes, superblock says %d", len(k.seen), inodes)
	}
	if rootIno != inodes {
		t.Errorf("root inode number %d, want %d", rootIno, inodes)
	}
	if export != nil {
		for ino, ref := range k.seen {
			blk := k.metaAt(export[(ino-1)*8/metaSize])
			if got := le.Uint64(blk[(ino-1)*8%metaSize:]); got != ref {
				t.Errorf("export table: inode %d -> %#x, want %#x", ino, got, ref)
			}
		}
	}
	return k.stats
}

// layoutStats says which layout corners an image exercised.
type layoutStats struct {
	indexedDirs int // extended directory inodes with index entries
	sparseFiles int // files with at least one hole block
}

type kreader struct {
	t                *testing.T
	b                []byte
	bs               uint32
	decode           func([]byte) ([]byte, error)
	inodeStart       uint64
	dirStart         uint64
	inodes, dirs     []byte
	inodeMap, dirMap map[uint64]uint64 // block offset in table -> offset in payload
	fragSizes        map[uint32]uint32
	seen             map[uint32]uint64
	stats            layoutStats
}

// metaBlock decodes the metadata block at pos and returns payload and on-disk length.
func (k *kreader) metaBlock(pos uint64) ([]byte, uint64) {
	h := binary.LittleEndian.Uint16(k.b[pos:])
	n := uint64(h &^ metaRawBit)
	if n == 0 || n > metaSize {
		k.t.Fatalf("metadata block at %d: length %d", pos, n)
	}
	p := k.b[pos+2 : pos+2+n]
	if h&metaRawBit != 0 {
		return p, n + 2
	}
	out, err := k.decode(p)
	if err != nil || len(out) > metaSize {
		k.t.Fatalf("metadata block at %d: decode: %v (%d bytes)", pos, err, len(out))
	}
	return out, n + 2
}

func (k *kreader) metaAt(pos uint64) []byte { p, _ := k.metaBlock(pos); return p }

// metaRegion decodes consecutive metadata blocks in [start, end).
func (k *kreader) metaRegion(start, end uint64) ([]byte, map[uint64]uint64) {
	var out []byte
	m := map[uint64]uint64{}
	for pos := start; pos < end; {
		m[pos-start] = uint64(len(out))
		p, n := k.metaBlock(pos)
		if len(p) != metaSize && pos+n < end {
			k.t.Fatalf("short metadata block at %d in the middle of a table", pos)
		}
		out = append(out, p...)
		pos += n
	}
	return out, m
}

// lookupTable applies the checks of squashfs_read_{id,inode_lookup,fragment}_index_table.
func (k *kreader) lookupTable(what string, start, next, count, entry uint64, exact bool) []uint64 {
	blocks := (count*entry + metaSize - 1) / metaSize
	length := blocks * 8
	if count == 0 || (exact && length != next-start) || (!exact && start+length > next) {
		k.t.Fatalf("%s table: %d entries at %d, next table at %d: kernel rejects the length", what, count, start, next)
	}
	idx := make([]uint64, blocks)
	for i := range idx {
		idx[i] = binary.LittleEndian.Uint64(k.b[start+uint64(i)*8:])
	}
	for i := 0; i+1 < len(idx); i++ {
		if idx[i] >= idx[i+1] || idx[i+1]-idx[i] > metaSize+2 {
			k.t.Fatalf("%s table: index %d..%d not increasing by at most a block", what, idx[i], idx[i+1])
		}
	}
	if last := idx[len(idx)-1]; last >= start || start-last > metaSize+2 {
		k.t.Fatalf("%s table: last block %d too far from index %d", what, last, start)
	}
	return idx
}

// checkData decodes one data or fragment block within the kernel's window.
func (k *kreader) checkData(start uint64, size uint32, what string) uint32 {
	n := uint64(size &^ dataRawBit)
	if n > uint64(k.bs) || start+n > uint64(len(k.b)) {
		k.t.Fatalf("%s: block at %d of %d bytes is out of bounds", what, start, n)
	}
	if size&dataRawBit != 0 {
		return uint32(n)
	}
	out, err := k.decode(k.b[start : start+n])
	if err != nil || uint32(len(out)) > k.bs {
		k.t.Fatalf("%s: block at %d: decode: %v (%d bytes)", what, start, err, len(out))
	}
	return uint32(len(out))
}

func (k *kreader) inodeAt(ref uint64) []byte {
	u, ok := k.inodeMap[ref>>16]
	if !ok {
		k.t.Fatalf("inode ref %#x: no metadata block starts there", ref)
	}
	return k.inodes[u+ref&0xffff:]
}

// walkDir checks one directory inode and everything below it; it returns the inode number.
func (k *kreader) walkDir(ref uint64, parent uint32, name string) uint32 {
	le := binary.LittleEndian
	in := k.inodeAt(ref)
	typ, ino := le.Uint16(in), le.Uint32(in[12:])
	k.seen[ino] = ref
	var nlink, size, block, par uint32
	var offset uint16
	var index []byte
	var icount uint16
	switch typ {
	case typeDir:
		block, nlink, size, offset, par = le.Uint32(in[16:]), le.Uint32(in[20:]), uint32(le.Uint16(in[24:])), le.Uint16(in[26:]), le.Uint32(in[28:])
	case typeLDir:
		nlink, size, block, par = le.Uint32(in[16:]), le.Uint32(in[20:]), le.Uint32(in[24:]), le.Uint32(in[28:])
		icount, offset = le.Uint16(in[32:]), le.Uint16(in[34:])
		index = in[40:]
		if icount > 0 {
			k.stats.indexedDirs++
		}
	default:
		k.t.Fatalf("%s: type %d is not a directory", name, typ)
	}
	if parent != 0 && par != parent {
		k.t.Errorf("%s: parent inode %d, want %d", name, par, parent)
	}
	if size < 3 {
		k.t.Fatalf("%s: size %d < 3", name, size)
	}
	var start uint64
	if size > 3 {
		u, ok := k.dirMap[uint64(block)]
		if !ok {
			k.t.Fatalf("%s: directory block %d: no metadata block starts there", name, block)
		}
		start = u + uint64(offset)
	}
	// Index entries must land on headers, in the block they name.
	idxAt := map[uint64]string{}
	for i := 0; i < int(icount); i++ {
		pos, blk, n := le.Uint32(index), le.Uint32(index[4:]), le.Uint32(index[8:])+1
		u, ok := k.dirMap[uint64(blk)]
		if !ok || u+uint64((uint32(offset)+pos)%metaSize) != start+uint64(pos) {
			k.t.Errorf("%s: index %d (pos %d, block %d) does not match the listing", name, i, pos, blk)
		}
		idxAt[uint64(pos)] = string(index[12 : 12+n])
		index = index[12+n:]
	}
	l := k.dirs[start : start+uint64(size-3)]
	subdirs := uint32(0)
	prev := ""
	for len(l) > 0 {
		hpos := uint64(len(k.dirs[start:start+uint64(size-3)]) - len(l))
		count, iblk, base := le.Uint32(l)+1, le.Uint32(l[4:]), le.Uint32(l[8:])
		l = l[12:]
		if count > maxDirCount {
			k.t.Fatalf("%s: header with %d entries", name, count)
		}
		first := true
		for ; count > 0; count-- {
			off, delta, etyp, n := le.Uint16(l), int16(le.Uint16(l[2:])), le.Uint16(l[4:]), int(le.Uint16(l[6:]))+1
			ename := string(l[8 : 8+n])
			l = l[8+n:]
			if first {
				if want, ok := idxAt[hpos]; ok && want != ename {
					k.t.Errorf("%s: index names %q, header starts with %q", name, want, ename)
				}
				delete(idxAt, hpos)
				first = false
			}
			if ename <= prev {
				k.t.Errorf("%s: entry %q not after %q", name, ename, prev)
			}
			prev = ename
			cref := uint64(iblk)<<16 | uint64(off)
			cin := k.inodeAt(cref)
			ctyp, cino := le.Uint16(cin), le.Uint32(cin[12:])
			if cino != uint32(int64(base)+int64(delta)) {
				k.t.Errorf("%s/%s: entry says inode %d, inode says %d", name, ename, int64(base)+int64(delta), cino)
			}
			if basic := map[uint16]uint16{typeLDir: typeDir, typeLFile: typeFile}[ctyp]; basic != 0 {
				ctyp = basic
			}
			if ctyp != etyp {
				k.t.Errorf("%s/%s: entry type %d, inode type %d", name, ename, etyp, ctyp)
			}
			if etyp == typeDir {
				subdirs++
				k.walkDir(cref, ino, name+ename+"/")
				continue
			}
			k.seen[cino] = cref
			if etyp == typeFile {
				k.checkFile(cin, name+ename)
			}
		}
	}
	if len(idxAt) > 0 {
		k.t.Errorf("%s: index entries at %v do not start headers", name, idxAt)
	}
	if nlink != 2+subdirs {
		k.t.Errorf("%s: nlink %d, want %d", name, nlink, 2+subdirs)
	}
	return ino
}

// checkFile follows a file's block list and fragment the way file.c does.
func (k *kreader) checkFile(in []byte, name string) {
	le := binary.LittleEndian
	var start, size uint64
	var frag, off uint32
	var list []byte
	if le.Uint16(in) == typeLFile {
		start, size, frag, off, list = le.Uint64(in[16:]), le.Uint64(in[24:]), le.Uint32(in[44:]), le.Uint32(in[48:]), in[56:]
	} else {
		start, frag, off, size, list = uint64(le.Uint32(in[16:])), le.Uint32(in[20:]), le.Uint32(in[24:]), uint64(le.Uint32(in[28:])), in[32:]
	}
	blocks := size / uint64(k.bs)
	if frag == noFragment && size%uint64(k.bs) != 0 {
		blocks++
	}
	pos := start
	for i := uint64(0); i < blocks; i++ {
		s := le.Uint32(list[i*4:])
		if s == 0 {
			if i == 0 || le.Uint32(list[(i-1)*4:]) != 0 {
				k.stats.sparseFiles++
			}
			continue // hole
		}
		if got := k.checkData(pos, s, name); got != k.bs {
			k.t.Errorf("%s: block %d decodes to %d bytes, want %d", name, i, got, k.bs)
		}
		pos += uint64(s &^ dataRawBit)
	}
	if frag != noFragment {
		fsz, ok := k.fragSizes[frag]
		if !ok || uint64(off)+size%uint64(k.bs) > uint64(fsz) {
			k.t.Errorf("%s: tail at fragment %d offset %d runs past the fragment", name, frag, off)
		}
	}
}
