package netconf

import (
	"fmt"
)

// ParseV1 parses a cloud-init network-config version 1 document, with or
// without the top-level "network:" key.
func ParseV1(data []byte) (*Config, error) {
	const doc = "network-config v1"
	v, err := decodeYAML(doc, data)
	if err != nil {
		return nil, err
	}
	root, err := asObj("", v)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", doc, err)
	}
	if _, ok := root.m["network"]; ok {
		if root, err = root.obj("network"); err != nil {
			return nil, fmt.Errorf("%s: %v", doc, err)
		}
	}
	cfg, err := parseV1(root)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", doc, err)
	}
	if err := cfg.validate(doc); err != nil {
		return nil, err
	}
	return cfg, nil
}

func parseV1(root obj) (*Config, error) {
	if ver, err := root.int("version"); err != nil {
		return nil, err
	} else if ver != 1 {
		return nil, fmt.Errorf("version: want 1, got %d", ver)
	}
	items, err := root.list("config")
	if err != nil {
		return nil, err
	}
	cfg := &Config{}
	for i, it := range items {
		e, err := asObj(fmt.Sprintf("config[%d]", i), it)
		if err != nil {
			return nil, err
		}
		typ, err := e.str("type")
		if err != nil {
			return nil, err
		}
		switch typ {
		case "physical", "bond", "vlan":
			l, err := parseV1Link(e, typ)
			if err != nil {
				return nil, err
			}
			cfg.Links = append(cfg.Links, l)
		case "nameserver":
			ns, err := e.strList("address")
			if err != nil {
				return nil, err
			}
			for j, a := range ns {
				if _, err := parseAddr(fmt.Sprintf("%s[%d]", e.field("address"), j), a); err != nil {
					return nil, err
				}
			}
			s, err := e.strList("search")
			if err != nil {
				return nil, err
			}
			cfg.Nameservers = append(cfg.Nameservers, ns...)
			cfg.Search = append(cfg.Search, s...)
		case "route":
			r, err := parseRouteV1(e)
			if err != nil {
				return nil, err
			}
			cfg.Routes = append(cfg.Routes, r)
		default:
			return nil, fmt.Errorf("%s: %q is not supported (physical, bond, vlan, nameserver, route)", e.field("type"), typ)
		}
	}
	return cfg, nil
}

func parseV1Link(e obj, typ string) (Link, error) {
	l := Link{Kind: typ}
	var err error
	if l.ID, err = e.str("name"); err != nil {
		return l, err
	}
	if l.ID == "" {
		return l, fmt.Errorf("%s: missing", e.field("name"))
	}
	l.Name = l.ID
	if l.MTU, err = e.int("mtu"); err != nil {
		return l, err
	}
	mac, err := e.str("mac_address")
	if err != nil {
		return l, err
	}
	if mac != "" {
		if l.Match.MAC, err = parseMAC(e.field("mac_address"), mac); err != nil {
			return l, err
		}
	}
	switch typ {
	case Physical:
		if l.Match.MAC == "" {
			l.Match.Name = l.ID
		}
	case Bond:
		l.Match.MAC = ""
		if l.BondMembers, err = e.strList("bond_interfaces"); err != nil {
			return l, err
		}
		p, err := e.obj("params")
		if err != nil {
			return l, err
		}
		if l.BondMode, err = p.str("bond-mode"); err != nil {
			return l, err
		}
		if err := checkBondMode(p.field("bond-mode"), l.BondMode); err != nil {
			return l, err
		}
	case VLAN:
		l.Match.MAC = ""
		if l.VLANID, err = e.int("vlan_id"); err != nil {
			return l, err
		}
		if l.VLANLink, err = e.str("vlan_link"); err != nil {
			return l, err
		}
	}
	subnets, err := e.list("subnets")
	if err != nil {
		return l, err
	}
	for i, sv := range subnets {
		s, err := asObj(fmt.Sprintf("%s[%d]", e.field("subnets"), i), sv)
		if err != nil {
			return l, err
		}
		if err := parseV1Subnet(s, &l); err != nil {
			return l, err
		}
	}
	return l, nil
}

func parseV1Subnet(s obj, l *Link) error {
	typ, err := s.str("type")
	if err != nil {
		return err
	}
	switch typ {
	case "dhcp", "dhcp4":
		l.DHCP4 = true
		return nil
	case "dhcp6", "ipv6_dhcpv6-stateless", "ipv6_dhcpv6-stateful", "ipv6_slaac", "manual":
		return nil // left to the kernel (SLAAC) or not configured
	case "static", "static6":
	default:
		return fmt.Errorf("%s: %q is not a subnet type (dhcp, dhcp4, dhcp6, static, static6, manual)", s.field("type"), typ)
	}
	addr, err := s.str("address")
	if err != nil {
		return err
	}
	mask, err := s.str("netmask")
	if err != nil {
		return err
	}
	pf, perr := parsePrefix(s.field("address"), addr)
	if perr != nil || mask != "" {
		if pf, err = prefixFromMask(s.field("address"), addr, mask); err != nil {
			return err
		}
	}
	l.Addresses = append(l.Addresses, pf)
	gw, err := s.str("gateway")
	if err != nil {
		return err
	}
	if gw != "" {
		a, err := parseAddr(s.field("gateway"), gw)
		if err != nil {
			return err
		}
		if a.Is4() {
			l.Gateway4 = a
		} else {
			l.Gateway6 = a
		}
	}
	ns, err := s.strList("dns_nameservers")
	if err != nil {
		return err
	}
	for j, a := range ns {
		if _, err := parseAddr(fmt.Sprintf("%s[%d]", s.field("dns_nameservers"), j), a); err != nil {
			return err
		}
	}
	l.Nameservers = append(l.Nameservers, ns...)
	search, err := s.strList("dns_search")
	if err != nil {
		return err
	}
	l.Search = append(l.Search, search...)
	routes, err := s.list("routes")
	if err != nil {
		return err
	}
	for i, rv := range routes {
		r, err := asObj(fmt.Sprintf("%s[%d]", s.field("routes"), i), rv)
		if err != nil {
			return err
		}
		rt, err := parseRouteV1(r)
		if err != nil {
			return err
		}
		l.Routes = append(l.Routes, rt)
	}
	return nil
}

// parseRouteV1 reads {network|destination, netmask, gateway, metric}.
func parseRouteV1(r obj) (Route, error) {
	var rt Route
	dst, err := r.str("destination")
	if err != nil {
		return rt, err
	}
	field := r.field("destination")
	if dst == "" {
		if dst, err = r.str("network"); err != nil {
			return rt, err
		}
		field = r.field("network")
	}
	if dst == "" {
		return rt, fmt.Errorf("%s: missing", field)
	}
	mask, err := r.str("netmask")
	if err != nil {
		return rt, err
	}
	if p, perr := parsePrefix(field, dst); perr == nil && mask == "" {
		rt.To = p.Masked()
	} else if rt.To, err = prefixFromMask(field, dst, mask); err != nil {
		return rt, err
	} else {
		rt.To = rt.To.Masked()
	}
	gw, err := r.str("gateway")
	if err != nil {
		return rt, err
	}
	if gw != "" {
		if rt.Via, err = parseAddr(r.field("gateway"), gw); err != nil {
			return rt, err
		}
		if rt.Via.Is4() != rt.To.Addr().Is4() {
			return rt, fmt.Errorf("%s: gateway %s and destination %s differ in address family", r.path, rt.Via, rt.To)
		}
	}
	if rt.Metric, err = r.int("metric"); err != nil {
		return rt, err
	}
	return rt, nil
}
