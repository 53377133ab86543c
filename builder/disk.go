package builder

import (
	"fmt"
	"io"
	"os"

	"github.com/kilnproject/kiln/builder/fat"
	"github.com/kilnproject/kiln/builder/gpt"
	"github.com/kilnproject/kiln/builder/profile"
)

// Disk partition names: initd finds its partitions by these (docs/boot-contract.md).
const (
	PartESP   = "ESP"
	PartSysA  = "SYS-A"
	PartSysB  = "SYS-B"
	PartState = "STATE"
)

// sysSize is the size of each SYS slot: the profile's, or the system image
// plus room for a larger upgrade, whole MiB.
func (b *archBuild) sysSize() (int64, error) {
	if s := int64(b.p.Disk.Sys); s != 0 {
		if s < b.sqfsSz {
			return 0, fmt.Errorf("%s: disk.sys: %s is too small for the system image (%s)", b.p.File, b.p.Disk.Sys, HumanSize(b.sqfsSz))
		}
		return s, nil
	}
	s := roundUp(b.sqfsSz+b.sqfsSz/2, profile.MiB)
	if s < 64*profile.MiB {
		s = 64 * profile.MiB
	}
	return s, nil
}

// writeDisk writes the raw GPT disk image: ESP (UKI for UEFI, syslinux for
// BIOS), SYS-A with the system image, an empty SYS-B for upgrades and a small
// STATE partition that initd grows and formats on first boot.
func (b *archBuild) writeDisk(path string) error {
	done := b.stage("raw")
	sys, err := b.sysSize()
	if err != nil {
		return err
	}
	esp := int64(b.p.Disk.ESP)
	state := int64(b.p.Disk.State)
	need := 2*profile.MiB + esp + 2*sys + state
	size := int64(b.p.Disk.Size)
	if size == 0 {
		size = need
	} else if size < need {
		return fmt.Errorf("%s: disk.size: %s is too small: the partitions need %s", b.p.File, b.p.Disk.Size, HumanSize(need))
	}
	espAttrs := uint64(0)
	if b.arch.BIOS {
		espAttrs = 1 << 2 // legacy BIOS bootable: gptmbr.bin boots the partition that has it
	}
	parts, err := gpt.Layout(size, []gpt.Want{
		{Name: PartESP, Type: gpt.TypeESP, Size: esp, Attributes: espAttrs},
		{Name: PartSysA, Type: gpt.TypeLinuxFS, Size: sys},
		{Name: PartSysB, Type: gpt.TypeLinuxFS, Size: sys},
		{Name: PartState, Type: gpt.TypeLinuxFS, Size: state},
	})
	if err != nil {
		return fmt.Errorf("disk layout: %w", err)
	}
	for i := range parts {
		parts[i].GUID = gpt.NameGUID(b.p.Name, b.p.Version, b.arch.Name, "partition", parts[i].Name)
	}
	disk := gpt.Disk{SizeBytes: size, GUID: gpt.NameGUID(b.p.Name, b.p.Version, b.arch.Name, "disk"), Partitions: parts}

	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		return err
	}
	espT, err := b.espTree("A")
	if err != nil {
		return err
	}
	if b.arch.BIOS {
		code, err := b.addBIOSLoader(espT)
		if err != nil {
			return err
		}
		disk.BootCode = code
	}
	espW := io.NewOffsetWriter(f, int64(parts[0].FirstLBA)*512)
	espLen := int64(parts[0].LastLBA-parts[0].FirstLBA+1) * 512
	if err := writeFATTo(espW, espT, fat.Options{Size: espLen, Label: "KILN-ESP", VolumeID: b.volumeID("esp"), ModTime: b.o.Epoch,
		Attributes: b.fatAttributes(), HiddenSectors: uint32(parts[0].FirstLBA)}); err != nil {
		return fmt.Errorf("ESP: %w", err)
	}
	if b.arch.BIOS {
		if err := b.installBIOSLoader(f, int64(parts[0].FirstLBA)*512, espLen); err != nil {
			return err
		}
	}
	sq, err := os.Open(b.sqfs)
	if err != nil {
		return err
	}
	defer sq.Close()
	if _, err := io.Copy(io.NewOffsetWriter(f, int64(parts[1].FirstLBA)*512), sq); err != nil {
		return fmt.Errorf("SYS-A: %w", err)
	}
	if err := gpt.Write(f, disk); err != nil {
		return err
	}
	done(size, fmt.Sprintf("GPT: ESP %s, SYS-A/B %s, STATE %s (grows on first boot)", HumanSize(esp), HumanSize(sys), HumanSize(state)))
	return f.Close()
}
