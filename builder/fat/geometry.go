package fat

import "fmt"

const sectorSize = 512

// Cluster count limits that decide the FAT type (Microsoft FAT specification):
// a volume with fewer than 4085 clusters is FAT12, fewer than 65525 FAT16,
// otherwise FAT32. Every driver derives the type from the count, so the
// geometry must put the count in the range of the type we claim.
const (
	maxClusters12 = 4084
	maxClusters16 = 65524
	maxClusters32 = 0x0FFFFFF5 - 2
	maxSecPerClus = 64 // 32 KiB clusters: larger ones upset some drivers
)

// geometry is the computed layout of a volume, in sectors.
type geometry struct {
	fatType      int
	totalSectors uint32
	secPerClus   uint32
	reserved     uint32
	numFATs      uint32
	fatSectors   uint32
	rootEntries  uint32 // FAT12/16 fixed root directory entries; 0 on FAT32
	rootSectors  uint32
	clusters     uint32 // data clusters, numbered 2..clusters+1
}

func (g *geometry) clusterBytes() int64 { return int64(g.secPerClus) * sectorSize }
func (g *geometry) fatStart() int64     { return int64(g.reserved) * sectorSize }
func (g *geometry) rootStart() int64 {
	return int64(g.reserved+g.numFATs*g.fatSectors) * sectorSize
}
func (g *geometry) dataStart() int64 {
	return int64(g.reserved+g.numFATs*g.fatSectors+g.rootSectors) * sectorSize
}

// clusterOffset is the byte offset of cluster c (c >= 2).
func (g *geometry) clusterOffset(c uint32) int64 {
	return g.dataStart() + int64(c-2)*g.clusterBytes()
}

// autoType picks the FAT type for an image of size bytes: FAT32 from 64 MiB
// (the usual ESP on a disk), FAT12 below 4 MiB, FAT16 in between (El Torito
// EFI images).
func autoType(size int64) int {
	switch {
	case size >= 64<<20:
		return 32
	case size < 4<<20:
		return 12
	default:
		return 16
	}
}

// layoutFor computes the geometry for size bytes and fatType (12, 16 or 32)
// with at least rootNeed entries in a FAT12/16 root directory.
func layoutFor(size int64, fatType int, rootNeed int) (*geometry, error) {
	if size <= 0 || size%sectorSize != 0 {
		return nil, fmt.Errorf("fat: image size %d is not a positive multiple of %d", size, sectorSize)
	}
	if size/sectorSize > 0xFFFFFFFF {
		return nil, fmt.Errorf("fat: image size %d exceeds the FAT limit of 2^32 sectors", size)
	}
	g := &geometry{fatType: fatType, totalSectors: uint32(size / sectorSize), numFATs: 2}
	switch fatType {
	case 12, 16:
		g.reserved = 1
		n := max(512, rootNeed)
		n = (n + 15) / 16 * 16 // whole sectors
		g.rootEntries = uint32(n)
		g.rootSectors = uint32(n * 32 / sectorSize)
	case 32:
		g.reserved = 32
	default:
		return nil, fmt.Errorf("fat: FAT type %d is not 12, 16 or 32", fatType)
	}
	lo, hi := uint32(1), uint32(maxClusters12)
	switch fatType {
	case 16:
		lo, hi = maxClusters12+1, maxClusters16
	case 32:
		lo, hi = maxClusters16+1, maxClusters32
	}
	// FAT12/16: the smallest cluster that keeps the count under the type's
	// limit (least slack). FAT32: Microsoft's size table, then the largest
	// cluster that still keeps at least 65525 clusters.
	spcs := []uint32{1, 2, 4, 8, 16, 32, 64}
	if fatType == 32 {
		pref := uint32(1)
		switch {
		case size > 32<<30:
			pref = 64
		case size > 16<<30:
			pref = 32
		case size > 8<<30:
			pref = 16
		case size > 260<<20:
			pref = 8
		}
		spcs = nil
		for s := pref; s >= 1; s /= 2 {
			spcs = append(spcs, s)
		}
	}
	var most uint32 // the largest cluster count seen, for the error
	for _, spc := range spcs {
		c := *g
		c.secPerClus = spc
		if !c.sizeFAT() {
			continue
		}
		most = max(most, c.clusters)
		if c.clusters >= lo && c.clusters <= hi {
			return &c, nil
		}
	}
	if most < lo {
		return nil, fmt.Errorf("fat: a %d-byte image is too small for FAT%d: at most %d clusters fit, FAT%d needs at least %d",
			size, fatType, most, fatType, lo)
	}
	return nil, fmt.Errorf("fat: a %d-byte image is too large for FAT%d: even %d-byte clusters give more than %d clusters",
		size, fatType, maxSecPerClus*sectorSize, hi)
}

// sizeFAT finds the FAT size and cluster count for the chosen cluster size.
// Growing the FAT shrinks the data area, so iterate to a fixed point.
func (g *geometry) sizeFAT() bool {
	meta := g.reserved + g.rootSectors
	if g.totalSectors <= meta {
		return false
	}
	var fat uint32
	for {
		used := meta + g.numFATs*fat
		if used >= g.totalSectors {
			return false
		}
		clusters := (g.totalSectors - used) / g.secPerClus
		if clusters == 0 {
			return false
		}
		need := fatBytes(g.fatType, clusters)
		needSec := uint32((need + sectorSize - 1) / sectorSize)
		if needSec <= fat {
			g.fatSectors = fat
			g.clusters = clusters
			return true
		}
		fat = needSec
	}
}

// fatBytes is the size of one FAT holding entries 0..clusters+1.
func fatBytes(fatType int, clusters uint32) int64 {
	n := int64(clusters) + 2
	switch fatType {
	case 12:
		return (n*3 + 1) / 2
	case 16:
		return n * 2
	default:
		return n * 4
	}
}
