package builder

import (
	"debug/buildinfo"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/kilnproject/kiln/builder/profile"
)

// sbomArch is what one architecture's image contains.
type sbomArch struct {
	Arch     string
	Packages []sbomPackage
}

type sbomPackage struct {
	Name, Version, Arch, SHA256, Kind string
	GoSum                             string // go.sum "h1:" hash for Go modules
	Module                            string // Go module a component binary is built from
	Digest                            string // OCI manifest digest of an image
	Repository, RepoBase              string // an image's repository and its last element
}

func (b *archBuild) sbom() (sbomArch, error) {
	s := sbomArch{Arch: b.arch.Name}
	for _, p := range b.in.all {
		s.Packages = append(s.Packages, sbomPackage{Name: p.Name, Version: p.Version, Arch: p.Arch, SHA256: p.SHA256, Kind: "deb"})
	}
	// initd and the Go modules compiled into it, from its embedded build info.
	if b.initdPath != "" {
		bi, err := buildinfo.ReadFile(b.initdPath)
		if err != nil {
			return s, fmt.Errorf("SBOM: reading initd's build info: %w", err)
		}
		sum, err := fileSHA256(b.initdPath)
		if err != nil {
			return s, err
		}
		s.Packages = append(s.Packages, sbomPackage{Name: "initd", Version: b.p.Version, Arch: b.arch.Name, SHA256: sum, Kind: "binary"},
			sbomPackage{Name: "go", Version: bi.GoVersion, Arch: b.arch.Name, Kind: "toolchain"})
		for _, m := range bi.Deps {
			if m.Replace != nil {
				m = m.Replace
			}
			s.Packages = append(s.Packages, sbomPackage{Name: m.Path, Version: m.Version, Arch: b.arch.Name, GoSum: m.Sum, Kind: "golang"})
		}
	}
	s.Packages = append(s.Packages, b.payload.sbom(b.arch.Name)...)
	sort.Slice(s.Packages, func(i, j int) bool { return s.Packages[i].Name < s.Packages[j].Name })
	return s, nil
}

// writeSBOM writes an SPDX 2.3 JSON document listing every input with its
// version and digest. Its timestamp is the build epoch, not the wall clock.
func writeSBOM(path string, p *profile.Profile, epoch int64, arches []sbomArch) error {
	type checksum struct {
		Algorithm string `json:"algorithm"`
		Value     string `json:"checksumValue"`
	}
	type extRef struct {
		Category string `json:"referenceCategory"`
		Type     string `json:"referenceType"`
		Locator  string `json:"referenceLocator"`
	}
	type pkg struct {
		SPDXID         string     `json:"SPDXID"`
		Name           string     `json:"name"`
		Version        string     `json:"versionInfo"`
		Download       string     `json:"downloadLocation"`
		Checksums      []checksum `json:"checksums,omitempty"`
		ExternalRefs   []extRef   `json:"externalRefs,omitempty"`
		FilesAnalyzed  bool       `json:"filesAnalyzed"`
		Supplier       string     `json:"supplier,omitempty"`
		Comment        string     `json:"comment,omitempty"`
		PrimaryPurpose string     `json:"primaryPackagePurpose,omitempty"`
	}
	var pkgs []pkg
	seen := map[string]bool{}
	for _, a := range arches {
		for _, sp := range a.Packages {
			id := fmt.Sprintf("SPDXRef-%s-%s-%s-%s", sp.Kind, sanitize(sp.Name), sanitize(sp.Version), sp.Arch)
			if seen[id] {
				continue
			}
			seen[id] = true
			p := pkg{SPDXID: id, Name: sp.Name, Version: sp.Version, Download: "NOASSERTION"}
			if sp.SHA256 != "" {
				p.Checksums = []checksum{{"SHA256", sp.SHA256}}
			}
			switch sp.Kind {
			case "deb":
				p.Supplier = "Organization: Debian"
				p.ExternalRefs = []extRef{{"PACKAGE-MANAGER", "purl", fmt.Sprintf("pkg:deb/debian/%s@%s?arch=%s", sp.Name, sp.Version, sp.Arch)}}
			case "golang":
				p.ExternalRefs = []extRef{{"PACKAGE-MANAGER", "purl", fmt.Sprintf("pkg:golang/%s@%s", sp.Name, sp.Version)}}
				p.Comment = "compiled into initd; go.sum " + sp.GoSum
			case "binary":
				p.Comment = "kiln's init daemon, built from this repository"
			case "toolchain":
				p.Comment = "Go toolchain that built initd and the components"
			case "component":
				p.ExternalRefs = []extRef{{"PACKAGE-MANAGER", "purl", fmt.Sprintf("pkg:golang/%s@%s", sp.Module, sp.Version)}}
				p.Comment = "static binary built by kiln from Go module " + sp.Module + "@" + sp.Version
				if sp.GoSum != "" {
					p.Comment += ", go.sum " + sp.GoSum
				}
			case "oci-image":
				hex := strings.TrimPrefix(sp.Digest, "sha256:")
				p.Checksums = []checksum{{"SHA256", hex}}
				p.ExternalRefs = []extRef{{"PACKAGE-MANAGER", "purl", fmt.Sprintf("pkg:oci/%s@%s?arch=%s&repository_url=%s", sp.RepoBase, sp.Digest, sp.Arch, sp.Repository)}}
				p.Comment = "container image in the system image's OCI layout; the checksum is its manifest digest"
				p.PrimaryPurpose = "CONTAINER"
			}
			pkgs = append(pkgs, p)
		}
	}
	doc := map[string]any{
		"spdxVersion":       "SPDX-2.3",
		"dataLicense":       "CC0-1.0",
		"SPDXID":            "SPDXRef-DOCUMENT",
		"name":              fmt.Sprintf("kiln-%s-%s", p.Name, p.Version),
		"documentNamespace": fmt.Sprintf("https://kiln.invalid/spdx/%s-%s", p.Name, p.Version),
		"creationInfo": map[string]any{
			"created":  time.Unix(epoch, 0).UTC().Format(time.RFC3339),
			"creators": []string{"Tool: kiln"},
		},
		"packages": pkgs,
	}
	data, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(path, append(data, '\n'), 0o644)
}

func sanitize(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-') {
			b[i] = '-'
		}
	}
	return string(b)
}
