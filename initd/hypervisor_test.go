package initd

import (
	"os"
	"path/filepath"
	"testing"
)

func TestHypervisorName(t *testing.T) {
	write := func(root, rel, data string) {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	const metalFlags = "processor\t: 0\nflags\t\t: fpu vme de pse tsc msr sse4_2 x2apic\n"
	for _, c := range []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"bare metal", map[string]string{"proc/cpuinfo": metalFlags, "sys/class/dmi/id/sys_vendor": "Dell Inc.\n",
			"sys/class/dmi/id/product_name": "PowerEdge R650\n"}, ""},
		{"no DMI, no cpuinfo (arm64 device tree board)", map[string]string{}, ""},
		{"x86 CPUID flag", map[string]string{"proc/cpuinfo": "flags\t\t: fpu sse4_2 hypervisor lahf_lm\n"}, "hypervisor"},
		{"flag as a substring only", map[string]string{"proc/cpuinfo": "flags\t\t: fpu nothypervisor\n"}, ""},
		{"QEMU arm64 (DMI)", map[string]string{"sys/class/dmi/id/sys_vendor": "QEMU\n", "sys/class/dmi/id/product_name": "KVM Virtual Machine\n"}, "qemu"},
		{"VMware", map[string]string{"sys/class/dmi/id/sys_vendor": "VMware, Inc.\n", "sys/class/dmi/id/product_name": "VMware Virtual Platform\n"}, "vmware"},
		{"VirtualBox", map[string]string{"sys/class/dmi/id/sys_vendor": "innotek GmbH\n", "sys/class/dmi/id/product_name": "VirtualBox\n"}, "virtualbox"},
		{"Hyper-V", map[string]string{"sys/class/dmi/id/sys_vendor": "Microsoft Corporation\n", "sys/class/dmi/id/product_name": "Virtual Machine\n"}, "hyperv"},
		{"Xen", map[string]string{"sys/hypervisor/type": "xen\n"}, "xen"},
	} {
		root := t.TempDir()
		for rel, data := range c.files {
			write(root, rel, data)
		}
		if got := hypervisorName(filepath.Join(root, "proc"), filepath.Join(root, "sys")); got != c.want {
			t.Errorf("%s: hypervisorName = %q, want %q", c.name, got, c.want)
		}
	}
}
