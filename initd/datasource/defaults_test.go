package datasource

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// ZStack and Alibaba are recognised from DMI and ZStack answers at the EC2
// address with the EC2 tree: both must be asked before the generic EC2
// probe, which would otherwise claim their seeds.
func TestDefaultsOrderDMIServicesBeforeEC2(t *testing.T) {
	pos := map[string]int{}
	for i, s := range Defaults(nil, SysVolumes{}, t.TempDir()) {
		pos[s.Name()] = i
	}
	for _, name := range []string{"zstack", "aliyun"} {
		if pos[name] > pos["ec2"] {
			t.Errorf("Defaults tries %s (at %d) after ec2 (at %d)", name, pos[name], pos["ec2"])
		}
	}
}

func TestMetadataServicesAskedWhereDMISaysSo(t *testing.T) {
	write := func(dir string, files map[string]string) {
		for name, v := range files {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(v+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, c := range []struct {
		name      string
		dmi       map[string]string
		cmdline   map[string]string
		openstack bool
		ec2       bool
	}{
		{"plain QEMU", map[string]string{"sys_vendor": "QEMU", "product_name": "Standard PC (Q35 + ICH9, 2009)"}, nil, false, false},
		{"bare metal", map[string]string{"sys_vendor": "Dell Inc.", "product_name": "PowerEdge R650"}, nil, false, false},
		{"Nova", map[string]string{"sys_vendor": "OpenStack Foundation", "product_name": "OpenStack Nova"}, nil, true, false},
		{"Nova asset tag", map[string]string{"sys_vendor": "RDO", "product_name": "KVM", "chassis_asset_tag": "OpenStack Nova"}, nil, true, false},
		{"Huawei Cloud", map[string]string{"chassis_asset_tag": "HUAWEICLOUD"}, nil, true, false},
		{"EC2 Nitro", map[string]string{"sys_vendor": "Amazon EC2", "product_name": "m5.large"}, nil, false, true},
		{"EC2 Xen", map[string]string{"sys_vendor": "Xen", "product_uuid": "EC2E1916-9099-7CAF-FD21-012345678901"}, nil, false, true},
		{"forced ec2", map[string]string{"sys_vendor": "QEMU"}, map[string]string{"ds": "ec2"}, false, true},
		{"forced openstack", map[string]string{"sys_vendor": "QEMU"}, map[string]string{"ds": "OpenStack;s=x"}, true, false},
	} {
		dir := t.TempDir()
		write(dir, c.dmi)
		got := map[string]bool{}
		for _, s := range Defaults(c.cmdline, DirVolumes{}, dir) {
			if ns, ok := s.(NetworkSource); ok {
				got[s.Name()] = ns.NeedsNetwork()
			}
		}
		if runtime.GOARCH == "amd64" && got["openstack"] != c.openstack || got["ec2"] != c.ec2 {
			t.Errorf("%s: openstack asked %v, ec2 asked %v; want %v, %v", c.name, got["openstack"], got["ec2"], c.openstack, c.ec2)
		}
	}
	if !isOpenStack(t.TempDir(), "arm64") {
		t.Error("arm64 without DMI: OpenStack not asked")
	}
}
