package arch

var amd64 = Info{
	Name:         "amd64",
	DebArch:      "amd64",
	GOARCH:       "amd64",
	Console:      "ttyS0,115200",
	EFIStub:      PkgFile{"systemd-boot-efi", "usr/lib/systemd/boot/efi/linuxx64.efi.stub"},
	EFIBootFile:  "EFI/BOOT/BOOTX64.EFI",
	BIOS:         true,
	ISOLinux:     PkgFile{"isolinux", "usr/lib/ISOLINUX/isolinux.bin"},
	ISOHybridMBR: PkgFile{"isolinux", "usr/lib/ISOLINUX/isohdpfx.bin"},
	LDLinux:      PkgFile{"syslinux-common", "usr/lib/syslinux/modules/bios/ldlinux.c32"},
	GPTMBR:       PkgFile{"syslinux-common", "usr/lib/syslinux/mbr/gptmbr.bin"},
	QEMU: QEMU{
		Binary:   "qemu-system-x86_64",
		Package:  "qemu-system-x86",
		Machine:  "q35",
		CPU:      "max",
		UEFICode: "/usr/share/OVMF/OVMF_CODE_4M.fd",
		UEFIVars: "/usr/share/OVMF/OVMF_VARS_4M.fd",
		UEFIPkg:  "ovmf",
		NIC:      "virtio-net-pci",
		Disk:     "virtio",
		CDROM:    "ide",
	},
	OVFOSType: "other5xLinux64Guest",
}
