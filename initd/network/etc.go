package network

import (
	"fmt"
	"os"
	"path"
	"strings"
)

// writeUnder writes name (absolute, e.g. /etc/hosts) under root through
// os.Root, so a symlink planted in the tree cannot redirect the write.
func writeUnder(root, name string, data []byte) error {
	if root == "" {
		root = "/"
	}
	r, err := os.OpenRoot(root)
	if err != nil {
		return err
	}
	defer r.Close()
	rel := strings.TrimPrefix(name, "/")
	if err := r.MkdirAll(path.Dir(rel), 0o755); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	tmp := rel + ".kiln-tmp"
	if err := r.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if err := r.Rename(tmp, rel); err != nil {
		r.Remove(tmp)
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// WriteResolvConf writes /etc/resolv.conf under root. The resolver reads at
// most 3 nameservers and 6 search domains.
func WriteResolvConf(root string, nameservers, search []string) error {
	var b strings.Builder
	b.WriteString("# written by kiln initd\n")
	if s := dedup(search); len(s) > 0 {
		if len(s) > 6 {
			s = s[:6]
		}
		fmt.Fprintf(&b, "search %s\n", strings.Join(s, " "))
	}
	ns := dedup(nameservers)
	if len(ns) > 3 {
		ns = ns[:3]
	}
	for _, n := range ns {
		fmt.Fprintf(&b, "nameserver %s\n", n)
	}
	return writeUnder(root, "/etc/resolv.conf", []byte(b.String()))
}

// WriteHosts writes /etc/hosts (loopback names plus the node's own names on
// 127.0.1.1, as Debian does) and /etc/hostname under root.
func WriteHosts(root, hostname, fqdn string) error {
	var b strings.Builder
	b.WriteString("# written by kiln initd\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
	names := dedup([]string{fqdn, hostname})
	if short, _, ok := strings.Cut(fqdn, "."); ok && short != hostname {
		names = append(names, short)
	}
	if len(names) > 0 {
		fmt.Fprintf(&b, "127.0.1.1\t%s\n", strings.Join(names, " "))
	}
	if err := writeUnder(root, "/etc/hosts", []byte(b.String())); err != nil {
		return err
	}
	if hostname == "" {
		return nil
	}
	return writeUnder(root, "/etc/hostname", []byte(hostname+"\n"))
}

func dedup(in []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, s := range in {
		if s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}
