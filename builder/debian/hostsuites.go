package debian

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// MirrorEnv overrides the host's apt sources. Its value is one or more
// entries separated by ";" or newlines, each "URL [SUITE...]":
//
//	KILN_DEBIAN_MIRROR="http://m/debian bookworm bookworm-updates; http://m/debian-security bookworm-security"
//
// An entry with a URL alone replaces the URL of every host Debian suite that
// is not a security suite, and keeps the host's security suites as they are
// (with no host Debian suites it stands for bookworm and bookworm-updates).
// Components are always "main".
const MirrorEnv = "KILN_DEBIAN_MIRROR"

// HostSuites reads the Debian suites of the host's apt configuration:
// /etc/apt/sources.list and /etc/apt/sources.list.d/*.list (one-line
// format) and *.sources (deb822), "deb" entries only, honouring
// KILN_DEBIAN_MIRROR. Other vendors' repositories are left out: an entry is
// kept when its Signed-By is a Debian archive keyring, or when it has no
// Signed-By and names a Debian suite (bookworm, bookworm-updates, ...);
// components are limited to Debian's.
func HostSuites() ([]Suite, error) {
	return hostSuites("/etc/apt", os.Getenv(MirrorEnv))
}

func hostSuites(aptDir, override string) ([]Suite, error) {
	var suites []Suite
	if b, err := os.ReadFile(filepath.Join(aptDir, "sources.list")); err == nil {
		s, err := parseOneLineSources(b, filepath.Join(aptDir, "sources.list"))
		if err != nil {
			return nil, err
		}
		suites = append(suites, s...)
	}
	entries, _ := os.ReadDir(filepath.Join(aptDir, "sources.list.d"))
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names) // apt reads them in this order too
	for _, n := range names {
		p := filepath.Join(aptDir, "sources.list.d", n)
		var s []Suite
		var err error
		switch filepath.Ext(n) {
		case ".list":
			b, rerr := os.ReadFile(p)
			if rerr != nil {
				return nil, fmt.Errorf("debian: %w", rerr)
			}
			s, err = parseOneLineSources(b, p)
		case ".sources":
			b, rerr := os.ReadFile(p)
			if rerr != nil {
				return nil, fmt.Errorf("debian: %w", rerr)
			}
			s, err = parseDeb822Sources(b, p)
		default:
			continue
		}
		if err != nil {
			return nil, err
		}
		suites = append(suites, s...)
	}
	suites = dedupeSuites(suites)
	if strings.TrimSpace(override) != "" {
		return applyMirrorOverride(suites, override)
	}
	if len(suites) == 0 {
		return nil, fmt.Errorf("debian: no Debian suites in %s/sources.list{,.d}; set %s", aptDir, MirrorEnv)
	}
	return suites, nil
}

var debianComponents = map[string]bool{"main": true, "contrib": true, "non-free": true, "non-free-firmware": true}

var debianSuiteNames = []string{"buster", "bullseye", "bookworm", "trixie", "forky", "duke", "sid",
	"oldoldstable", "oldstable", "stable", "testing", "unstable", "experimental"}

func isDebianSuite(s string) bool {
	base, _, _ := strings.Cut(s, "-") // bookworm-updates, bookworm-security, bookworm-backports
	for _, n := range debianSuiteNames {
		if base == n || strings.TrimSuffix(base, "/updates") == n {
			return true
		}
	}
	return false
}

func isDebianKeyring(path string) bool {
	return strings.HasPrefix(filepath.Base(path), "debian-archive-")
}

// keep builds the Debian suites of one source entry.
func keep(uris, suites, comps []string, signedBy string, hasSignedBy bool) []Suite {
	var out []Suite
	var dc []string
	for _, c := range comps {
		if debianComponents[c] {
			dc = append(dc, c)
		}
	}
	if len(dc) == 0 {
		return nil
	}
	for _, u := range uris {
		for _, s := range suites {
			if hasSignedBy && !isDebianKeyring(signedBy) {
				continue
			}
			if !hasSignedBy && !isDebianSuite(s) {
				continue
			}
			out = append(out, Suite{URL: strings.TrimRight(u, "/"), Suite: s, Components: dc})
		}
	}
	return out
}

// parseOneLineSources reads "deb [opt=val ...] URI SUITE COMPONENT..." lines.
func parseOneLineSources(b []byte, file string) ([]Suite, error) {
	var out []Suite
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "deb" {
			continue
		}
		f = f[1:]
		signedBy, hasSignedBy := "", false
		if len(f) > 0 && strings.HasPrefix(f[0], "[") {
			opts := []string{}
			for len(f) > 0 {
				tok := f[0]
				f = f[1:]
				opts = append(opts, strings.Trim(tok, "[]"))
				if strings.HasSuffix(tok, "]") {
					break
				}
			}
			for _, o := range opts {
				if k, v, ok := strings.Cut(o, "="); ok && strings.EqualFold(k, "signed-by") {
					signedBy, hasSignedBy = v, true
				}
			}
		}
		if len(f) < 2 {
			return nil, fmt.Errorf("debian: %s:%d: expected URI and suite in %q", file, n, sc.Text())
		}
		comps := f[2:]
		if len(comps) == 0 {
			comps = []string{"main"}
		}
		out = append(out, keep(f[:1], f[1:2], comps, signedBy, hasSignedBy)...)
	}
	return out, nil
}

// parseDeb822Sources reads sources.list(5) deb822 stanzas.
func parseDeb822Sources(b []byte, file string) ([]Suite, error) {
	var out []Suite
	err := readStanzas(bytes.NewReader(b), func(st stanza, line int) error {
		if strings.EqualFold(st["enabled"], "no") || !contains(strings.Fields(st["types"]), "deb") {
			return nil
		}
		uris, suites := strings.Fields(st["uris"]), strings.Fields(st["suites"])
		if len(uris) == 0 || len(suites) == 0 {
			return fmt.Errorf("stanza at line %d: needs URIs and Suites", line)
		}
		signedBy, hasSignedBy := st["signed-by"]
		// An inline key block (multi-line Signed-By) is not a Debian keyring path.
		if strings.Contains(signedBy, "\n") {
			signedBy = ""
		}
		out = append(out, keep(uris, suites, strings.Fields(st["components"]), strings.TrimSpace(signedBy), hasSignedBy)...)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("debian: %s: %w", file, err)
	}
	return out, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func dedupeSuites(in []Suite) []Suite {
	var out []Suite
	idx := map[string]int{}
	for _, s := range in {
		k := s.URL + " " + s.Suite
		if i, ok := idx[k]; ok {
			for _, c := range s.Components {
				if !contains(out[i].Components, c) {
					out[i].Components = append(out[i].Components, c)
				}
			}
			continue
		}
		idx[k] = len(out)
		out = append(out, s)
	}
	return out
}

func isSecuritySuite(s string) bool {
	return strings.HasSuffix(s, "-security") || strings.HasSuffix(s, "/updates")
}

func applyMirrorOverride(host []Suite, override string) ([]Suite, error) {
	var out []Suite
	for _, entry := range strings.FieldsFunc(override, func(r rune) bool { return r == ';' || r == '\n' }) {
		f := strings.Fields(entry)
		if len(f) == 0 {
			continue
		}
		url := strings.TrimRight(f[0], "/")
		if !strings.Contains(url, "://") {
			return nil, fmt.Errorf("debian: %s: %q is not a URL", MirrorEnv, f[0])
		}
		if len(f) > 1 {
			for _, s := range f[1:] {
				out = append(out, Suite{URL: url, Suite: s, Components: []string{"main"}})
			}
			continue
		}
		var sec []Suite
		n := 0
		for _, s := range host {
			if isSecuritySuite(s.Suite) {
				sec = append(sec, s)
				continue
			}
			out = append(out, Suite{URL: url, Suite: s.Suite, Components: []string{"main"}})
			n++
		}
		if n == 0 {
			out = append(out, Suite{URL: url, Suite: "bookworm", Components: []string{"main"}},
				Suite{URL: url, Suite: "bookworm-updates", Components: []string{"main"}})
		}
		out = append(out, sec...)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("debian: %s is set but names no mirror", MirrorEnv)
	}
	return dedupeSuites(out), nil
}
