package datasource

// Defaults returns every source in the order initd tries them: the ones on
// the machine first (command line, CIDATA, config-2, VMware guestinfo, OVF
// environment), then the metadata services, which need DHCP up (OpenStack,
// ZStack, Alibaba, EC2), and last the seed baked onto the boot medium, the
// fallback when the platform provides nothing. ZStack serves the EC2 tree
// at the EC2 address: the DMI-detected services go before the generic EC2
// probe, or a ZStack seed would be reported as coming from EC2.
func Defaults(cmdline map[string]string, vols Volumes, dmiDir string) []Source {
	return []Source{
		Cmdline{Args: cmdline},
		NoCloud{Volumes: vols},
		ConfigDrive{Volumes: vols},
		GuestInfo{DMIDir: dmiDir},
		OVF{Volumes: vols},
		OpenStackMetadata{},
		NewZStack(dmiDir),
		NewAliyun(dmiDir),
		NewEC2(),
		BootMedium{Volumes: vols, Label: cmdline["kiln.label"]},
	}
}
