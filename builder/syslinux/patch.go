package syslinux

import (
	"fmt"
	"slices"
)

// ADV (auxiliary data vector, setadv.c): one sector, head and tail magic and
// a checksum that makes the sum of its words ADV_MAGIC2.
const (
	advMagic1 = 0x5a2d2fa5
	advMagic2 = 0xa3041767
	advMagic3 = 0xdd28bf64
)

// emptyADV returns the two identical copies of an empty ADV, as
// syslinux_reset_adv() makes them.
func emptyADV() []byte {
	b := make([]byte, advSectors*sectorSize)
	a := b[:sectorSize]
	le.PutUint32(a[0:], advMagic1)
	csum := uint32(advMagic2)
	for i := 8; i < sectorSize-4; i += 4 {
		csum -= le.Uint32(a[i:])
	}
	le.PutUint32(a[4:], csum)
	le.PutUint32(a[sectorSize-4:], advMagic3)
	copy(b[sectorSize:], a)
	return b
}

// fileBytes is ldlinux.sys as stored before patching: the image and an empty ADV.
func (l *Loader) fileBytes() []byte {
	return append(slices.Clone(l.image), emptyADV()...)
}

// fileSectors is how many sectors ldlinux.sys occupies.
func (l *Loader) fileSectors() int { return len(l.image)/sectorSize + advSectors }

// patch returns ldlinux.sys and ldlinux.bss patched for a file whose
// sectors (numbered from the start of the volume) are sectors, following
// syslinux_patch(): the first sector's LBA goes into the boot sector, the
// others into the extent list, the last two are the ADV; then the totals and
// the checksum. No stupid mode, no RAID mode, no directory or subvolume.
func (l *Loader) patch(sectors []uint64) (file, bootSector []byte, err error) {
	nsect := l.fileSectors()
	if len(sectors) != nsect {
		return nil, nil, fmt.Errorf("syslinux: ldlinux.sys spans %d sectors, want %d", len(sectors), nsect)
	}
	img := slices.Clone(l.image)
	bs := slices.Clone(l.bootSector)
	e := l.epa

	le.PutUint32(bs[e.sect1Ptr0:], uint32(sectors[0]))
	le.PutUint32(bs[e.sect1Ptr1:], uint32(sectors[0]>>32))

	dwords := len(img) / 4
	pa := img[l.pa:]
	le.PutUint16(pa[paDataSectors:], uint16(nsect-advSectors))
	le.PutUint16(pa[paAdvSectors:], advSectors)
	le.PutUint32(pa[paDwords:], uint32(dwords))

	ext := extents(sectors[1 : nsect-advSectors])
	if len(ext) > int(e.secPtrCnt) {
		return nil, nil, fmt.Errorf("syslinux: ldlinux.sys needs %d sector extents, its patch area holds %d: the file is too fragmented", len(ext), e.secPtrCnt)
	}
	area := img[e.secPtrOffset : int(e.secPtrOffset)+int(e.secPtrCnt)*extentSize]
	clear(area)
	for i, x := range ext {
		le.PutUint64(area[i*extentSize:], x.lba)
		le.PutUint16(area[i*extentSize+8:], x.len)
	}
	le.PutUint64(img[e.advPtrOffset:], sectors[nsect-2])
	le.PutUint64(img[e.advPtrOffset+8:], sectors[nsect-1])

	// Negative checksum: all dwords of the image sum to LDLINUX_MAGIC.
	le.PutUint32(pa[paChecksum:], 0)
	csum := uint32(ldlinuxMagic)
	for i := 0; i < dwords; i++ {
		csum -= le.Uint32(img[4*i:])
	}
	le.PutUint32(pa[paChecksum:], csum)

	return append(img, emptyADV()...), bs, nil
}

type extent struct {
	lba uint64
	len uint16
}

// extents groups consecutive sectors into runs the loader reads with one
// BIOS call each, as generate_extents() does: the sectors after the first
// are loaded from 0x8000 upwards, a run stays below 64 KiB, and a run must
// not make the transfer cross a 64 KiB boundary of memory.
func extents(sectors []uint64) []extent {
	var out []extent
	addr := uint32(0x8000)
	var base uint32
	var cur extent
	for _, s := range sectors {
		if cur.len > 0 {
			xbytes := (uint32(cur.len) + 1) * sectorSize
			if s == cur.lba+uint64(cur.len) && xbytes < 65536 && (addr^(base+xbytes-1))&0xffff0000 == 0 {
				cur.len++
				addr += sectorSize
				continue
			}
			out = append(out, cur)
		}
		base = addr
		cur = extent{lba: s, len: 1}
		addr += sectorSize
	}
	if cur.len > 0 {
		out = append(out, cur)
	}
	return out
}

// mergeBootSector is syslinux_make_bootsect() for FAT: the volume keeps its
// BPB (bytes 11-89: the FAT32 layout, which covers the FAT12/16 one) and its
// signature; the jump and OEM name (0-10, "SYSLINUX") and the code (90-509)
// come from ldlinux.bss.
func mergeBootSector(volume, code []byte) []byte {
	out := slices.Clone(volume)
	copy(out[0:11], code[0:11])
	copy(out[90:510], code[90:510])
	return out
}
