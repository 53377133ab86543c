package fat

import "github.com/kilnproject/kiln/builder/fstree"

// minSizeStep is MinSize's granularity: 64 KiB is a whole number of ISO
// (2 KiB) and disk (512 B, 4 KiB) sectors.
const minSizeStep = 64 << 10

// MinSize returns the smallest image size, a multiple of 64 KiB, that holds t
// as a FAT volume of fatType (0 = the type Write picks by size), with a
// volume label. It assumes t is valid; Write reports invalid names.
func MinSize(t *fstree.Tree, fatType int) int64 {
	entries := t.Entries()
	rootNeed := rootEntryCount(t, true)
	// Entries per directory, from names alone (aliases never change counts).
	dirCount := map[string]int{}
	var dataLow int64
	for _, e := range entries {
		if e.Kind == fstree.Dir {
			n := 0
			if e.Path != "" {
				n = 2
			} else {
				n = 1 // label
			}
			for _, c := range t.Children(e.Path) {
				n += entriesFor(c.Name())
			}
			dirCount[e.Path] = n
			dataLow += int64(n) * 32
		} else {
			dataLow += e.Size()
		}
	}
	fits := func(size int64) bool {
		ft := fatType
		if ft == 0 {
			ft = autoType(size)
		}
		g, err := layoutFor(size, ft, rootNeed)
		if err != nil {
			return false
		}
		cb := g.clusterBytes()
		var need int64
		for _, e := range entries {
			var b int64
			switch {
			case e.Kind == fstree.Dir && e.Path == "" && ft != 32:
				continue
			case e.Kind == fstree.Dir:
				b = int64(dirCount[e.Path]) * 32
			default:
				b = e.Size()
			}
			need += (b + cb - 1) / cb
		}
		return need <= int64(g.clusters)
	}
	low := dataLow
	if fatType == 32 {
		// FAT32 needs 65525 clusters of at least one sector each.
		low = max(low, (maxClusters16+1)*sectorSize+32*sectorSize+2*fatBytes(32, maxClusters16+1))
	}
	size := max(minSizeStep, (low+minSizeStep-1)/minSizeStep*minSizeStep)
	step := int64(minSizeStep)
	for i := 0; ; i++ {
		if fits(size) {
			return size
		}
		if i > 0 && i%256 == 0 {
			step *= 2 // far off: speed up (e.g. FAT32's ~33 MiB minimum)
		}
		if size > 1<<41 {
			return size // beyond FAT's limits: Write will say why
		}
		size += step
	}
}
