package fat

import (
	"fmt"
	"io"
	"strings"
	"unicode/utf16"
)

// Extent is a run of bytes of a file inside the image.
type Extent struct {
	Offset int64 // from the start of the image
	Length int64
}

// FileExtents returns where the bytes of the file at path (slash-separated,
// matched case-insensitively like FAT does) lie in the image, in file order.
// Boot loader installers (syslinux) need them to patch sector lists.
// An empty file has no extents.
func FileExtents(img io.ReaderAt, path string) ([]Extent, error) {
	v, err := openVolume(img)
	if err != nil {
		return nil, err
	}
	ent, err := v.lookup(path)
	if err != nil {
		return nil, err
	}
	if ent.attr&AttrDirectory != 0 {
		return nil, fmt.Errorf("fat: %s is a directory", path)
	}
	chain, err := v.chain(ent.cluster)
	if err != nil {
		return nil, fmt.Errorf("fat: %s: %v", path, err)
	}
	cb := v.g.clusterBytes()
	if int64(len(chain))*cb < int64(ent.size) {
		return nil, fmt.Errorf("fat: %s: %d bytes but its cluster chain holds only %d", path, ent.size, int64(len(chain))*cb)
	}
	var out []Extent
	left := int64(ent.size)
	for _, c := range chain {
		if left == 0 {
			break
		}
		n := min(left, cb)
		off := v.g.clusterOffset(c)
		if k := len(out); k > 0 && out[k-1].Offset+out[k-1].Length == off {
			out[k-1].Length += n
		} else {
			out = append(out, Extent{Offset: off, Length: n})
		}
		left -= n
	}
	return out, nil
}

// volume is a FAT image opened for reading.
type volume struct {
	r io.ReaderAt
	g geometry
}

func openVolume(r io.ReaderAt) (*volume, error) {
	bs := make([]byte, sectorSize)
	if _, err := r.ReadAt(bs, 0); err != nil {
		return nil, fmt.Errorf("fat: reading boot sector: %w", err)
	}
	if bs[510] != 0x55 || bs[511] != 0xAA {
		return nil, fmt.Errorf("fat: boot sector has no 0x55AA signature")
	}
	if bps := le.Uint16(bs[11:]); bps != sectorSize {
		return nil, fmt.Errorf("fat: boot sector: %d bytes per sector, only %d is supported", bps, sectorSize)
	}
	g := geometry{
		secPerClus:   uint32(bs[13]),
		reserved:     uint32(le.Uint16(bs[14:])),
		numFATs:      uint32(bs[16]),
		rootEntries:  uint32(le.Uint16(bs[17:])),
		totalSectors: uint32(le.Uint16(bs[19:])),
		fatSectors:   uint32(le.Uint16(bs[22:])),
	}
	if g.totalSectors == 0 {
		g.totalSectors = le.Uint32(bs[32:])
	}
	if g.fatSectors == 0 {
		g.fatSectors = le.Uint32(bs[36:])
	}
	g.rootSectors = (g.rootEntries*32 + sectorSize - 1) / sectorSize
	meta := g.reserved + g.numFATs*g.fatSectors + g.rootSectors
	if g.secPerClus == 0 || g.numFATs == 0 || g.fatSectors == 0 || meta >= g.totalSectors {
		return nil, fmt.Errorf("fat: boot sector: inconsistent BPB (sectors per cluster %d, FATs %d, FAT sectors %d, total %d)",
			g.secPerClus, g.numFATs, g.fatSectors, g.totalSectors)
	}
	g.clusters = (g.totalSectors - meta) / g.secPerClus
	switch {
	case g.clusters <= maxClusters12:
		g.fatType = 12
	case g.clusters <= maxClusters16:
		g.fatType = 16
	default:
		g.fatType = 32
	}
	return &volume{r: r, g: g}, nil
}

// next returns the FAT entry of cluster c.
func (v *volume) next(c uint32) (uint32, error) {
	off := v.g.fatStart()
	var b [4]byte
	switch v.g.fatType {
	case 12:
		if _, err := v.r.ReadAt(b[:2], off+int64(c+c/2)); err != nil {
			return 0, err
		}
		x := uint32(le.Uint16(b[:]))
		if c%2 == 1 {
			x >>= 4
		}
		return x & 0xFFF, nil
	case 16:
		if _, err := v.r.ReadAt(b[:2], off+int64(2*c)); err != nil {
			return 0, err
		}
		return uint32(le.Uint16(b[:])), nil
	default:
		if _, err := v.r.ReadAt(b[:], off+int64(4*c)); err != nil {
			return 0, err
		}
		return le.Uint32(b[:]) & 0x0FFFFFFF, nil
	}
}

// chain follows the cluster chain starting at first.
func (v *volume) chain(first uint32) ([]uint32, error) {
	if first == 0 {
		return nil, nil
	}
	bad := uint32(0xFF7)
	if v.g.fatType == 16 {
		bad = 0xFFF7
	} else if v.g.fatType == 32 {
		bad = 0x0FFFFFF7
	}
	var out []uint32
	for c := first; ; {
		if c < 2 || c >= v.g.clusters+2 {
			return nil, fmt.Errorf("cluster chain points to cluster %d outside 2..%d", c, v.g.clusters+1)
		}
		out = append(out, c)
		if len(out) > int(v.g.clusters) {
			return nil, fmt.Errorf("cluster chain from %d loops", first)
		}
		n, err := v.next(c)
		if err != nil {
			return nil, err
		}
		if n >= bad {
			return out, nil
		}
		c = n
	}
}

// dirent is a decoded directory entry.
type dirent struct {
	name    string // long name, or the 8.3 name with NT case bits applied
	short   string
	attr    byte
	cluster uint32
	size    uint32
}

// readDir returns the entries of the directory starting at cluster (0 = root).
func (v *volume) readDir(cluster uint32) ([]dirent, error) {
	var raw []byte
	if cluster == 0 && v.g.fatType != 32 {
		raw = make([]byte, int64(v.g.rootSectors)*sectorSize)
		if _, err := v.r.ReadAt(raw, v.g.rootStart()); err != nil {
			return nil, err
		}
	} else {
		if cluster == 0 {
			cluster = v.rootCluster()
		}
		chain, err := v.chain(cluster)
		if err != nil {
			return nil, err
		}
		cb := v.g.clusterBytes()
		raw = make([]byte, int64(len(chain))*cb)
		for i, c := range chain {
			if _, err := v.r.ReadAt(raw[int64(i)*cb:int64(i+1)*cb], v.g.clusterOffset(c)); err != nil {
				return nil, err
			}
		}
	}
	var out []dirent
	var long []uint16
	var sum byte
	for i := 0; i+32 <= len(raw); i += 32 {
		b := raw[i : i+32]
		if b[0] == 0 {
			break
		}
		if b[0] == 0xE5 {
			long = nil
			continue
		}
		if b[11] == attrLFN {
			if b[0]&0x40 != 0 {
				long = nil
				sum = b[13]
			}
			part := make([]uint16, 0, 13)
			for _, off := range []int{1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30} {
				part = append(part, le.Uint16(b[off:]))
			}
			long = append(part, long...)
			continue
		}
		if b[11]&AttrVolumeID != 0 {
			long = nil
			continue
		}
		var short [11]byte
		copy(short[:], b[:11])
		if short[0] == 0x05 {
			short[0] = 0xE5
		}
		d := dirent{
			short:   shortString(short, 0),
			name:    shortString(short, b[12]),
			attr:    b[11],
			cluster: uint32(le.Uint16(b[20:]))<<16 | uint32(le.Uint16(b[26:])),
			size:    le.Uint32(b[28:]),
		}
		if long != nil && sum == lfnChecksum(short) {
			for j, u := range long {
				if u == 0 {
					long = long[:j]
					break
				}
			}
			d.name = string(utf16.Decode(long))
		}
		long = nil
		out = append(out, d)
	}
	return out, nil
}

func (v *volume) rootCluster() uint32 {
	var b [4]byte
	if _, err := v.r.ReadAt(b[:], 44); err != nil {
		return 2
	}
	return le.Uint32(b[:])
}

func shortString(s [11]byte, ntCase byte) string {
	base := strings.TrimRight(string(s[:8]), " ")
	ext := strings.TrimRight(string(s[8:]), " ")
	if ntCase&caseLowerBase != 0 {
		base = strings.ToLower(base)
	}
	if ntCase&caseLowerExt != 0 {
		ext = strings.ToLower(ext)
	}
	if ext == "" {
		return base
	}
	return base + "." + ext
}

// lookup finds the entry at path.
func (v *volume) lookup(path string) (dirent, error) {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	if len(parts) == 1 && parts[0] == "" {
		return dirent{}, fmt.Errorf("fat: empty path")
	}
	var cluster uint32 // root
	for i, p := range parts {
		ents, err := v.readDir(cluster)
		if err != nil {
			return dirent{}, fmt.Errorf("fat: reading directory of %s: %v", path, err)
		}
		var found *dirent
		for j := range ents {
			if strings.EqualFold(ents[j].name, p) || strings.EqualFold(ents[j].short, p) {
				found = &ents[j]
				break
			}
		}
		if found == nil {
			return dirent{}, fmt.Errorf("fat: %s: no such file or directory", path)
		}
		if i < len(parts)-1 {
			if found.attr&AttrDirectory == 0 {
				return dirent{}, fmt.Errorf("fat: %s: %s is not a directory", path, strings.Join(parts[:i+1], "/"))
			}
			cluster = found.cluster
		} else {
			return *found, nil
		}
	}
	panic("unreachable")
}
