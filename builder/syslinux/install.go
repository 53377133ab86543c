package syslinux

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"

	"github.com/kilnproject/kiln/builder/fat"
	"github.com/kilnproject/kiln/builder/fstree"
)

// Paths of the files AddFiles puts at the root of the ESP. ldlinux.sys
// looks for ldlinux.c32 and syslinux.cfg in /boot/syslinux, /syslinux and /,
// among others.
const (
	LdlinuxSys = "ldlinux.sys"
	LdlinuxC32 = "ldlinux.c32"
	ConfigFile = "syslinux.cfg"
)

// AddFiles adds ldlinux.sys (not yet patched: Install does that once it
// knows where the file landed), ldlinux.c32 and syslinux.cfg (cfg) at the
// root of the ESP tree t. Write the volume with FATAttributes so ldlinux.sys
// is read-only, hidden and system, as syslinux leaves it.
func (l *Loader) AddFiles(t *fstree.Tree, cfg []byte) error {
	// ldlinux.c32 takes the first config it finds in these directories, so
	// one elsewhere in the tree would silently win over cfg.
	for _, dir := range []string{"boot/isolinux", "isolinux", "boot/syslinux", "syslinux"} {
		for _, name := range []string{"isolinux.cfg", "syslinux.cfg", "extlinux.conf"} {
			if p := dir + "/" + name; t.Get(p) != nil {
				return fmt.Errorf("syslinux: the tree already holds /%s, which SYSLINUX would read instead of /%s", p, ConfigFile)
			}
		}
	}
	for _, f := range []struct {
		path string
		perm fs.FileMode
		data []byte
	}{
		{LdlinuxSys, 0o444, l.fileBytes()},
		{LdlinuxC32, 0o644, l.c32},
		{ConfigFile, 0o644, cfg},
	} {
		if err := t.AddFile(f.path, f.perm, f.data); err != nil {
			return fmt.Errorf("syslinux: adding %s: %w", f.path, err)
		}
	}
	return nil
}

// FATAttributes is the attribute map for fat.Options.Attributes.
func (l *Loader) FATAttributes() map[string]uint8 {
	return map[string]uint8{LdlinuxSys: fat.AttrReadOnly | fat.AttrHidden | fat.AttrSystem}
}

// Install makes the FAT volume at [partOffset, partOffset+partSize) of disk
// bootable: it patches ldlinux.sys (written there by AddFiles and builder/fat)
// with its sector list and checksum, and puts syslinux's boot code into the
// volume's boot sector. Like syslinux it writes only the primary boot
// sector, not the FAT32 backup at sector 6 (fsck.fat then notes that the
// two differ; set WriteBackupBootSector to write both). The volume's hidden-sectors field
// must be the partition's start LBA (fat.Options.HiddenSectors): the boot
// code adds it to every sector it reads.
func (l *Loader) Install(disk interface {
	io.ReaderAt
	io.WriterAt
}, partOffset, partSize int64) error {
	if partOffset < 0 || partOffset%sectorSize != 0 || partSize < sectorSize || partSize%sectorSize != 0 {
		return fmt.Errorf("syslinux: volume at %d (%d bytes) is not sector aligned", partOffset, partSize)
	}
	vol := io.NewSectionReader(disk, partOffset, partSize)
	bs := make([]byte, sectorSize)
	if _, err := vol.ReadAt(bs, 0); err != nil {
		return fmt.Errorf("syslinux: reading boot sector of the volume at %d: %w", partOffset, err)
	}
	if bs[510] != 0x55 || bs[511] != 0xAA {
		return fmt.Errorf("syslinux: volume at %d has no 0x55AA boot sector signature", partOffset)
	}
	if n := le.Uint16(bs[11:]); n != sectorSize {
		return fmt.Errorf("syslinux: volume at %d: BPB bytes per sector is %d, syslinux needs %d", partOffset, n, sectorSize)
	}
	if hidden, want := le.Uint32(bs[28:]), uint64(partOffset/sectorSize); uint64(hidden) != want {
		return fmt.Errorf("syslinux: volume at %d: BPB hidden sectors is %d, want the partition start LBA %d (set fat.Options.HiddenSectors)", partOffset, hidden, want)
	}

	exts, err := fat.FileExtents(vol, LdlinuxSys)
	if err != nil {
		return fmt.Errorf("syslinux: finding %s (did AddFiles run before the FAT was written?): %w", LdlinuxSys, err)
	}
	var sectors []uint64
	var size int64
	for _, x := range exts {
		if x.Offset%sectorSize != 0 {
			return fmt.Errorf("syslinux: %s: extent at volume offset %d is not sector aligned", LdlinuxSys, x.Offset)
		}
		for o := x.Offset; o < x.Offset+x.Length; o += sectorSize {
			sectors = append(sectors, uint64(o/sectorSize))
		}
		size += x.Length
	}
	want := l.fileBytes()
	if size != int64(len(want)) {
		return fmt.Errorf("syslinux: %s on the volume is %d bytes, this loader's is %d", LdlinuxSys, size, len(want))
	}
	// Same build? The magic and per-build instance word must match.
	head := make([]byte, l.pa+8)
	if _, err := vol.ReadAt(head, exts[0].Offset); err != nil {
		return fmt.Errorf("syslinux: reading %s: %w", LdlinuxSys, err)
	}
	if !bytes.Equal(head, l.image[:l.pa+8]) {
		return errors.New("syslinux: " + LdlinuxSys + " on the volume is not this loader's (banner, magic or instance differ)")
	}

	file, code, err := l.patch(sectors)
	if err != nil {
		return err
	}
	for _, s := range sectors {
		if _, err := disk.WriteAt(file[:sectorSize], partOffset+int64(s)*sectorSize); err != nil {
			return fmt.Errorf("syslinux: writing %s sector %d: %w", LdlinuxSys, s, err)
		}
		file = file[sectorSize:]
	}
	merged := mergeBootSector(bs, code)
	if _, err := disk.WriteAt(merged, partOffset); err != nil {
		return fmt.Errorf("syslinux: writing boot sector at %d: %w", partOffset, err)
	}
	// FAT32 only: FAT12/16 have no backup (and no BkBootSec field there).
	if backup := int64(le.Uint16(bs[50:])); l.WriteBackupBootSector && le.Uint16(bs[22:]) == 0 && backup != 0 {
		if _, err := disk.WriteAt(merged, partOffset+backup*sectorSize); err != nil {
			return fmt.Errorf("syslinux: writing backup boot sector %d: %w", backup, err)
		}
	}
	return nil
}

// GPTMBR checks that gptmbrBin is syslinux's gptmbr.bin (440 bytes that pass
// "!GPT" to the volume boot record of the partition with the legacy BIOS
// bootable attribute) and returns a copy for gpt.Disk.BootCode.
func GPTMBR(gptmbrBin []byte) ([]byte, error) {
	if len(gptmbrBin) != 440 {
		return nil, fmt.Errorf("syslinux: gptmbr.bin is %d bytes, want 440 (MBR boot code up to the disk signature)", len(gptmbrBin))
	}
	if !bytes.Contains(gptmbrBin, []byte("!GPT")) {
		return nil, errors.New("syslinux: gptmbr.bin lacks the \"!GPT\" hand-off signature: is it mbr.bin or altmbr.bin?")
	}
	return bytes.Clone(gptmbrBin), nil
}
