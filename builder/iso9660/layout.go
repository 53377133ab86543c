package iso9660

import (
	"fmt"
	"time"

	"github.com/kilnproject/kiln/builder/fstree"
)

// layout is where everything goes, in 2048-byte blocks.
type layout struct {
	root        *node
	dirs        []*node // path table order
	hasBoot     bool
	ptSize      int
	ptL, ptM    uint32
	ceBase      uint32
	ceBlocks    int
	areas       []*suArea
	files       []*node // nodes with content, in block order
	dataEnd     uint32
	totalBlocks uint32
}

func layOut(root *node, cat *node, mtime time.Time) (*layout, error) {
	l := &layout{root: root, hasBoot: cat != nil}
	l.dirs = dirsInPathTableOrder(root)
	if len(l.dirs) > 0xFFFF {
		return nil, fmt.Errorf("iso9660: %d directories, the path table holds at most 65535", len(l.dirs))
	}
	// serial numbers for RRIP PX, in directory then name order
	serial := uint32(0)
	var number func(n *node)
	number = func(n *node) {
		serial++
		n.serial = serial
		for _, k := range n.kids {
			number(k)
		}
	}
	number(root)
	planRockRidge(l.dirs, mtime)

	for _, d := range l.dirs {
		l.ptSize += 8 + len(d.id()) + len(d.id())%2
	}
	lba := uint32(systemArea + 2) // PVD, terminator
	if l.hasBoot {
		lba++
	}
	ptBlocks := uint32(blocks(int64(l.ptSize)))
	l.ptL, l.ptM = lba, lba+ptBlocks
	lba += 2 * ptBlocks
	for _, d := range l.dirs {
		d.lba = lba
		n := uint32(blocks(int64(d.dirBytes)))
		d.length = n * blockSize
		lba += n
	}

	// continuation areas, packed so none crosses a block
	blk, off := 0, 0
	alloc := func(p suPlan) {
		for a := p.cont; a != nil; a = a.next {
			if off+a.size() > blockSize {
				blk, off = blk+1, 0
			}
			a.blk, a.off = blk, off
			off += a.size()
			l.areas = append(l.areas, a)
		}
	}
	for _, d := range l.dirs {
		alloc(d.dot)
		alloc(d.dotdot)
		for _, k := range d.listed() {
			alloc(k.rec)
		}
	}
	if len(l.areas) > 0 {
		l.ceBlocks = blk + 1
	}
	l.ceBase = lba
	lba += uint32(l.ceBlocks)

	if cat != nil && cat.hidden {
		cat.lba, cat.length = lba, blockSize
		l.files = append(l.files, cat)
		lba++
	}
	var place func(d *node) error
	place = func(d *node) error {
		for _, k := range d.kids {
			if k.isDir() {
				continue
			}
			if k.e.Kind != fstree.File {
				continue
			}
			size := k.e.Size()
			if k.content != nil {
				size = int64(len(k.content))
			}
			if size == 0 {
				continue
			}
			k.lba, k.length = lba, uint32(size)
			l.files = append(l.files, k)
			next := int64(lba) + blocks(size)
			if next > 0xFFFFFFFF {
				return fmt.Errorf("iso9660: %s: image exceeds 2^32 blocks", k.e.Path)
			}
			lba = uint32(next)
		}
		for _, k := range d.kids {
			if k.isDir() {
				if err := place(k); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := place(root); err != nil {
		return nil, err
	}
	l.dataEnd = lba
	return l, nil
}
