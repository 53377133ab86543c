package uki

// x64Stub is the systemd-boot EFI stub of the host's Debian (systemd-boot-efi).
const x64Stub = "/usr/lib/systemd/boot/efi/linuxx64.efi.stub"
