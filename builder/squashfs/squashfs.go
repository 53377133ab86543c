// Package squashfs writes a deterministic squashfs 4.0 image from an
// fstree.Tree, in the layout the Linux kernel and squashfs-tools read:
// superblock, data blocks and fragments, inode table, directory table,
// fragment table, export table, id table.
//
// File data is streamed one block at a time; tails of every file are packed
// into shared fragment blocks; all-zero blocks become holes. Not written:
// xattrs, hard links (fstree has none), duplicate detection. The kernel
// refuses block sizes below its page size, so keep BlockSize >= 4096 on
// 4 KiB-page kernels (and >= 65536 for 64 KiB pages).
package squashfs

import (
	"fmt"
	"io"
	"io/fs"
	"math/bits"
	"path"
	"sort"

	"github.com/kilnproject/kiln/builder/fstree"
)

// Options control the image. The zero value is valid (zstd, 128 KiB blocks, time 0).
type Options struct {
	ModTime     int64  // seconds since epoch for every inode and the superblock
	Compression string // "zstd" (default) or "gzip"
	BlockSize   int    // default 131072
}

const defaultBlockSize = 128 << 10

// Write writes the image of t at offset 0 of w and returns its length, which
// is padded with zeros to a multiple of 4096 as mksquashfs does.
func Write(w io.WriterAt, t *fstree.Tree, o Options) (size int64, err error) {
	if o.BlockSize == 0 {
		o.BlockSize = defaultBlockSize
	}
	if o.BlockSize < 4096 || o.BlockSize > 1<<20 || o.BlockSize&(o.BlockSize-1) != 0 {
		return 0, fmt.Errorf("squashfs: Options.BlockSize %d: want a power of two from 4096 to 1048576", o.BlockSize)
	}
	if o.ModTime < 0 || o.ModTime > 0xFFFFFFFF {
		return 0, fmt.Errorf("squashfs: Options.ModTime %d: outside the unsigned 32-bit range squashfs stores", o.ModTime)
	}
	comp, err := newCompressor(o.Compression, o.BlockSize)
	if err != nil {
		return 0, err
	}
	iw := &imageWriter{
		w:         w,
		pos:       superSize,
		blockSize: o.BlockSize,
		mtime:     uint32(o.ModTime),
		comp:      comp,
		inodes:    newMetaWriter(comp),
		dirs:      newMetaWriter(comp),
		readBuf:   make([]byte, o.BlockSize),
		zeros:     make([]byte, o.BlockSize),
		fragBuf:   make([]byte, 0, o.BlockSize),
	}
	if err := iw.plan(t); err != nil {
		return 0, err
	}
	root := t.Get("")
	rootRef, err := iw.writeDir(root, iw.count+1)
	if err != nil {
		return 0, err
	}
	return iw.finish(rootRef)
}

// imageWriter holds the state of one Write call.
type imageWriter struct {
	w         io.WriterAt
	pos       int64 // where the next data block or table goes
	blockSize int
	mtime     uint32
	comp      compressor

	children map[string][]*fstree.Entry // sorted by name
	inum     map[string]uint32          // inode numbers, 1..count
	count    uint32
	ids      []uint32          // id table, ascending
	idIndex  map[uint32]uint16 // uid/gid -> index in ids

	inodes *metaWriter
	dirs   *metaWriter
	export []uint64 // inode reference by inode number - 1

	readBuf []byte
	zeros   []byte      // one block of zeros, to spot holes
	fragBuf []byte      // file tails waiting to fill a fragment block
	frags   []fragEntry // fragment blocks written so far
	scratch []byte
}

type fragEntry struct {
	start uint64
	size  uint32 // on-disk size, with dataRawBit if stored uncompressed
}

// plan checks the tree and assigns inode numbers and uid/gid indexes before
// anything is written: ".." entries need the parent's number up front.
func (iw *imageWriter) plan(t *fstree.Tree) error {
	root := t.Get("")
	if root == nil || root.Kind != fstree.Dir {
		return fmt.Errorf("squashfs: tree has no root directory")
	}
	iw.children = map[string][]*fstree.Entry{}
	idSet := map[uint32]bool{}
	for _, e := range t.Entries() {
		idSet[e.UID] = true
		idSet[e.GID] = true
		if e.Path == "" {
			continue
		}
		name := path.Base(e.Path)
		if len(name) > maxNameLen {
			return fmt.Errorf("squashfs: %s: name is %d bytes, squashfs allows %d", e.Path, len(name), maxNameLen)
		}
		parent := path.Dir(e.Path)
		if parent == "." {
			parent = ""
		}
		iw.children[parent] = append(iw.children[parent], e)
	}
	for _, kids := range iw.children {
		sort.Slice(kids, func(i, j int) bool { return path.Base(kids[i].Path) < path.Base(kids[j].Path) })
	}
	if len(idSet) > 0xFFFF {
		return fmt.Errorf("squashfs: tree uses %d distinct uids/gids, squashfs allows 65535", len(idSet))
	}
	for id := range idSet {
		iw.ids = append(iw.ids, id)
	}
	sort.Slice(iw.ids, func(i, j int) bool { return iw.ids[i] < iw.ids[j] })
	iw.idIndex = make(map[uint32]uint16, len(iw.ids))
	for i, id := range iw.ids {
		iw.idIndex[id] = uint16(i)
	}
	// Number inodes in the order they are written (children before their
	// directory), so numbers grow along the inode table.
	iw.inum = make(map[string]uint32, t.Len())
	var number func(dir string) error
	number = func(dir string) error {
		for _, c := range iw.children[dir] {
			if c.Kind == fstree.Dir {
				if err := number(c.Path); err != nil {
					return err
				}
				continue
			}
			iw.count++
			iw.inum[c.Path] = iw.count
		}
		if iw.count == 0xFFFFFFFE {
			return fmt.Errorf("squashfs: too many inodes")
		}
		iw.count++
		iw.inum[dir] = iw.count
		return nil
	}
	if err := number(""); err != nil {
		return err
	}
	iw.export = make([]uint64, iw.count)
	return nil
}

// mode is the inode's permission field: rwx bits plus setuid/setgid/sticky.
func mode(e *fstree.Entry) uint16 {
	m := uint16(e.Perm.Perm())
	if e.Perm&fs.ModeSetuid != 0 {
		m |= 0o4000
	}
	if e.Perm&fs.ModeSetgid != 0 {
		m |= 0o2000
	}
	if e.Perm&fs.ModeSticky != 0 {
		m |= 0o1000
	}
	if e.Kind == fstree.Symlink && m == 0 {
		m = 0o777
	}
	return m
}

func (iw *imageWriter) header(e *fstree.Entry, typ uint16) enc {
	return inodeHeader(typ, mode(e), iw.idIndex[e.UID], iw.idIndex[e.GID], iw.mtime, iw.inum[e.Path])
}

// addInode appends an inode to the inode table and returns its reference.
func (iw *imageWriter) addInode(e *fstree.Entry, b []byte) uint64 {
	blk, off := iw.inodes.ref()
	ref := blk<<16 | uint64(off)
	iw.inodes.write(b)
	iw.export[iw.inum[e.Path]-1] = ref
	return ref
}

// emit writes p at the current image position.
func (iw *imageWriter) emit(p []byte, what string) error {
	if _, err := iw.w.WriteAt(p, iw.pos); err != nil {
		return fmt.Errorf("squashfs: writing %s at offset %d: %w", what, iw.pos, err)
	}
	iw.pos += int64(len(p))
	return nil
}

// writeLeaf writes the inode (and data) of a non-directory entry.
func (iw *imageWriter) writeLeaf(e *fstree.Entry) (uint64, error) {
	switch e.Kind {
	case fstree.File:
		b, err := iw.writeFile(e)
		if err != nil {
			return 0, err
		}
		return iw.addInode(e, b), nil
	case fstree.Symlink:
		if e.Target == "" {
			return 0, fmt.Errorf("squashfs: %s: empty symlink target", e.Path)
		}
		if len(e.Target) > 4095 {
			return 0, fmt.Errorf("squashfs: %s: symlink target is %d bytes, the kernel reads at most 4095", e.Path, len(e.Target))
		}
		b := iw.header(e, typeSymlink).u32(1).u32(uint32(len(e.Target)))
		return iw.addInode(e, append(b, e.Target...)), nil
	case fstree.CharDev, fstree.BlockDev:
		if e.Major > 0xfff || e.Minor > 0xfffff {
			return 0, fmt.Errorf("squashfs: %s: device %d:%d does not fit squashfs's 32-bit rdev (major < 4096, minor < 1048576)", e.Path, e.Major, e.Minor)
		}
		typ := uint16(typeChrDev)
		if e.Kind == fstree.BlockDev {
			typ = typeBlkDev
		}
		b := iw.header(e, typ).u32(1).u32(encodeDev(e.Major, e.Minor))
		return iw.addInode(e, b), nil
	case fstree.FIFO:
		return iw.addInode(e, iw.header(e, typeFIFO).u32(1)), nil
	}
	return 0, fmt.Errorf("squashfs: %s: unsupported kind %s", e.Path, e.Kind)
}

// basicType is the type stored in directory entries.
func basicType(k fstree.Kind) uint16 {
	switch k {
	case fstree.Dir:
		return typeDir
	case fstree.File:
		return typeFile
	case fstree.Symlink:
		return typeSymlink
	case fstree.BlockDev:
		return typeBlkDev
	case fstree.CharDev:
		return typeChrDev
	default:
		return typeFIFO
	}
}

// finish writes the tables after the data, then the superblock, then padding.
func (iw *imageWriter) finish(rootRef uint64) (int64, error) {
	if err := iw.flushFragment(); err != nil {
		return 0, err
	}
	sb := superblock{
		inodes:      iw.count,
		mkfsTime:    iw.mtime,
		blockSize:   uint32(iw.blockSize),
		fragments:   uint32(len(iw.frags)),
		compression: iw.comp.id(),
		blockLog:    uint16(bits.TrailingZeros(uint(iw.blockSize))),
		flags:       flagNoXattrs | flagAlwaysFrags | flagExportable,
		noIDs:       uint16(len(iw.ids)),
		rootInode:   rootRef,
		xattrTable:  invalidTable,
	}
	inodes, err := iw.inodes.finish()
	if err != nil {
		return 0, fmt.Errorf("squashfs: compressing inode table: %w", err)
	}
	sb.inodeTable = uint64(iw.pos)
	if err := iw.emit(inodes, "inode table"); err != nil {
		return 0, err
	}
	dirs, err := iw.dirs.finish()
	if err != nil {
		return 0, fmt.Errorf("squashfs: compressing directory table: %w", err)
	}
	sb.dirTable = uint64(iw.pos)
	if err := iw.emit(dirs, "directory table"); err != nil {
		return 0, err
	}

	frag := make(enc, 0, len(iw.frags)*fragEntrySize)
	for _, f := range iw.frags {
		frag = frag.u64(f.start).u32(f.size).u32(0)
	}
	if sb.fragmentTable, err = iw.writeLookupTable(frag, "fragment table"); err != nil {
		return 0, err
	}
	exp := make(enc, 0, len(iw.export)*exportEntrySize)
	for _, r := range iw.export {
		exp = exp.u64(r)
	}
	if sb.exportTable, err = iw.writeLookupTable(exp, "export table"); err != nil {
		return 0, err
	}
	ids := make(enc, 0, len(iw.ids)*idEntrySize)
	for _, id := range iw.ids {
		ids = ids.u32(id)
	}
	if sb.idTable, err = iw.writeLookupTable(ids, "id table"); err != nil {
		return 0, err
	}
	sb.bytesUsed = uint64(iw.pos)

	end := iw.pos
	if pad := (imagePadding - end%imagePadding) % imagePadding; pad > 0 {
		if err := iw.emit(make([]byte, pad), "padding"); err != nil {
			return 0, err
		}
	}
	iw.pos = 0
	if err := iw.emit(sb.marshal(), "superblock"); err != nil {
		return 0, err
	}
	return end + (imagePadding-end%imagePadding)%imagePadding, nil
}

// writeLookupTable writes entries as metadata blocks followed by the index of
// their positions (what the superblock points at). Entry sizes divide 8 KiB,
// so blocks never split an entry. The kernel requires each index to end
// exactly where the next table starts.
func (iw *imageWriter) writeLookupTable(entries []byte, what string) (uint64, error) {
	m := newMetaWriter(iw.comp)
	m.write(entries)
	blocks, err := m.finish()
	if err != nil {
		return 0, fmt.Errorf("squashfs: compressing %s: %w", what, err)
	}
	base := uint64(iw.pos)
	if err := iw.emit(blocks, what); err != nil {
		return 0, err
	}
	index := make(enc, 0, 8*len(m.starts))
	for _, s := range m.starts {
		index = index.u64(base + s)
	}
	start := uint64(iw.pos)
	return start, iw.emit(index, what+" index")
}
