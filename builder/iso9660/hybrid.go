package iso9660

import (
	"crypto/sha256"
	"encoding/binary"
	"hash/crc32"
	"unicode/utf16"
)

// Hybrid system area, so the same image boots when written raw to a disk:
//
//   - BIOS: isohdpfx.bin code in bytes 0..431 and, at 432, the 64-bit LBA of
//     isolinux.bin in 512-byte sectors (what isohybrid writes); the code
//     loads isolinux.bin from there, which continues via its boot info table.
//   - UEFI: the El Torito EFI image is also an EFI System Partition, in a GPT
//     and in the MBR (type 0xEF), so firmware that reads either finds
//     EFI/BOOT/BOOT*.EFI. The MBR is then a hybrid MBR: 0xEE over the GPT
//     structures, 0xEF (active) over the ESP. Nothing overlaps, so fdisk and
//     sgdisk -v accept it (xorriso's overlapping layout is rejected by sgdisk).
//   - BIOS only: one active partition of type 0x17 from sector 0 over the
//     whole image, like isohybrid's default.
//
// The image is padded to a multiple of 1 MiB (64 heads x 32 sectors), the
// cylinder size isohybrid uses, leaving room for the backup GPT at the end.

const (
	sector       = 512
	mbrHeads     = 64
	mbrSectors   = 32
	cylinder     = mbrHeads * mbrSectors // sectors
	gptEntries   = 128
	gptEntrySize = 128
	gptSectors   = gptEntries * gptEntrySize / sector // 32
)

var espType = [16]byte{0x28, 0x73, 0x2A, 0xC1, 0x1F, 0xF8, 0xD2, 0x11, 0xBA, 0x4B, 0x00, 0xA0, 0xC9, 0x3E, 0xC9, 0x3B}

type hybridLayout struct {
	mbrCode   []byte // 432 bytes, nil for none
	loaderLBA uint32 // isolinux.bin block (2048-byte), when mbrCode is set
	espStart  uint32 // 512-byte sectors; espSize 0 for no ESP
	espSize   uint32
	total     uint32 // image size in 512-byte sectors
	seed      []byte // for disk signature and GUIDs
}

// hybridSectors is the padded image size in sectors for dataEnd blocks.
func hybridSectors(dataEndBlocks uint32, gpt bool) uint32 {
	n := dataEndBlocks * 4
	if gpt {
		n += gptSectors + 1
	}
	return (n + cylinder - 1) / cylinder * cylinder
}

func chs(lba uint32) [3]byte {
	c := lba / cylinder
	h := lba / mbrSectors % mbrHeads
	s := lba%mbrSectors + 1
	if c > 1023 {
		c, h, s = 1023, mbrHeads-1, mbrSectors
	}
	return [3]byte{byte(h), byte(s) | byte(c>>2)&0xC0, byte(c)}
}

func mbrPart(b []byte, active bool, typ byte, start, size uint32) {
	if active {
		b[0] = 0x80
	}
	s, e := chs(start), chs(start+size-1)
	copy(b[1:4], s[:])
	b[4] = typ
	copy(b[5:8], e[:])
	binary.LittleEndian.PutUint32(b[8:], start)
	binary.LittleEndian.PutUint32(b[12:], size)
}

// derivedGUID is a version-4-shaped GUID computed from the seed and a role,
// so two builds of the same inputs get the same identifiers.
func derivedGUID(seed []byte, role string) [16]byte {
	h := sha256.Sum256(append(append([]byte{}, seed...), role...))
	var g [16]byte
	copy(g[:], h[:16])
	g[7] = g[7]&0x0F | 0x40
	g[8] = g[8]&0x3F | 0x80
	return g
}

// systemArea returns the first 32 KiB of the image.
func (h *hybridLayout) systemArea() []byte {
	b := make([]byte, systemArea*blockSize)
	if h.mbrCode != nil {
		copy(b, h.mbrCode[:432])
		binary.LittleEndian.PutUint64(b[432:], uint64(h.loaderLBA)*4)
	}
	sig := sha256.Sum256(append(append([]byte{}, h.seed...), "mbr"...))
	binary.LittleEndian.PutUint32(b[440:], binary.LittleEndian.Uint32(sig[:])|1)
	pt := b[446:510]
	if h.espSize > 0 {
		mbrPart(pt[0:16], false, 0xEE, 1, h.espStart-1)
		mbrPart(pt[16:32], true, 0xEF, h.espStart, h.espSize)
		hdr, entries := h.gpt(true)
		copy(b[sector:], hdr)
		copy(b[2*sector:], entries)
	} else {
		mbrPart(pt[0:16], true, 0x17, 0, h.total)
	}
	b[510], b[511] = 0x55, 0xAA
	return b
}

// backupGPT returns the bytes of the last 33 sectors (entries, then header).
func (h *hybridLayout) backupGPT() []byte {
	hdr, entries := h.gpt(false)
	return append(entries, hdr...)
}

func (h *hybridLayout) gpt(primary bool) (hdr, entries []byte) {
	entries = make([]byte, gptEntries*gptEntrySize)
	e := entries[:gptEntrySize]
	copy(e[0:16], espType[:])
	g := derivedGUID(h.seed, "esp")
	copy(e[16:32], g[:])
	binary.LittleEndian.PutUint64(e[32:], uint64(h.espStart))
	binary.LittleEndian.PutUint64(e[40:], uint64(h.espStart+h.espSize-1))
	for i, u := range utf16.Encode([]rune("EFI System Partition")) {
		binary.LittleEndian.PutUint16(e[56+2*i:], u)
	}

	last := uint64(h.total - 1)
	hdr = make([]byte, sector)
	copy(hdr, "EFI PART")
	binary.LittleEndian.PutUint32(hdr[8:], 0x00010000)
	binary.LittleEndian.PutUint32(hdr[12:], 92)
	my, alt, entLBA := uint64(1), last, uint64(2)
	if !primary {
		my, alt, entLBA = last, 1, last-gptSectors
	}
	binary.LittleEndian.PutUint64(hdr[24:], my)
	binary.LittleEndian.PutUint64(hdr[32:], alt)
	binary.LittleEndian.PutUint64(hdr[40:], 2+gptSectors)
	binary.LittleEndian.PutUint64(hdr[48:], last-gptSectors-1)
	dg := derivedGUID(h.seed, "disk")
	copy(hdr[56:72], dg[:])
	binary.LittleEndian.PutUint64(hdr[72:], entLBA)
	binary.LittleEndian.PutUint32(hdr[80:], gptEntries)
	binary.LittleEndian.PutUint32(hdr[84:], gptEntrySize)
	binary.LittleEndian.PutUint32(hdr[88:], crc32.ChecksumIEEE(entries))
	binary.LittleEndian.PutUint32(hdr[16:], crc32.ChecksumIEEE(hdr[:92]))
	return hdr, entries
}
