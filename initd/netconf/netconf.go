// Package netconf parses the network configurations a seed can carry
// (cloud-init network-config v1 and v2, OpenStack network_data.json) into
// one normalised Config that initd/network applies.
package netconf

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// MaxSize bounds any network configuration document; real ones are a few KiB.
const MaxSize = 1 << 20

// Link kinds.
const (
	Physical = "physical"
	Bond     = "bond"
	VLAN     = "vlan"
)

// Config is the normalised network configuration.
type Config struct {
	Links       []Link
	Routes      []Route  // routes not tied to one link (v1 "route" entries)
	Nameservers []string // global DNS servers
	Search      []string // global DNS search domains
}

// Link is one interface to configure.
type Link struct {
	ID   string // the identifier the source document uses (references point here)
	Kind string // Physical, Bond or VLAN
	// Name is the interface name to use: for physical links the name to set
	// (empty keeps the kernel's name), for bonds and VLANs the name to create.
	Name  string
	Match Match // physical links only
	MTU   int   // 0 keeps the default

	DHCP4     bool
	Addresses []netip.Prefix
	Gateway4  netip.Addr
	Gateway6  netip.Addr
	Routes    []Route

	Nameservers []string
	Search      []string

	BondMembers []string // link IDs
	BondMode    string   // e.g. "active-backup", "802.3ad"

	VLANID   int
	VLANLink string // link ID of the parent
}

// Match selects a physical NIC; empty fields match anything.
type Match struct {
	MAC  string // lower-case aa:bb:cc:dd:ee:ff
	Name string // shell glob against the kernel name
}

// Route is a static route.
type Route struct {
	To     netip.Prefix
	Via    netip.Addr // invalid for on-link routes
	Metric int
}

// LinkByID returns the link with the given ID, or nil.
func (c *Config) LinkByID(id string) *Link {
	for i := range c.Links {
		if c.Links[i].ID == id {
			return &c.Links[i]
		}
	}
	return nil
}

// Parse detects the format by name ("v1", "v2", "openstack"; "" guesses from
// the content) and parses data.
func Parse(format string, data []byte) (*Config, error) {
	switch format {
	case "v1":
		return ParseV1(data)
	case "v2":
		return ParseV2(data)
	case "openstack":
		return ParseNetworkData(data)
	case "":
		return parseGuess(data)
	}
	return nil, fmt.Errorf("network-config: unknown format %q (want v1, v2 or openstack)", format)
}

func parseGuess(data []byte) (*Config, error) {
	if t := strings.TrimSpace(string(data)); strings.HasPrefix(t, "{") {
		return ParseNetworkData(data)
	}
	v, err := decodeYAML("network-config", data)
	if err != nil {
		return nil, err
	}
	m, _ := v.(map[string]any)
	if n, ok := m["network"].(map[string]any); ok {
		m = n
	}
	switch fmt.Sprint(m["version"]) {
	case "1":
		return ParseV1(data)
	case "2":
		return ParseV2(data)
	}
	return nil, fmt.Errorf("network-config: version: want 1 or 2, got %v", m["version"])
}

// validate checks cross-references once a document is fully parsed.
func (c *Config) validate(doc string) error {
	seen := map[string]bool{}
	for _, l := range c.Links {
		if seen[l.ID] {
			return fmt.Errorf("%s: link %q defined twice", doc, l.ID)
		}
		seen[l.ID] = true
	}
	for _, l := range c.Links {
		for _, m := range l.BondMembers {
			ml := c.LinkByID(m)
			if ml == nil {
				return fmt.Errorf("%s: %s: bond member %q is not a defined link", doc, l.ID, m)
			}
			if ml.Kind != Physical {
				return fmt.Errorf("%s: %s: bond member %q is a %s, not a physical link", doc, l.ID, m, ml.Kind)
			}
		}
		if l.Kind == VLAN {
			if l.VLANLink == "" {
				return fmt.Errorf("%s: %s: vlan has no link", doc, l.ID)
			}
			if c.LinkByID(l.VLANLink) == nil {
				return fmt.Errorf("%s: %s: link %q is not a defined link", doc, l.ID, l.VLANLink)
			}
			if l.VLANID < 1 || l.VLANID > 4094 {
				return fmt.Errorf("%s: %s: vlan id %d out of range 1-4094", doc, l.ID, l.VLANID)
			}
		}
		if l.Name != "" && !validIfName(l.Name) {
			return fmt.Errorf("%s: %s: %q is not a valid interface name", doc, l.ID, l.Name)
		}
	}
	return nil
}

// validIfName follows the kernel's dev_valid_name.
func validIfName(s string) bool {
	if s == "" || len(s) > 15 || s == "." || s == ".." {
		return false
	}
	for _, r := range s {
		if r == '/' || r == ':' || r <= ' ' || r > '~' {
			return false
		}
	}
	return true
}

func parseMAC(field, s string) (string, error) {
	hw, err := net.ParseMAC(s)
	if err != nil || len(hw) != 6 {
		return "", fmt.Errorf("%s: %q is not a MAC address", field, s)
	}
	return hw.String(), nil
}

func parseAddr(field, s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("%s: %q is not an IP address", field, s)
	}
	return a, nil
}

func parsePrefix(field, s string) (netip.Prefix, error) {
	if a, m, ok := strings.Cut(s, "/"); ok && strings.Contains(m, ".") {
		return prefixFromMask(field, a, m) // 192.168.1.10/255.255.255.0, as cloud-init's docs write it
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%s: %q is not an address/prefix", field, s)
	}
	return p, nil
}

// prefixFromMask combines an address with a dotted netmask or a prefix length.
func prefixFromMask(field, addr, mask string) (netip.Prefix, error) {
	a, err := parseAddr(field, addr)
	if err != nil {
		return netip.Prefix{}, err
	}
	if mask == "" {
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	if m, err := netip.ParseAddr(mask); err == nil && m.Is4() == a.Is4() {
		ones, bits := net.IPMask(m.AsSlice()).Size()
		if bits == 0 {
			return netip.Prefix{}, fmt.Errorf("%s: netmask %q is not contiguous", field, mask)
		}
		return netip.PrefixFrom(a, ones), nil
	}
	var n int
	if _, err := fmt.Sscanf(mask, "%d", &n); err == nil && fmt.Sprint(n) == mask && n >= 0 && n <= a.BitLen() {
		return netip.PrefixFrom(a, n), nil
	}
	return netip.Prefix{}, fmt.Errorf("%s: %q is not a netmask", field, mask)
}
