package datasource

import (
	"runtime"
	"strings"
)

// Defaults returns every source in the order initd tries them: the ones on
// the machine first (command line, CIDATA, config-2, VMware guestinfo, OVF
// environment), then the metadata services, which need DHCP up (OpenStack,
// ZStack, Alibaba, EC2), and last the seed baked onto the boot medium, the
// fallback when the platform provides nothing. ZStack serves the EC2 tree
// at the EC2 address: the DMI-detected services go before the generic EC2
// probe, or a ZStack seed would be reported as coming from EC2.
//
// The OpenStack and EC2 services are asked only on machines that say they
// run there (DMI, as cloud-init's ds-identify reads it), or when the kernel
// command line names them (ds=openstack, ds=ec2): elsewhere nothing answers
// at 169.254.169.254, and each would cost a connection timeout on every
// boot of a bare-metal or desktop-hypervisor node.
func Defaults(cmdline map[string]string, vols Volumes, dmiDir string) []Source {
	ec2 := NewEC2()
	ec2.Detect = func() bool { return forced(cmdline, "ec2") || isEC2(dmiDir) }
	return []Source{
		Cmdline{Args: cmdline},
		NoCloud{Volumes: vols},
		ConfigDrive{Volumes: vols},
		GuestInfo{DMIDir: dmiDir},
		OVF{Volumes: vols},
		OpenStackMetadata{Detect: func() bool { return forced(cmdline, "openstack") || isOpenStack(dmiDir, runtime.GOARCH) }},
		NewZStack(dmiDir),
		NewAliyun(dmiDir),
		ec2,
		BootMedium{Volumes: vols, Label: cmdline["kiln.label"]},
	}
}

// forced reports whether the command line's ds= names the source
// ("ds=ec2", "ds=openstack;..." as cloud-init writes it).
func forced(cmdline map[string]string, name string) bool {
	ds, _, _ := strings.Cut(cmdline["ds"], ";")
	return strings.EqualFold(ds, name)
}

// isOpenStack reads OpenStack's DMI marks: Nova's product name, or the
// asset tags of clouds built on it. On other architectures than amd64
// firmware often carries none, so there the service is always asked.
func isOpenStack(dmiDir, arch string) bool {
	if arch != "amd64" {
		return true
	}
	product, tag := dmi(dmiDir, "product_name"), dmi(dmiDir, "chassis_asset_tag")
	for _, p := range []string{"OpenStack Nova", "OpenStack Compute"} {
		if product == p || tag == p {
			return true
		}
	}
	for _, t := range []string{"OpenTelekomCloud", "SAP CCloud VM", "HUAWEICLOUD"} {
		if tag == t {
			return true
		}
	}
	return dmi(dmiDir, "sys_vendor") == "OpenStack Foundation"
}

// isEC2 reads Amazon's DMI marks: the vendor on Nitro instances, the
// "ec2" prefix of the UUID on Xen ones.
func isEC2(dmiDir string) bool {
	if dmi(dmiDir, "sys_vendor") == "Amazon EC2" || dmi(dmiDir, "bios_vendor") == "Amazon EC2" {
		return true
	}
	return strings.HasPrefix(strings.ToLower(dmi(dmiDir, "product_uuid")), "ec2")
}
