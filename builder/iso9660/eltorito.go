package iso9660

import (
	"encoding/binary"
	"fmt"
)

// El Torito 1.0: boot record volume descriptor, boot catalog and the
// isolinux boot info table.

const (
	platformX86 = 0x00
	platformEFI = 0xEF
)

// bootRecord is the El Torito boot record volume descriptor (block 17).
func bootRecord(catalogLBA uint32) []byte {
	b := make([]byte, blockSize)
	b[0] = 0
	copy(b[1:], "CD001")
	b[6] = 1
	copy(b[7:], "EL TORITO SPECIFICATION")
	binary.LittleEndian.PutUint32(b[0x47:], catalogLBA)
	return b
}

type bootImage struct {
	platform byte
	lba      uint32
	sectors  uint16 // virtual 512-byte sectors to load
}

// bootCatalog writes the validation entry, the default entry (first image)
// and, for a second image, one final section header with one entry.
func bootCatalog(images []bootImage) []byte {
	b := make([]byte, blockSize)
	b[0] = 1
	b[1] = images[0].platform
	b[30], b[31] = 0x55, 0xAA
	var sum uint16
	for i := 0; i < 32; i += 2 {
		sum += binary.LittleEndian.Uint16(b[i:])
	}
	binary.LittleEndian.PutUint16(b[28:], -sum)
	entry := func(e []byte, img bootImage) {
		e[0] = 0x88 // bootable, no emulation (media type 0), load segment 0 = 0x7C0
		binary.LittleEndian.PutUint16(e[6:], img.sectors)
		binary.LittleEndian.PutUint32(e[8:], img.lba)
	}
	entry(b[32:64], images[0])
	if len(images) > 1 {
		h := b[64:96]
		h[0] = 0x91 // final section header
		h[1] = images[1].platform
		binary.LittleEndian.PutUint16(h[2:], 1)
		entry(b[96:128], images[1])
	}
	return b
}

// efiSectors is the load size of the EFI image: its size in 512-byte
// sectors, or 0 when it does not fit the 16-bit field (firmware then uses
// the FAT filesystem's own size).
func efiSectors(size int64) uint16 {
	n := (size + 511) / 512
	if n > 0xFFFF {
		return 0
	}
	return uint16(n)
}

// patchBootInfoTable fills bytes 8..63 of isolinux.bin as mkisofs
// -boot-info-table does: PVD LBA, file LBA, file length, and the 32-bit
// sum of the little-endian words from byte 64 to the end.
func patchBootInfoTable(img []byte, name string, fileLBA uint32) error {
	if len(img) < 64 {
		return fmt.Errorf("iso9660: BIOS boot image %s: %d bytes is too short for a boot info table", name, len(img))
	}
	var sum uint32
	for i := 64; i < len(img); i += 4 {
		var w [4]byte
		copy(w[:], img[i:])
		sum += binary.LittleEndian.Uint32(w[:])
	}
	clear(img[8:64])
	binary.LittleEndian.PutUint32(img[8:], systemArea)
	binary.LittleEndian.PutUint32(img[12:], fileLBA)
	binary.LittleEndian.PutUint32(img[16:], uint32(len(img)))
	binary.LittleEndian.PutUint32(img[20:], sum)
	return nil
}
