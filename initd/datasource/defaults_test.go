package datasource

import "testing"

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
