package netconf

import (
	"fmt"
	"strings"
)

// ParseV2 parses a netplan-style network-config version 2 document, with or
// without the top-level "network:" key.
func ParseV2(data []byte) (*Config, error) {
	const doc = "network-config v2"
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
	cfg, err := parseV2(root)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", doc, err)
	}
	if err := cfg.validate(doc); err != nil {
		return nil, err
	}
	return cfg, nil
}

func parseV2(root obj) (*Config, error) {
	if ver, err := root.int("version"); err != nil {
		return nil, err
	} else if ver != 2 {
		return nil, fmt.Errorf("version: want 2, got %d", ver)
	}
	cfg := &Config{}
	eths, ids, err := root.mapKeyed("ethernets")
	if err != nil {
		return nil, err
	}
	for i, e := range eths {
		l := Link{ID: ids[i], Kind: Physical}
		m, err := e.obj("match")
		if err != nil {
			return nil, err
		}
		if mac, err := m.str("macaddress"); err != nil {
			return nil, err
		} else if mac != "" {
			if l.Match.MAC, err = parseMAC(m.field("macaddress"), mac); err != nil {
				return nil, err
			}
		}
		if l.Match.Name, err = m.str("name"); err != nil {
			return nil, err
		}
		if l.Name, err = e.str("set-name"); err != nil {
			return nil, err
		}
		if _, ok := e.m["match"]; !ok {
			// Without match, the ID is the kernel name.
			l.Match.Name = l.ID
		}
		if err := parseV2Common(e, &l); err != nil {
			return nil, err
		}
		cfg.Links = append(cfg.Links, l)
	}
	bonds, ids, err := root.mapKeyed("bonds")
	if err != nil {
		return nil, err
	}
	for i, b := range bonds {
		l := Link{ID: ids[i], Kind: Bond, Name: ids[i]}
		if l.BondMembers, err = b.strList("interfaces"); err != nil {
			return nil, err
		}
		p, err := b.obj("parameters")
		if err != nil {
			return nil, err
		}
		if l.BondMode, err = p.str("mode"); err != nil {
			return nil, err
		}
		if err := checkBondMode(p.field("mode"), l.BondMode); err != nil {
			return nil, err
		}
		if err := parseV2Common(b, &l); err != nil {
			return nil, err
		}
		cfg.Links = append(cfg.Links, l)
	}
	vlans, ids, err := root.mapKeyed("vlans")
	if err != nil {
		return nil, err
	}
	for i, v := range vlans {
		l := Link{ID: ids[i], Kind: VLAN, Name: ids[i]}
		if l.VLANID, err = v.int("id"); err != nil {
			return nil, err
		}
		if l.VLANLink, err = v.str("link"); err != nil {
			return nil, err
		}
		if err := parseV2Common(v, &l); err != nil {
			return nil, err
		}
		cfg.Links = append(cfg.Links, l)
	}
	return cfg, nil
}

// parseV2Common reads the keys every v2 device type shares.
func parseV2Common(e obj, l *Link) error {
	var err error
	if l.DHCP4, err = e.bool("dhcp4"); err != nil {
		return err
	}
	if l.MTU, err = e.int("mtu"); err != nil {
		return err
	}
	addrs, err := e.strList("addresses")
	if err != nil {
		return err
	}
	for i, a := range addrs {
		p, err := parsePrefix(fmt.Sprintf("%s[%d]", e.field("addresses"), i), a)
		if err != nil {
			return err
		}
		l.Addresses = append(l.Addresses, p)
	}
	for _, k := range []string{"gateway4", "gateway6"} {
		s, err := e.str(k)
		if err != nil || s == "" {
			if err != nil {
				return err
			}
			continue
		}
		a, err := parseAddr(e.field(k), s)
		if err != nil {
			return err
		}
		if (k == "gateway4") != a.Is4() {
			return fmt.Errorf("%s: %q is the wrong address family", e.field(k), s)
		}
		if k == "gateway4" {
			l.Gateway4 = a
		} else {
			l.Gateway6 = a
		}
	}
	ns, err := e.obj("nameservers")
	if err != nil {
		return err
	}
	if l.Nameservers, err = ns.strList("addresses"); err != nil {
		return err
	}
	for i, a := range l.Nameservers {
		if _, err := parseAddr(fmt.Sprintf("%s[%d]", ns.field("addresses"), i), a); err != nil {
			return err
		}
	}
	if l.Search, err = ns.strList("search"); err != nil {
		return err
	}
	routes, err := e.list("routes")
	if err != nil {
		return err
	}
	for i, rv := range routes {
		r, err := asObj(fmt.Sprintf("%s[%d]", e.field("routes"), i), rv)
		if err != nil {
			return err
		}
		rt, err := parseRouteV2(r)
		if err != nil {
			return err
		}
		l.Routes = append(l.Routes, rt)
	}
	return nil
}

func parseRouteV2(r obj) (Route, error) {
	var rt Route
	to, err := r.str("to")
	if err != nil {
		return rt, err
	}
	via, err := r.str("via")
	if err != nil {
		return rt, err
	}
	if via != "" {
		if rt.Via, err = parseAddr(r.field("via"), via); err != nil {
			return rt, err
		}
	}
	switch {
	case to == "":
		return rt, fmt.Errorf("%s: missing", r.field("to"))
	case to == "default" || to == "0.0.0.0/0" && (via == "" || rt.Via.Is4()):
		to = "0.0.0.0/0"
		if rt.Via.Is6() {
			to = "::/0"
		}
	case !strings.Contains(to, "/"):
		to += "/32"
		if strings.Contains(to, ":") {
			to = strings.TrimSuffix(to, "/32") + "/128"
		}
	}
	if rt.To, err = parsePrefix(r.field("to"), to); err != nil {
		return rt, err
	}
	if rt.Via.IsValid() && rt.Via.Is4() != rt.To.Addr().Is4() {
		return rt, fmt.Errorf("%s: gateway %s and destination %s differ in address family", r.path, rt.Via, rt.To)
	}
	rt.To = rt.To.Masked()
	if rt.Metric, err = r.int("metric"); err != nil {
		return rt, err
	}
	return rt, nil
}

var bondModes = map[string]bool{
	"": true, "balance-rr": true, "active-backup": true, "balance-xor": true, "broadcast": true,
	"802.3ad": true, "balance-tlb": true, "balance-alb": true,
}

func checkBondMode(field, mode string) error {
	if !bondModes[mode] {
		return fmt.Errorf("%s: %q is not a bonding mode (balance-rr, active-backup, balance-xor, broadcast, 802.3ad, balance-tlb, balance-alb)", field, mode)
	}
	return nil
}
