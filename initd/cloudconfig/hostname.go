package cloudconfig

import (
	"fmt"
	"strings"
)

// CheckHostname accepts RFC 1123 host names: dot-separated labels of letters,
// digits and hyphens, 1-63 characters each, 253 in all.
func CheckHostname(s string) error {
	if s == "" {
		return fmt.Errorf("empty host name")
	}
	if len(s) > 253 {
		return fmt.Errorf("%q is longer than 253 characters", s[:20]+"...")
	}
	for _, l := range strings.Split(strings.TrimSuffix(s, "."), ".") {
		if l == "" || len(l) > 63 {
			return fmt.Errorf("%q: each label must be 1-63 characters", s)
		}
		if l[0] == '-' || l[len(l)-1] == '-' {
			return fmt.Errorf("%q: a label may not start or end with '-'", s)
		}
		for _, r := range l {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return fmt.Errorf("%q: %q is not allowed in a host name", s, r)
			}
		}
	}
	return nil
}

// KernelHostname is the name to give the kernel: the short name unless the
// config prefers the FQDN; falls back to the first label of the FQDN.
func (c *Config) KernelHostname() string {
	switch {
	case c.PreferFQDN && c.FQDN != "":
		return c.FQDN
	case c.Hostname != "":
		if c.FQDN == "" && !c.PreferFQDN {
			short, _, _ := strings.Cut(c.Hostname, ".")
			return short
		}
		return c.Hostname
	case c.FQDN != "":
		short, _, _ := strings.Cut(c.FQDN, ".")
		return short
	}
	return ""
}

// FullName is the FQDN if known, else the hostname as given.
func (c *Config) FullName() string {
	if c.FQDN != "" {
		return c.FQDN
	}
	return c.Hostname
}
