// Package fat writes FAT12, FAT16 and FAT32 filesystem images from an
// fstree.Tree, deterministically: the same tree and options give the same
// bytes. It is used for the EFI system partition and the El Torito EFI image.
//
// Layout choices: two FATs, media byte 0xF8, 512-byte sectors, every file and
// directory in one contiguous cluster run allocated in tree order (boot
// loaders such as syslinux need files they can address by sector), VFAT long
// names with upper-case 8.3 aliases ("~N" tails), or an exact 8.3 name with
// the NT lower-case bits when the name allows it.
package fat

import (
	"encoding/binary"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"unicode/utf16"

	"github.com/kilnproject/kiln/builder/fstree"
)

// Directory entry attribute bits.
const (
	AttrReadOnly  = 0x01
	AttrHidden    = 0x02
	AttrSystem    = 0x04
	AttrVolumeID  = 0x08
	AttrDirectory = 0x10
	AttrArchive   = 0x20
	attrLFN       = 0x0F
)

// Options describe the volume to write.
type Options struct {
	Size     int64  // image size in bytes (multiple of 512)
	Label    string // volume label, e.g. "EFI" or "KILN-ESP" (upper-cased; at most 11 characters)
	VolumeID uint32 // serial number; the caller derives it from names so it is deterministic
	ModTime  int64  // every timestamp, Unix seconds (UTC), clamped to the FAT range 1980-2107
	FATType  int    // 0 = pick by size (12/16/32), or force 12, 16, 32

	// Attributes replaces the attribute byte of the entries at these tree
	// paths, e.g. {"ldlinux.sys": AttrReadOnly|AttrHidden|AttrSystem}.
	// The directory bit of directories is kept.
	Attributes map[string]uint8

	// HiddenSectors is the BPB count of sectors before the volume: the
	// partition's start LBA when the image goes into a partition. BIOS boot
	// code (syslinux) adds it to every sector number it reads.
	HiddenSectors uint32
}

// node is one tree entry placed on the volume.
type node struct {
	e         *fstree.Entry
	short     [11]byte
	ntCase    byte
	long      []uint16 // nil when the 8.3 name says it all
	attr      byte
	cluster   uint32 // first cluster, 0 for empty files and the FAT12/16 root
	nclusters uint32
	children  []*node
	parent    *node
	dirBytes  []byte // encoded entries of a directory
}

// Write writes the volume holding t to [0, o.Size) of w.
func Write(w io.WriterAt, t *fstree.Tree, o Options) error {
	label, err := volumeLabel(o.Label)
	if err != nil {
		return err
	}
	ft := o.FATType
	if ft == 0 {
		ft = autoType(o.Size)
	}
	nodes, root, err := buildNodes(t, o)
	if err != nil {
		return err
	}
	rootNeed := rootEntryCount(t, label != "")
	g, err := layoutFor(o.Size, ft, rootNeed)
	if err != nil {
		return err
	}
	if ft != 32 && rootNeed > int(g.rootEntries) {
		return fmt.Errorf("fat: root directory needs %d entries, FAT%d allows %d", rootNeed, ft, g.rootEntries)
	}
	if err := allocate(nodes, g, o.Size, label != ""); err != nil {
		return err
	}
	ts := dosTime(o.ModTime)
	for _, n := range nodes {
		if n.e.Kind == fstree.Dir {
			n.dirBytes = encodeDir(n, n == root, label, ts)
		}
	}

	out := &seqWriter{w: w}
	if err := out.write(bootRegion(g, o, label, nodes)); err != nil {
		return err
	}
	fat := encodeFAT(g, nodes)
	for i := uint32(0); i < g.numFATs; i++ {
		if err := out.write(fat); err != nil {
			return err
		}
	}
	if ft != 32 {
		rd := make([]byte, g.rootSectors*sectorSize)
		copy(rd, root.dirBytes)
		if err := out.write(rd); err != nil {
			return err
		}
	}
	for _, n := range nodes {
		if n.nclusters == 0 {
			continue
		}
		if err := out.zeroTo(g.clusterOffset(n.cluster)); err != nil {
			return err
		}
		if n.e.Kind == fstree.Dir {
			err = out.write(n.dirBytes)
		} else {
			err = writeFile(out, n.e)
		}
		if err != nil {
			return err
		}
		if err := out.zeroTo(g.clusterOffset(n.cluster + n.nclusters)); err != nil {
			return err
		}
	}
	return out.zeroTo(o.Size)
}

// buildNodes checks the tree and names every entry. Nodes come back in tree
// order (parents first), which is also the allocation order.
func buildNodes(t *fstree.Tree, o Options) ([]*node, *node, error) {
	byPath := map[string]*node{}
	var nodes []*node
	for _, e := range t.Entries() {
		switch e.Kind {
		case fstree.File, fstree.Dir:
		default:
			return nil, nil, fmt.Errorf("fat: %s: a %s cannot be stored on FAT", e.Path, e.Kind)
		}
		if e.Kind == fstree.File && e.Size() > 0xFFFFFFFF {
			return nil, nil, fmt.Errorf("fat: %s: %d bytes exceeds the FAT file size limit of 4 GiB - 1", e.Path, e.Size())
		}
		n := &node{e: e, attr: AttrArchive}
		if e.Kind == fstree.Dir {
			n.attr = AttrDirectory
		}
		if e.Path != "" {
			n.parent = byPath[parentPath(e.Path)]
			n.parent.children = append(n.parent.children, n)
		}
		byPath[e.Path] = n
		nodes = append(nodes, n)
	}
	for _, p := range slices.Sorted(maps.Keys(o.Attributes)) { // sorted: the same error every time
		a := o.Attributes[p]
		n := byPath[fstree.Clean(p)]
		if n == nil || n.e.Path == "" {
			return nil, nil, fmt.Errorf("fat: Options.Attributes: %q is not a file or directory in the tree", p)
		}
		if a&(AttrVolumeID|AttrDirectory) != 0 {
			return nil, nil, fmt.Errorf("fat: Options.Attributes[%q] = %#x: the volume and directory bits cannot be set", p, a)
		}
		n.attr = a | n.attr&AttrDirectory
	}
	for _, n := range nodes {
		if n.e.Kind == fstree.Dir {
			if err := nameChildren(n); err != nil {
				return nil, nil, err
			}
		}
	}
	return nodes, nodes[0], nil
}

func parentPath(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[:i]
	}
	return ""
}

// nameChildren gives every child of dir its 8.3 name and, if needed, its long
// name. Exact 8.3 names are claimed first so generated aliases avoid them.
func nameChildren(dir *node) error {
	used := map[[11]byte]bool{}
	seen := map[string]string{}
	for _, c := range dir.children {
		name := c.e.Name()
		if err := validLongName(name); err != nil {
			return fmt.Errorf("fat: %s: %v", c.e.Path, err)
		}
		key := strings.ToUpper(name)
		if other, ok := seen[key]; ok {
			return fmt.Errorf("fat: %s and %s differ only in case, which FAT cannot store", other, c.e.Path)
		}
		seen[key] = c.e.Path
		if s, nt, ok := exactShort(name); ok {
			c.short, c.ntCase = s, nt
			used[s] = true
		}
	}
	for _, c := range dir.children {
		name := c.e.Name()
		if _, _, ok := exactShort(name); ok {
			continue
		}
		s, err := uniqueShort(name, used)
		if err != nil {
			return fmt.Errorf("fat: %s: %v", c.e.Path, err)
		}
		used[s] = true
		c.short = s
		c.long = utf16.Encode([]rune(name))
	}
	if n := dirEntries(dir, false); n > 65536 {
		return fmt.Errorf("fat: directory %q needs %d entries, FAT allows 65536", dir.e.Path, n)
	}
	return nil
}

// dirEntries counts the 32-byte entries of a directory.
func dirEntries(dir *node, withLabel bool) int {
	n := 0
	if dir.e.Path != "" {
		n = 2 // "." and ".."
	}
	if withLabel {
		n++
	}
	for _, c := range dir.children {
		n += 1 + lfnSlots(len(c.long))
	}
	return n
}

// rootEntryCount counts the root directory's entries without naming them
// (aliases never change the count).
func rootEntryCount(t *fstree.Tree, withLabel bool) int {
	n := 0
	if withLabel {
		n++
	}
	for _, c := range t.Children("") {
		n += entriesFor(c.Name())
	}
	return n
}

// allocate gives every directory and non-empty file a contiguous cluster run,
// in tree order, and checks that everything fits.
func allocate(nodes []*node, g *geometry, size int64, withLabel bool) error {
	cb := g.clusterBytes()
	capacity := int64(g.clusters) * cb
	next := uint32(2)
	var used int64
	for _, n := range nodes {
		var bytes int64
		switch {
		case n.e.Kind == fstree.Dir && n.e.Path == "" && g.fatType != 32:
			continue // fixed root directory region
		case n.e.Kind == fstree.Dir:
			bytes = max(int64(dirEntries(n, withLabel && n.e.Path == "")), 1) * 32
		default:
			bytes = n.e.Size()
			if bytes > capacity {
				return fmt.Errorf("fat: %s is %d bytes, larger than the %d-byte data area of the %d-byte FAT%d image",
					n.e.Path, bytes, capacity, size, g.fatType)
			}
		}
		if bytes == 0 {
			continue
		}
		k := uint32((bytes + cb - 1) / cb)
		used += int64(k) * cb
		if int64(next-2)+int64(k) > int64(g.clusters) {
			return fmt.Errorf("fat: the tree does not fit: %s needs %d clusters, only %d of %d remain in the %d-byte FAT%d image (use MinSize)",
				pathOrRoot(n.e.Path), k, g.clusters-(next-2), g.clusters, size, g.fatType)
		}
		n.cluster, n.nclusters = next, k
		next += k
	}
	return nil
}

func pathOrRoot(p string) string {
	if p == "" {
		return "the root directory"
	}
	return p
}

// writeFile copies a file's content, which must still have the size the
// tree recorded (the layout depends on it).
func writeFile(out *seqWriter, e *fstree.Entry) error {
	rc, err := e.Open()
	if err != nil {
		return fmt.Errorf("fat: %s: %w", e.Path, err)
	}
	defer rc.Close()
	n, err := io.Copy(out, io.LimitReader(rc, e.Size()+1))
	if err != nil {
		return fmt.Errorf("fat: %s: %w", e.Path, err)
	}
	if n != e.Size() {
		return fmt.Errorf("fat: %s: read %d bytes, the tree says %d (did the source file change?)", e.Path, n, e.Size())
	}
	return nil
}

// volumeLabel validates and pads the label; "" means no label.
func volumeLabel(l string) (string, error) {
	if l == "" {
		return "", nil
	}
	u := strings.ToUpper(l)
	if len(u) > 11 {
		return "", fmt.Errorf("fat: volume label %q is longer than 11 characters", l)
	}
	for i := 0; i < len(u); i++ {
		if u[i] != ' ' && !shortChar(u[i]) {
			return "", fmt.Errorf("fat: volume label %q contains %q, which FAT labels do not allow", l, u[i])
		}
	}
	return fmt.Sprintf("%-11s", u), nil
}

// seqWriter writes an io.WriterAt front to back.
type seqWriter struct {
	w   io.WriterAt
	off int64
}

func (s *seqWriter) Write(p []byte) (int, error) {
	n, err := s.w.WriteAt(p, s.off)
	s.off += int64(n)
	return n, err
}

func (s *seqWriter) write(p []byte) error {
	_, err := s.Write(p)
	return err
}

var zeros = make([]byte, 1<<20)

// zeroTo fills the gap up to off with zeros, so stale bytes never leak into
// the image.
func (s *seqWriter) zeroTo(off int64) error {
	for s.off < off {
		n := min(off-s.off, int64(len(zeros)))
		if err := s.write(zeros[:n]); err != nil {
			return err
		}
	}
	return nil
}

var le = binary.LittleEndian
