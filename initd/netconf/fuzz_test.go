package netconf

import (
	"os"
	"testing"
)

var osReadFile = os.ReadFile

func addSeeds(f *testing.F, files ...string) {
	for _, n := range files {
		b, err := readFile(n)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

func readFile(n string) ([]byte, error) { return osReadFile("testdata/" + n) }

// checkInvariants: whatever parses must be internally consistent.
func checkInvariants(t *testing.T, c *Config) {
	for _, l := range c.Links {
		for _, m := range l.BondMembers {
			if c.LinkByID(m) == nil {
				t.Fatalf("dangling bond member %q", m)
			}
		}
		if l.Kind == VLAN && c.LinkByID(l.VLANLink) == nil {
			t.Fatalf("dangling vlan link %q", l.VLANLink)
		}
		for _, a := range l.Addresses {
			if !a.IsValid() {
				t.Fatalf("invalid address in %+v", l)
			}
		}
	}
}

func FuzzParseV2(f *testing.F) {
	addSeeds(f, "v2-docs.yaml")
	f.Add([]byte("version: 2\nethernets:\n  e: {dhcp4: true}\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if c, err := ParseV2(b); err == nil {
			checkInvariants(t, c)
		}
	})
}

func FuzzParseV1(f *testing.F) {
	addSeeds(f, "v1-docs.yaml")
	f.Add([]byte("version: 1\nconfig:\n- {type: physical, name: eth0, subnets: [{type: dhcp}]}\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if c, err := ParseV1(b); err == nil {
			checkInvariants(t, c)
		}
	})
}

func FuzzNetworkData(f *testing.F) {
	addSeeds(f, "network_data.json")
	f.Add([]byte(`{"links":[],"networks":[],"services":[]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if c, err := ParseNetworkData(b); err == nil {
			checkInvariants(t, c)
		}
	})
}
