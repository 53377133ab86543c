// Package iso9660 writes deterministic ISO 9660 images with Rock Ridge
// (RRIP 1.12) names and attributes, El Torito boot entries for BIOS
// (isolinux) and UEFI, and an optional hybrid MBR/GPT system area so the
// image also boots from a USB stick. There is no Joliet tree: some BIOS
// loaders mishandle it and Rock Ridge covers Linux readers.
//
// Layout, in 2048-byte blocks: system area (0-15), primary volume
// descriptor (16), El Torito boot record (17, when booting), terminator,
// L and M path tables, directories in path table order, Rock Ridge
// continuation blocks, the boot catalog, then file contents in directory
// order, each file in one extent. Empty files, symlinks and devices have no
// extent (LBA 0). Primary names are level-2 style (see names.go); deep
// directories are written in place, without RR_MOVED relocation, which
// Linux and xorriso read fine. Non-hybrid images are not padded.
package iso9660

import (
	"fmt"
	"io"
	"time"

	"github.com/kilnproject/kiln/builder/fstree"
)

// Options control the image.
type Options struct {
	// VolumeID is the volume label (at most 32 characters of A-Z 0-9 _ -).
	// Strict ECMA-119 d-characters exclude '-', but every reader takes it
	// and labels like KILN-MINIMAL or config-2 need it.
	VolumeID string
	// AllowLowerCaseVolumeID also admits a-z, for labels such as the
	// OpenStack config drive's "config-2" (NoCloud accepts "CIDATA").
	AllowLowerCaseVolumeID bool
	// ModTime (Unix seconds, SOURCE_DATE_EPOCH style) is every timestamp:
	// volume descriptors, directory records and Rock Ridge TF.
	ModTime int64
	BIOS    *BIOSBoot // El Torito x86 no-emulation entry, nil for none
	EFI     *EFIBoot  // El Torito EFI (platform 0xEF) no-emulation entry, nil for none
	// Hybrid makes the image bootable when written raw to a disk; it needs
	// BIOS (with MBR) or EFI.
	Hybrid bool
}

// BIOSBoot is the isolinux El Torito entry.
type BIOSBoot struct {
	Image   string // path in the tree of isolinux.bin (patched with the boot info table)
	Catalog string // path in the tree where the boot catalog appears, e.g. "isolinux/boot.cat"
	MBR     []byte // isohdpfx.bin (first 432 bytes used), required when Hybrid
}

// EFIBoot is the UEFI El Torito entry: a FAT image holding EFI/BOOT/BOOT*.EFI.
type EFIBoot struct {
	Image string // path in the tree of the FAT image
}

// Write writes the image of t to w from offset 0 and returns its size.
// Every byte of [0, size) is written, padding included.
func Write(w io.WriterAt, t *fstree.Tree, o Options) (size int64, err error) {
	mtime, err := checkOptions(o)
	if err != nil {
		return 0, err
	}
	booting := o.BIOS != nil || o.EFI != nil

	var extra []*fstree.Entry
	if o.BIOS != nil && o.BIOS.Catalog != "" {
		extra = append(extra, &fstree.Entry{Path: fstree.Clean(o.BIOS.Catalog), Kind: fstree.File, Perm: 0o444})
	}
	root, nodes, err := buildTree(t, extra)
	if err != nil {
		return 0, err
	}

	var cat, loader, esp *node
	if booting {
		cat = &node{e: &fstree.Entry{Kind: fstree.File}, hidden: true}
		if len(extra) > 0 {
			cat = nodes[extra[0].Path]
		}
		cat.content = make([]byte, blockSize)
	}
	if o.BIOS != nil {
		if loader, err = bootFile(nodes, o.BIOS.Image, "BIOS.Image"); err != nil {
			return 0, err
		}
		img, err := loader.e.ReadAll()
		if err != nil {
			return 0, fmt.Errorf("iso9660: BIOS boot image %s: %w", loader.e.Path, err)
		}
		loader.content = append([]byte(nil), img...) // patched below, never the caller's copy
	}
	if o.EFI != nil {
		if esp, err = bootFile(nodes, o.EFI.Image, "EFI.Image"); err != nil {
			return 0, err
		}
	}

	l, err := layOut(root, cat, mtime)
	if err != nil {
		return 0, err
	}

	if loader != nil {
		if err := patchBootInfoTable(loader.content, loader.e.Path, loader.lba); err != nil {
			return 0, err
		}
	}
	if booting {
		var imgs []bootImage
		if loader != nil {
			imgs = append(imgs, bootImage{platformX86, loader.lba, 4})
		}
		if esp != nil {
			imgs = append(imgs, bootImage{platformEFI, esp.lba, efiSectors(int64(esp.length))})
		}
		copy(cat.content, bootCatalog(imgs))
	}

	var hy *hybridLayout
	l.totalBlocks = l.dataEnd
	if o.Hybrid {
		hy = &hybridLayout{seed: []byte(fmt.Sprintf("%s\x00%d", o.VolumeID, o.ModTime))}
		if loader != nil {
			hy.mbrCode, hy.loaderLBA = o.BIOS.MBR, loader.lba
		}
		if esp != nil {
			hy.espStart, hy.espSize = esp.lba*4, (esp.length+sector-1)/sector
		}
		hy.total = hybridSectors(l.dataEnd, esp != nil)
		l.totalBlocks = hy.total / 4
	}
	return l.write(w, o, mtime, cat, hy)
}

func bootFile(nodes map[string]*node, p, field string) (*node, error) {
	n := nodes[fstree.Clean(p)]
	if n == nil {
		return nil, fmt.Errorf("iso9660: %s %q: not in the tree", field, p)
	}
	if n.e.Kind != fstree.File || n.e.Size() == 0 {
		return nil, fmt.Errorf("iso9660: %s %q: is a %s of %d bytes, want a non-empty file", field, p, n.e.Kind, n.e.Size())
	}
	return n, nil
}

func checkOptions(o Options) (time.Time, error) {
	v := o.VolumeID
	if v == "" || len(v) > 32 {
		return time.Time{}, fmt.Errorf("iso9660: VolumeID %q: want 1 to 32 characters", v)
	}
	for _, c := range []byte(v) {
		ok := c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' ||
			o.AllowLowerCaseVolumeID && c >= 'a' && c <= 'z'
		if !ok {
			allowed := "A-Z 0-9 _ -"
			if o.AllowLowerCaseVolumeID {
				allowed += " a-z"
			}
			return time.Time{}, fmt.Errorf("iso9660: VolumeID %q: character %q not allowed (allowed: %s)", v, c, allowed)
		}
	}
	mt := time.Unix(o.ModTime, 0).UTC()
	if mt.Year() < 1900 || mt.Year() > 2155 {
		return time.Time{}, fmt.Errorf("iso9660: ModTime %d: year %d outside 1900..2155", o.ModTime, mt.Year())
	}
	if o.Hybrid {
		if o.BIOS == nil && o.EFI == nil {
			return time.Time{}, fmt.Errorf("iso9660: Hybrid needs BIOS or EFI boot")
		}
		if o.BIOS != nil && len(o.BIOS.MBR) < 432 {
			return time.Time{}, fmt.Errorf("iso9660: BIOS.MBR: %d bytes, want isohdpfx.bin (at least 432)", len(o.BIOS.MBR))
		}
	}
	return mt, nil
}
