package netconf

import (
	"net/netip"
	"os"
	"strings"
	"testing"
)

func read(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustLink(t *testing.T, c *Config, id string) *Link {
	t.Helper()
	l := c.LinkByID(id)
	if l == nil {
		t.Fatalf("link %q missing", id)
	}
	return l
}

func TestV1Docs(t *testing.T) {
	c, err := Parse("", read(t, "v1-docs.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	i0 := mustLink(t, c, "interface0")
	if i0.Match.MAC != "00:11:22:33:44:55" || i0.Addresses[0] != netip.MustParsePrefix("192.168.23.14/27") ||
		i0.Gateway4 != netip.MustParseAddr("192.168.23.1") || len(i0.Nameservers) != 2 || i0.Search[0] != "exemplary.maas" {
		t.Errorf("interface0 = %+v", i0)
	}
	if j := mustLink(t, c, "jumbo0"); j.MTU != 9000 {
		t.Errorf("jumbo0 mtu %d", j.MTU)
	}
	b := mustLink(t, c, "bond0")
	if b.Kind != Bond || b.BondMode != "active-backup" || strings.Join(b.BondMembers, ",") != "gbe0,gbe1" || !b.DHCP4 {
		t.Errorf("bond0 = %+v", b)
	}
	v := mustLink(t, c, "bond0.200")
	if v.Kind != VLAN || v.VLANID != 200 || v.VLANLink != "bond0" ||
		v.Addresses[0] != netip.MustParsePrefix("10.200.0.5/24") ||
		v.Routes[0].To != netip.MustParsePrefix("10.0.0.0/8") || v.Routes[0].Via != netip.MustParseAddr("10.200.0.1") {
		t.Errorf("vlan = %+v", v)
	}
	if strings.Join(c.Nameservers, ",") != "192.168.23.2,8.8.8.8" || c.Search[0] != "exemplary" {
		t.Errorf("global dns %v %v", c.Nameservers, c.Search)
	}
	if len(c.Routes) != 1 || c.Routes[0].Metric != 3 || c.Routes[0].To != netip.MustParsePrefix("192.168.24.0/24") {
		t.Errorf("routes %+v", c.Routes)
	}
}

func TestV2Docs(t *testing.T) {
	c, err := Parse("", read(t, "v2-docs.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	id0 := mustLink(t, c, "id0")
	if id0.Match.MAC != "00:11:22:33:44:55" || !id0.DHCP4 || len(id0.Addresses) != 2 ||
		id0.Gateway4 != netip.MustParseAddr("192.168.14.1") || id0.Gateway6 != netip.MustParseAddr("2001:1::2") ||
		id0.Nameservers[0] != "8.8.8.8" || len(id0.Search) != 2 || id0.Routes[0].Metric != 3 ||
		id0.Routes[0].To != netip.MustParsePrefix("0.0.0.0/0") {
		t.Errorf("id0 = %+v", id0)
	}
	lom := mustLink(t, c, "lom")
	if lom.Name != "lom1" || lom.Match.Name != "en*" || lom.MTU != 9000 {
		t.Errorf("lom = %+v", lom)
	}
	if c2, err := ParseV2([]byte("version: 2\nethernets:\n  e:\n    addresses: [192.168.1.10/255.255.255.0]\n")); err != nil || c2.Links[0].Addresses[0] != netip.MustParsePrefix("192.168.1.10/24") {
		t.Errorf("dotted mask: %v", err)
	}
	if e := mustLink(t, c, "eno1"); e.Match.Name != "eno1" {
		t.Errorf("eno1 = %+v", e)
	}
	b := mustLink(t, c, "bond0")
	if b.BondMode != "802.3ad" || len(b.BondMembers) != 2 {
		t.Errorf("bond0 = %+v", b)
	}
	vpn := mustLink(t, c, "en-vpn")
	if vpn.VLANID != 2 || vpn.VLANLink != "bond0" || vpn.Routes[0].To.Bits() != 0 || !mustLink(t, c, "en-intra").DHCP4 {
		t.Errorf("en-vpn = %+v", vpn)
	}
}

func TestNetworkData(t *testing.T) {
	c, err := Parse("openstack", read(t, "network_data.json"))
	if err != nil {
		t.Fatal(err)
	}
	if l := mustLink(t, c, "tapcd9f6d46-4a"); !l.DHCP4 || l.Match.MAC != "fa:16:3e:9c:bf:3d" || l.Kind != Physical {
		t.Errorf("tap0 = %+v", l)
	}
	l := mustLink(t, c, "tap2ecc7709-b3")
	if l.MTU != 1450 || l.Addresses[0] != netip.MustParsePrefix("10.184.0.244/20") || len(l.Routes) != 2 ||
		l.Routes[1].To.Bits() != 0 || l.Routes[1].Via != netip.MustParseAddr("23.253.157.1") {
		t.Errorf("tap1 = %+v", l)
	}
	if b := mustLink(t, c, "bond0"); b.Kind != Bond || b.BondMode != "802.3ad" {
		t.Errorf("bond0 = %+v", b)
	}
	v := mustLink(t, c, "vlan0")
	if v.VLANID != 101 || v.Addresses[0].Bits() != 24 || v.Routes[0].To != netip.MustParsePrefix("::/0") || v.Nameservers[0] != "2001:4860:4860::8888" {
		t.Errorf("vlan0 = %+v", v)
	}
	if strings.Join(c.Nameservers, ",") != "8.8.8.8,8.8.4.4" {
		t.Errorf("dns %v", c.Nameservers)
	}
}

func TestErrorsNameTheField(t *testing.T) {
	for _, tc := range []struct{ format, doc, want string }{
		{"v2", "version: 2\nethernets:\n  eth0:\n    addresses: [10.0.0.300/24]\n", "ethernets.eth0.addresses[0]: \"10.0.0.300/24\""},
		{"v2", "version: 2\nethernets:\n  eth0:\n    gateway4: 2001::1\n", "ethernets.eth0.gateway4"},
		{"v2", "version: 2\nbonds:\n  bond0:\n    interfaces: [nope]\n", "bond member \"nope\" is not a defined link"},
		{"v2", "version: 2\nvlans:\n  v1:\n    id: 5\n    link: ghost\n", "v1: link \"ghost\" is not a defined link"},
		{"v2", "version: 2\nethernets:\n  e:\n    match: {macaddress: zz}\n", "ethernets.e.match.macaddress: \"zz\" is not a MAC"},
		{"v2", "version: 2\nethernets:\n  e:\n    mtu: big\n", "ethernets.e.mtu"},
		{"v2", "version: 2\nethernets:\n  e:\n    routes: [{to: 10.0.0.0/8, via: fe80::1}]\n", "ethernets.e.routes[0]"},
		{"v2", "version: 2\nvlans:\n  v:\n    id: 5000\n    link: v\n", "vlan id 5000 out of range"},
		{"v2", "version: 3\n", "version: want 2"},
		{"v2", "version: 2\nethernets: [a]\n", "ethernets: want a mapping"},
		{"v2", "version: 2\nbonds:\n  b:\n    parameters: {mode: fastest}\n", "bonds.b.parameters.mode"},
		{"v1", "version: 1\nconfig:\n  - type: physical\n    name: eth0\n    subnets:\n      - type: static\n        address: 10.0.0.1\n        netmask: 255.0.255.0\n", "config[0].subnets[0].address: netmask"},
		{"v1", "version: 1\nconfig:\n  - type: bridge\n    name: br0\n", "config[0].type: \"bridge\" is not supported"},
		{"v1", "version: 1\nconfig:\n  - type: physical\n", "config[0].name: missing"},
		{"v1", "version: 1\nconfig:\n  - type: nameserver\n    address: [dns.example]\n", "config[0].address[0]"},
		{"openstack", `{"links":[{"id":"a","type":"phy","ethernet_mac_address":"fa:16:3e:00:00:01"}],"networks":[{"link":"b","type":"ipv4_dhcp"}]}`, "networks[0].link: \"b\" is not a defined link"},
		{"openstack", `{"links":[{"id":"a","type":"phy"}]}`, "links[0].ethernet_mac_address: missing"},
		{"openstack", `{"links":[{"id":"a","type":"phy","ethernet_mac_address":"fa:16:3e:00:00:01"}],"networks":[{"link":"a","type":"ipv4","ip_address":"10.0.0.1","netmask":"255.255.0.255"}]}`, "networks[0].ip_address: netmask"},
		{"openstack", `{"links": 5}`, "links: want a list"},
		{"openstack", `[`, "network_data.json"},
		{"", "hello: [", "network-config"},
		{"x", "", "unknown format"},
	} {
		_, err := Parse(tc.format, []byte(tc.doc))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%s, %q) = %v, want error containing %q", tc.format, tc.doc, err, tc.want)
		}
	}
}

func TestHostileInput(t *testing.T) {
	big := make([]byte, MaxSize+1)
	for _, f := range []string{"v1", "v2", "openstack"} {
		if _, err := Parse(f, big); err == nil || !strings.Contains(err.Error(), "limit") {
			t.Errorf("%s: huge input: %v", f, err)
		}
	}
	deep := strings.Repeat("[", 20000) + strings.Repeat("]", 20000)
	if _, err := ParseV2([]byte(deep)); err == nil {
		t.Error("deep nesting accepted")
	}
	if _, err := ParseNetworkData([]byte(deep)); err == nil {
		t.Error("deep JSON nesting accepted")
	}
	laughs := "a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n" +
		"d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n" +
		"g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\nh: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\ni: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]\n"
	if _, err := ParseV2([]byte(laughs)); err == nil {
		t.Error("billion laughs accepted")
	}
	if _, err := Parse("v2", []byte("version: 2\nethernets:\n  \"a/b\":\n    set-name: \"../x\"\n")); err == nil {
		t.Error("interface name with slash accepted")
	}
}
