package initd

import (
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/kilnproject/kiln/initd/kmod"
	"github.com/kilnproject/kiln/initd/sysfs"
)

// hypervisorName says whether initd runs in a virtual machine, and which
// kind as far as it can tell ("" on bare metal). x86 CPUs under any
// hypervisor report the "hypervisor" CPUID flag; Xen guests have
// /sys/hypervisor; elsewhere (arm64) the firmware's DMI vendor and product
// name tell.
func hypervisorName(proc, sys string) string {
	if s, _ := sysfs.ReadAttr(filepath.Join(sys, "hypervisor", "type")); s != "" {
		return s
	}
	dmi := func(f string) string {
		s, _ := sysfs.ReadAttr(filepath.Join(sys, "class", "dmi", "id", f))
		return s
	}
	vendor, product := dmi("sys_vendor"), dmi("product_name")
	for _, k := range []struct{ in, name string }{
		{"QEMU", "qemu"}, {"KVM", "kvm"}, {"VMware", "vmware"}, {"VirtualBox", "virtualbox"},
		{"innotek", "virtualbox"}, {"Xen", "xen"}, {"Virtual Machine", "hyperv"}, {"Parallels", "parallels"},
		{"Amazon EC2", "ec2"}, {"Google Compute Engine", "gce"}, {"OpenStack", "openstack"}, {"Alibaba Cloud ECS", "ecs"},
	} {
		if strings.Contains(vendor, k.in) || strings.Contains(product, k.in) {
			return k.name
		}
	}
	if b, err := os.ReadFile(filepath.Join(proc, "cpuinfo")); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "flags" {
				for _, f := range strings.Fields(v) {
					if f == "hypervisor" {
						return "hypervisor"
					}
				}
				break
			}
		}
	}
	return ""
}

var hypervisor = sync.OnceValue(func() string { return hypervisorName("/proc", "/sys") })

// vmModuleDefaults are module parameters for virtual hardware, given
// unless the kernel command line sets them. libata waits 200 ms before it
// debounces a SATA link it has reset, for physical PHYs that misbehave when
// polled at once; an emulated AHCI controller has no PHY, and the wait is
// a fifth of a second before a VM's CD-ROM (the ISO) appears.
var vmModuleDefaults = []struct{ module, param, value string }{
	{"libata", "force", "nodbdelay"},
}

// moduleOptions are the module parameters initd's loads use: the kernel
// command line's, and in a VM vmModuleDefaults.
func moduleOptions() kmod.Options {
	o := kmod.ReadOptions("/proc/cmdline")
	if hypervisor() != "" {
		for _, d := range vmModuleDefaults {
			o.Default(d.module, d.param, d.value)
		}
	}
	return o
}
