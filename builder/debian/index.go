package debian

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/ulikunitz/xz"
)

// Package is one binary package stanza of a Packages index.
type Package struct {
	Name       string
	Version    string
	Arch       string // the package's Architecture (the index arch or "all")
	Filename   string // path relative to Mirror, e.g. pool/main/s/syslinux/isolinux_6.04~git20190206.bf6db5b4+dfsg1-3_all.deb
	Size       int64
	SHA256     string
	Depends    string // raw field values
	PreDepends string
	Provides   string
	Essential  bool
	Mirror     string // archive root URL the package comes from (Suite.URL)
	Suite      string // suite it was listed in (e.g. bookworm-security)

	provides []relation // parsed Provides
}

func (p *Package) String() string { return p.Name + " " + p.Version + " (" + p.Arch + ")" }

// URL is where the .deb is downloaded from.
func (p *Package) URL() string { return strings.TrimRight(p.Mirror, "/") + "/" + p.Filename }

// Index is the merged Packages index of all suites of a Source for one
// architecture.
type Index struct {
	Arch     string
	packages map[string][]*Package // by name, highest version first
	provides map[string][]provider // virtual name -> packages providing it
}

type provider struct {
	pkg     *Package
	version string // "" for an unversioned Provides
}

// Index reads the InRelease and the Packages index of every component of
// every suite in s.Mirrors for arch (e.g. "amd64", "arm64").
func (s *Source) Index(ctx context.Context, arch string) (*Index, error) {
	if len(s.Mirrors) == 0 {
		return nil, fmt.Errorf("debian: Source has no Mirrors")
	}
	keys, err := s.keyring()
	if err != nil {
		return nil, err
	}
	ix := &Index{Arch: arch, packages: map[string][]*Package{}, provides: map[string][]provider{}}
	seen := map[string]bool{} // name/version/arch: the first suite listing it wins
	for _, su := range s.Mirrors {
		rel, err := s.release(ctx, su, keys)
		if err != nil {
			return nil, err
		}
		for _, comp := range su.components() {
			dirs := []string{"binary-" + arch}
			if !rel.allInArch {
				dirs = append(dirs, "binary-all")
			}
			found := false
			for _, dir := range dirs {
				path, f, ok := rel.packagesFile(comp, dir)
				if !ok {
					continue
				}
				found = true
				data, err := s.indexFile(ctx, rel, path, f)
				if err != nil {
					return nil, err
				}
				what := rel.suite.distURL(path)
				if err := ix.add(data, path, what, su, seen); err != nil {
					return nil, err
				}
			}
			if !found {
				return nil, fmt.Errorf("debian: %s lists no Packages.xz or Packages.gz for %s/binary-%s", rel.url, comp, arch)
			}
		}
	}
	ix.sortAll()
	s.logf("debian: index %s: %d packages from %d suites", arch, len(ix.packages), len(s.Mirrors))
	return ix, nil
}

// sortAll orders versions highest first and providers by name, then
// highest version first, so every choice made from the index is stable.
func (ix *Index) sortAll() {
	for _, list := range ix.packages {
		sort.SliceStable(list, func(i, j int) bool { return CompareVersions(list[i].Version, list[j].Version) > 0 })
	}
	for _, list := range ix.provides {
		sort.SliceStable(list, func(i, j int) bool {
			if list[i].pkg.Name != list[j].pkg.Name {
				return list[i].pkg.Name < list[j].pkg.Name
			}
			return CompareVersions(list[i].pkg.Version, list[j].pkg.Version) > 0
		})
	}
}

// indexFile returns the decompressed Packages file named in rel, from the
// cache or the mirror, verified against the InRelease checksum.
func (s *Source) indexFile(ctx context.Context, rel *release, path string, f indexFile) ([]byte, error) {
	what := rel.suite.distURL(path)
	cache, err := s.cachePath("indexes", f.sha256)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(cache); err != nil {
		if s.Offline {
			return nil, fmt.Errorf("debian: offline and %s (SHA256 %s) is not cached at %s; run once with network access", what, f.sha256, cache)
		}
		err := s.download(ctx, rel.indexURL(path, f), cache, f.size, f.sha256, what)
		if err != nil && rel.byHash && ctx.Err() == nil {
			// Some archives (the security one) lack by-hash copies of a few
			// files; apt falls back to the plain name too. The checksum
			// still decides.
			s.logf("%v; trying %s", err, what)
			err = s.download(ctx, what, cache, f.size, f.sha256, what)
		}
		if err != nil {
			return nil, err
		}
	}
	raw, err := os.ReadFile(cache)
	if err != nil {
		return nil, fmt.Errorf("debian: %s: %w", what, err)
	}
	if int64(len(raw)) != f.size || sha256Hex(raw) != f.sha256 {
		return nil, fmt.Errorf("debian: %s: cached file %s does not match the InRelease: expected %d bytes SHA256 %s, got %d bytes SHA256 %s (remove it to fetch again)",
			what, cache, f.size, f.sha256, len(raw), sha256Hex(raw))
	}
	var r io.Reader
	switch {
	case strings.HasSuffix(path, ".xz"):
		r, err = xz.NewReader(bytes.NewReader(raw))
	case strings.HasSuffix(path, ".gz"):
		r, err = gzip.NewReader(bytes.NewReader(raw))
	default:
		r = bytes.NewReader(raw)
	}
	if err != nil {
		return nil, fmt.Errorf("debian: %s: %w", what, err)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("debian: %s: decompress: %w", what, err)
	}
	return out, nil
}

// add parses one Packages file into the index.
func (ix *Index) add(data []byte, path, what string, su Suite, seen map[string]bool) error {
	err := readStanzas(bytes.NewReader(data), func(st stanza, line int) error {
		p := &Package{
			Name:       st["package"],
			Version:    st["version"],
			Arch:       st["architecture"],
			Filename:   st["filename"],
			SHA256:     st["sha256"],
			Depends:    st["depends"],
			PreDepends: st["pre-depends"],
			Provides:   st["provides"],
			Essential:  st["essential"] == "yes",
			Mirror:     su.base(),
			Suite:      su.Suite,
		}
		bad := func(format string, args ...any) error {
			return fmt.Errorf("package %q at line %d: %s", p.Name, line, fmt.Sprintf(format, args...))
		}
		if p.Name == "" || p.Version == "" || p.Filename == "" {
			return bad("missing Package, Version or Filename")
		}
		if !isHexSHA256(p.SHA256) {
			return bad("bad SHA256 %q", p.SHA256)
		}
		if strings.HasPrefix(p.Filename, "/") || strings.Contains("/"+p.Filename+"/", "/../") {
			return bad("bad Filename %q", p.Filename)
		}
		var err error
		if p.Size, err = strconv.ParseInt(st["size"], 10, 64); err != nil || p.Size < 0 {
			return bad("bad Size %q", st["size"])
		}
		for _, field := range []string{p.Depends, p.PreDepends} {
			if _, err := parseRelations(field); err != nil {
				return bad("%v", err)
			}
		}
		prov, err := parseRelations(p.Provides)
		if err != nil {
			return bad("Provides: %v", err)
		}
		key := p.Name + "/" + p.Version + "/" + p.Arch
		if seen[key] {
			return nil
		}
		seen[key] = true
		for _, alts := range prov {
			r := alts[0]
			p.provides = append(p.provides, r)
			ix.provides[r.name] = append(ix.provides[r.name], provider{pkg: p, version: r.version})
		}
		ix.packages[p.Name] = append(ix.packages[p.Name], p)
		return nil
	})
	if err != nil {
		return fmt.Errorf("debian: %s: %w", what, err)
	}
	return nil
}

// Lookup returns the package name at version, or its highest version when
// version is "".
func (ix *Index) Lookup(name, version string) (*Package, error) {
	list := ix.packages[name]
	if len(list) == 0 {
		if len(ix.provides[name]) > 0 {
			return nil, fmt.Errorf("debian: package %q not found in the %s index (it is a virtual package provided by %s)", name, ix.Arch, ix.providerNames(name))
		}
		return nil, fmt.Errorf("debian: package %q not found in the %s index", name, ix.Arch)
	}
	if version == "" {
		return list[0], nil
	}
	for _, p := range list {
		if p.Version == version || CompareVersions(p.Version, version) == 0 {
			return p, nil
		}
	}
	var have []string
	for _, p := range list {
		have = append(have, p.Version)
	}
	return nil, fmt.Errorf("debian: package %q version %q not found in the %s index (available: %s)", name, version, ix.Arch, strings.Join(have, ", "))
}

// Packages returns every package of the index, sorted by name then
// descending version.
func (ix *Index) Packages() []*Package {
	names := make([]string, 0, len(ix.packages))
	for n := range ix.packages {
		names = append(names, n)
	}
	sort.Strings(names)
	var out []*Package
	for _, n := range names {
		out = append(out, ix.packages[n]...)
	}
	return out
}

func (ix *Index) providerNames(name string) string {
	var names []string
	for _, pr := range ix.provides[name] {
		if len(names) == 0 || names[len(names)-1] != pr.pkg.Name {
			names = append(names, pr.pkg.Name)
		}
	}
	return strings.Join(names, ", ")
}
