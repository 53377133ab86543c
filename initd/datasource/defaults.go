package datasource

// Defaults returns every source in the order initd tries them: the ones on
// the machine first (command line, CIDATA, config-2, VMware guestinfo, OVF
// environment), then the metadata services, which need DHCP up (OpenStack,
// EC2, ZStack, Alibaba), and last the seed baked onto the boot medium, the
// fallback when the platform provides nothing.
func Defaults(cmdline map[string]string, vols Volumes, dmiDir string) []Source {
	return []Source{
		Cmdline{Args: cmdline},
		NoCloud{Volumes: vols},
		ConfigDrive{Volumes: vols},
		GuestInfo{DMIDir: dmiDir},
		OVF{Volumes: vols},
		OpenStackMetadata{},
		NewEC2(),
		NewZStack(dmiDir),
		NewAliyun(dmiDir),
		BootMedium{Volumes: vols, Label: cmdline["kiln.label"]},
	}
}
