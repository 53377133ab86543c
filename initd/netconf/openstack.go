package netconf

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// ParseNetworkData parses OpenStack's network_data.json (config drive or
// metadata service).
func ParseNetworkData(data []byte) (*Config, error) {
	const doc = "network_data.json"
	if len(data) > MaxSize {
		return nil, fmt.Errorf("%s: %d bytes exceeds the %d byte limit", doc, len(data), MaxSize)
	}
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, fmt.Errorf("%s: %v", doc, err)
	}
	root, err := asObj("", v)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", doc, err)
	}
	cfg, err := parseNetworkData(root)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", doc, err)
	}
	if err := cfg.validate(doc); err != nil {
		return nil, err
	}
	return cfg, nil
}

func parseNetworkData(root obj) (*Config, error) {
	cfg := &Config{}
	links, err := root.list("links")
	if err != nil {
		return nil, err
	}
	for i, lv := range links {
		e, err := asObj(fmt.Sprintf("links[%d]", i), lv)
		if err != nil {
			return nil, err
		}
		l := Link{}
		if l.ID, err = e.str("id"); err != nil {
			return nil, err
		}
		if l.ID == "" {
			return nil, fmt.Errorf("%s: missing", e.field("id"))
		}
		if l.MTU, err = e.int("mtu"); err != nil {
			return nil, err
		}
		typ, err := e.str("type")
		if err != nil {
			return nil, err
		}
		switch typ {
		case "bond":
			l.Kind, l.Name = Bond, l.ID
			if l.BondMembers, err = e.strList("bond_links"); err != nil {
				return nil, err
			}
			if l.BondMode, err = e.str("bond_mode"); err != nil {
				return nil, err
			}
			if err := checkBondMode(e.field("bond_mode"), l.BondMode); err != nil {
				return nil, err
			}
		case "vlan":
			l.Kind, l.Name = VLAN, l.ID
			if l.VLANID, err = e.int("vlan_id"); err != nil {
				return nil, err
			}
			if l.VLANLink, err = e.str("vlan_link"); err != nil {
				return nil, err
			}
		default:
			// phy, bridge, ovs, tap, vif, ... : a NIC seen by the guest, found by MAC.
			l.Kind = Physical
			mac, err := e.str("ethernet_mac_address")
			if err != nil {
				return nil, err
			}
			if mac == "" {
				return nil, fmt.Errorf("%s: missing for a %q link", e.field("ethernet_mac_address"), typ)
			}
			if l.Match.MAC, err = parseMAC(e.field("ethernet_mac_address"), mac); err != nil {
				return nil, err
			}
		}
		cfg.Links = append(cfg.Links, l)
	}
	nets, err := root.list("networks")
	if err != nil {
		return nil, err
	}
	for i, nv := range nets {
		n, err := asObj(fmt.Sprintf("networks[%d]", i), nv)
		if err != nil {
			return nil, err
		}
		ref, err := n.str("link")
		if err != nil {
			return nil, err
		}
		l := cfg.LinkByID(ref)
		if l == nil {
			return nil, fmt.Errorf("%s: %q is not a defined link", n.field("link"), ref)
		}
		typ, err := n.str("type")
		if err != nil {
			return nil, err
		}
		switch typ {
		case "ipv4_dhcp":
			l.DHCP4 = true
			continue
		case "ipv6_dhcp", "ipv6_slaac", "ipv6_dhcpv6-stateless", "ipv6_dhcpv6-stateful":
			continue
		case "ipv4", "ipv6":
		default:
			return nil, fmt.Errorf("%s: %q is not a network type", n.field("type"), typ)
		}
		ip, err := n.str("ip_address")
		if err != nil {
			return nil, err
		}
		mask, err := n.str("netmask")
		if err != nil {
			return nil, err
		}
		p, perr := parsePrefix(n.field("ip_address"), ip)
		if perr != nil || mask != "" {
			if p, err = prefixFromMask(n.field("ip_address"), ip, mask); err != nil {
				return nil, err
			}
		}
		if (typ == "ipv4") != p.Addr().Is4() {
			return nil, fmt.Errorf("%s: %q is not an %s address", n.field("ip_address"), ip, typ)
		}
		l.Addresses = append(l.Addresses, p)
		routes, err := n.list("routes")
		if err != nil {
			return nil, err
		}
		for j, rv := range routes {
			r, err := asObj(fmt.Sprintf("%s[%d]", n.field("routes"), j), rv)
			if err != nil {
				return nil, err
			}
			rt, err := parseRouteV1(r)
			if err != nil {
				return nil, err
			}
			l.Routes = append(l.Routes, rt)
		}
		dns, err := parseServices(n)
		if err != nil {
			return nil, err
		}
		l.Nameservers = append(l.Nameservers, dns...)
	}
	if cfg.Nameservers, err = parseServices(root); err != nil {
		return nil, err
	}
	return cfg, nil
}

func parseServices(o obj) ([]string, error) {
	svcs, err := o.list("services")
	if err != nil {
		return nil, err
	}
	var dns []string
	for i, sv := range svcs {
		s, err := asObj(fmt.Sprintf("%s[%d]", o.field("services"), i), sv)
		if err != nil {
			return nil, err
		}
		if t, err := s.str("type"); err != nil {
			return nil, err
		} else if t != "dns" {
			continue
		}
		a, err := s.str("address")
		if err != nil {
			return nil, err
		}
		if _, err := parseAddr(s.field("address"), a); err != nil {
			return nil, err
		}
		dns = append(dns, a)
	}
	return dns, nil
}
