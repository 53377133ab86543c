package squashfs

import (
	"fmt"

	"github.com/kilnproject/kiln/builder/fstree"
)

// dirEntry is one child as it will appear in its parent's listing.
type dirEntry struct {
	name string
	ref  uint64 // inode reference: block << 16 | offset
	ino  uint32
	typ  uint16
}

// dirIndex lets the kernel skip ahead in a long listing: it names the first
// entry of a header that starts in a new metadata block.
type dirIndex struct {
	index uint32 // offset of the header in the listing
	start uint32 // directory-table offset of the metadata block holding it
	name  string
}

// writeDir writes the subtree of e depth-first (children's inodes and
// listings first, since the listing needs their references), then e's
// listing and inode. parent is the inode number ".." resolves to.
func (iw *imageWriter) writeDir(e *fstree.Entry, parent uint32) (uint64, error) {
	self := iw.inum[e.Path]
	kids := iw.children[e.Path]
	ents := make([]dirEntry, 0, len(kids))
	subdirs := uint32(0)
	for _, c := range kids {
		var ref uint64
		var err error
		if c.Kind == fstree.Dir {
			ref, err = iw.writeDir(c, self)
			subdirs++
		} else {
			ref, err = iw.writeLeaf(c)
		}
		if err != nil {
			return 0, err
		}
		ents = append(ents, dirEntry{name: c.Name(), ref: ref, ino: iw.inum[c.Path], typ: basicType(c.Kind)})
	}

	startBlock, startOff := iw.dirs.ref()
	startPos := iw.dirs.uncompressedPos()
	lastBlock := startPos / metaSize
	var index []dirIndex
	for i := 0; i < len(ents); {
		// One header covers up to 256 entries whose inodes share a metadata
		// block and whose numbers fit a signed 16-bit offset from the first.
		base, blk := ents[i].ino, ents[i].ref>>16
		j := i + 1
		for j < len(ents) && j-i < maxDirCount && ents[j].ref>>16 == blk {
			d := int64(ents[j].ino) - int64(base)
			if d < -32768 || d > 32767 {
				break
			}
			j++
		}
		pos := iw.dirs.uncompressedPos()
		if pos/metaSize != lastBlock {
			b, _ := iw.dirs.ref()
			index = append(index, dirIndex{index: uint32(pos - startPos), start: uint32(b), name: ents[i].name})
			lastBlock = pos / metaSize
		}
		h := enc(make([]byte, 0, dirHeaderSize)).u32(uint32(j - i - 1)).u32(uint32(blk)).u32(base)
		iw.dirs.write(h)
		for _, d := range ents[i:j] {
			b := enc(make([]byte, 0, dirEntryBaseSize+len(d.name))).
				u16(uint16(d.ref & 0xffff)).u16(uint16(int16(int64(d.ino) - int64(base)))).u16(d.typ).u16(uint16(len(d.name) - 1))
			iw.dirs.write(append(b, d.name...))
		}
		i = j
	}
	// The size counts the "." and ".." entries the kernel synthesises.
	size := iw.dirs.uncompressedPos() - startPos + 3
	if startBlock > 0xFFFFFFFF {
		return 0, fmt.Errorf("squashfs: %s: directory table exceeds 4 GiB", e.Path)
	}

	if len(index) == 0 && size <= 0xFFFF {
		b := iw.header(e, typeDir).u32(uint32(startBlock)).u32(2 + subdirs).u16(uint16(size)).u16(startOff).u32(parent)
		return iw.addInode(e, b), nil
	}
	if size > 0xFFFFFFFF || len(index) > 0xFFFF {
		return 0, fmt.Errorf("squashfs: %s: directory listing of %d bytes is too large", e.Path, size)
	}
	b := iw.header(e, typeLDir).u32(2 + subdirs).u32(uint32(size)).u32(uint32(startBlock)).u32(parent).
		u16(uint16(len(index))).u16(startOff).u32(noXattr)
	for _, x := range index {
		b = b.u32(x.index).u32(x.start).u32(uint32(len(x.name) - 1))
		b = append(b, x.name...)
	}
	return iw.addInode(e, b), nil
}
