package arch

var arm64 = Info{
	Name:        "arm64",
	DebArch:     "arm64",
	GOARCH:      "arm64",
	Console:     "ttyAMA0",
	EFIStub:     PkgFile{"systemd-boot-efi", "usr/lib/systemd/boot/efi/linuxaa64.efi.stub"},
	EFIBootFile: "EFI/BOOT/BOOTAA64.EFI",
	QEMU: QEMU{
		Binary:   "qemu-system-aarch64",
		Package:  "qemu-system-arm",
		Machine:  "virt",
		CPU:      "max",
		UEFICode: "/usr/share/AAVMF/AAVMF_CODE.fd",
		UEFIVars: "/usr/share/AAVMF/AAVMF_VARS.fd",
		UEFIPkg:  "qemu-efi-aarch64",
		NIC:      "virtio-net-pci",
		Disk:     "virtio",
		CDROM:    "virtio-scsi",
	},
	OVFOSType: "otherLinux64Guest",
}
