package iso9660

import (
	"fmt"
	"path"
	"sort"
	"time"

	"github.com/kilnproject/kiln/builder/fstree"
)

// node is one file or directory of the image with its primary name, Rock
// Ridge data and (after layout) its extent.
type node struct {
	e         *fstree.Entry
	base, ext string // primary identifier parts
	parent    *node
	kids      []*node // in ECMA-119 order
	hidden    bool    // allocated but not listed (boot catalog without a path)
	serial    uint32

	rec, dot, dotdot suPlan // system use of the record in the parent, "." and ".."
	dirNum           int    // path table number (1 = root)
	dirBytes         int    // directory extent size before rounding

	lba     uint32
	length  uint32
	content []byte // bytes written instead of e's content (patched isolinux.bin, catalog)
}

func (n *node) isDir() bool { return n.e.Kind == fstree.Dir }

// id is the recorded identifier bytes.
func (n *node) id() []byte {
	if n.parent == nil {
		return []byte{0}
	}
	return []byte(idString(n.base, n.ext, n.isDir()))
}

// buildTree turns the fstree into nodes; extra are synthetic files (the
// boot catalog) inserted at their paths, creating missing directories.
func buildTree(t *fstree.Tree, extra []*fstree.Entry) (*node, map[string]*node, error) {
	nodes := map[string]*node{}
	var add func(e *fstree.Entry) (*node, error)
	add = func(e *fstree.Entry) (*node, error) {
		n := &node{e: e}
		if e.Path != "" {
			dir := path.Dir(e.Path)
			if dir == "." {
				dir = ""
			}
			p := nodes[dir]
			if p == nil {
				var err error
				if p, err = add(&fstree.Entry{Path: dir, Kind: fstree.Dir, Perm: 0o755}); err != nil {
					return nil, err
				}
			}
			if !p.isDir() {
				return nil, fmt.Errorf("iso9660: %s: parent %s is not a directory", e.Path, p.e.Path)
			}
			n.parent = p
			p.kids = append(p.kids, n)
		}
		nodes[e.Path] = n
		return n, nil
	}
	for _, e := range t.Entries() {
		if e.Kind == fstree.File && e.Size() > 0xFFFFFFFF {
			return nil, nil, fmt.Errorf("iso9660: %s: %d bytes is over the 4 GiB - 1 limit of one extent", e.Path, e.Size())
		}
		if _, err := add(e); err != nil {
			return nil, nil, err
		}
	}
	for _, e := range extra {
		if nodes[e.Path] != nil {
			return nil, nil, fmt.Errorf("iso9660: %s: already in the tree, cannot place the boot catalog there", e.Path)
		}
		if _, err := add(e); err != nil {
			return nil, nil, err
		}
	}
	root := nodes[""]
	if root == nil || !root.isDir() {
		return nil, nil, fmt.Errorf("iso9660: tree has no root directory")
	}
	nameDir(root)
	return root, nodes, nil
}

// nameDir gives every child a unique primary name (in Rock Ridge name
// order, so the numbering is stable) and sorts children in ECMA-119 order.
func nameDir(d *node) {
	sort.Slice(d.kids, func(i, j int) bool { return d.kids[i].e.Name() < d.kids[j].e.Name() })
	used := map[string]bool{}
	for _, k := range d.kids {
		base, ext := primaryName(k.e.Name(), k.isDir())
		if k.hidden {
			continue
		}
		k.base, k.ext = uniqueName(base, ext, k.isDir(), used), ext
	}
	sort.SliceStable(d.kids, func(i, j int) bool {
		a, b := d.kids[i], d.kids[j]
		if a.base == b.base && a.ext == b.ext {
			return a.isDir() && !b.isDir()
		}
		return lessID(a.base, a.ext, b.base, b.ext)
	})
	for _, k := range d.kids {
		if k.isDir() {
			nameDir(k)
		}
	}
}

// dirsInPathTableOrder lists directories level by level, each level ordered
// by parent number then identifier (ECMA-119 6.9.1), and numbers them.
func dirsInPathTableOrder(root *node) []*node {
	out := []*node{root}
	for i := 0; i < len(out); i++ {
		out[i].dirNum = i + 1
		for _, k := range out[i].kids {
			if k.isDir() {
				out = append(out, k)
			}
		}
	}
	return out
}

// listed returns the children that get a directory record.
func (n *node) listed() []*node {
	var out []*node
	for _, k := range n.kids {
		if !k.hidden {
			out = append(out, k)
		}
	}
	return out
}

func nlink(n *node) uint32 {
	if !n.isDir() {
		return 1
	}
	c := uint32(2)
	for _, k := range n.kids {
		if k.isDir() {
			c++
		}
	}
	return c
}

// recordBase is the size of a directory record without system use.
func recordBase(idLen int) int {
	n := 33 + idLen
	if idLen%2 == 0 {
		n++
	}
	return n
}

// planRockRidge builds the SUSP entries of every record and sizes every directory.
func planRockRidge(dirs []*node, mtime time.Time) {
	rr := func(n *node) [][]byte {
		return [][]byte{pxEntry(posixMode(n.e), nlink(n), n.e.UID, n.e.GID, n.serial), tfEntry(mtime)}
	}
	plan := func(idLen int, es [][]byte) suPlan { return planSU(es, 254-recordBase(idLen)) }
	for _, d := range dirs {
		dotEntries := rr(d)
		if d.parent == nil {
			dotEntries = append([][]byte{spEntry()}, append(dotEntries, erEntry())...)
		}
		d.dot = plan(1, dotEntries)
		parent := d.parent
		if parent == nil {
			parent = d
		}
		d.dotdot = plan(1, rr(parent))
		for _, k := range d.kids {
			es := rr(k)
			if k.e.Kind == fstree.CharDev || k.e.Kind == fstree.BlockDev {
				es = append(es, pnEntry(k.e.Major, k.e.Minor))
			}
			es = append(es, nmEntries(k.e.Name())...)
			if k.e.Kind == fstree.Symlink {
				es = append(es, slEntries(k.e.Target)...)
			}
			k.rec = plan(len(k.id()), es)
		}
		// size the directory extent: records never cross a block boundary
		size := 0
		addRec := func(l int) {
			if size%blockSize+l > blockSize {
				size += blockSize - size%blockSize
			}
			size += l
		}
		addRec(recordLen(1, d.dot))
		addRec(recordLen(1, d.dotdot))
		for _, k := range d.listed() {
			addRec(recordLen(len(k.id()), k.rec))
		}
		d.dirBytes = size
	}
}

func recordLen(idLen int, p suPlan) int {
	n := recordBase(idLen) + p.inlineLen()
	return n + n%2
}
