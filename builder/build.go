// Package builder turns a profile into bootable images: it gathers the
// verified inputs, assembles the initramfs and the system image, adds the boot
// loaders and writes every requested output format, all in Go and rootless.
//
// Every artifact is written under a hidden temporary directory inside the
// output directory and renamed into place only when the whole build
// succeeded, so an interrupted or failed build leaves no image with a final
// name.
package builder

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/kilnproject/kiln/arch"
	"github.com/kilnproject/kiln/builder/profile"
)

// DefaultEpoch is the timestamp stamped into artifacts when SOURCE_DATE_EPOCH
// is not set (2026-01-01T00:00:00Z): a constant, so builds are reproducible.
const DefaultEpoch = 1767225600

// Options control one build.
type Options struct {
	Profile *profile.Profile
	Arches  []string // default: the profile's arches
	Formats []string // default: the profile's formats
	OutDir  string
	// Initd maps an architecture to a prebuilt initd binary. When missing,
	// initd is built from InitdSource with the Go toolchain.
	Initd       map[string]string
	InitdSource string // module root holding cmd/initd
	RepoRoot    string // where profile overlays are resolved
	CacheDir    string
	Offline     bool   // use only cached inputs
	Mirror      string // Debian mirror URL override ("" = host apt sources / KILN_DEBIAN_MIRROR)
	Epoch       int64  // SOURCE_DATE_EPOCH; 0 = DefaultEpoch
	Progress    *Progress
}

// Artifact is one output file.
type Artifact struct {
	Arch, Format string
	Path         string // final path
	Size         int64
	SHA256       string
}

// Result lists what a build produced.
type Result struct {
	Artifacts []Artifact
	SBOM      string
}

// EpochFromEnv reads SOURCE_DATE_EPOCH.
func EpochFromEnv() (int64, error) {
	v := os.Getenv("SOURCE_DATE_EPOCH")
	if v == "" {
		return DefaultEpoch, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 315532800 { // FAT and VHD cannot store earlier times
		return 0, fmt.Errorf("SOURCE_DATE_EPOCH=%q: want seconds since 1970, not before 1980", v)
	}
	return n, nil
}

// Build runs the whole pipeline.
func Build(ctx context.Context, o Options) (*Result, error) {
	p := o.Profile
	if o.Epoch == 0 {
		o.Epoch = DefaultEpoch
	}
	if len(o.Arches) == 0 {
		o.Arches = p.Arches
	}
	if len(o.Formats) == 0 {
		o.Formats = p.Formats
	}
	for _, a := range o.Arches {
		if _, err := arch.Lookup(a); err != nil {
			return nil, err
		}
		if !p.HasArch(a) {
			return nil, fmt.Errorf("%s: arches: profile %q does not build for %s (it lists %s)", p.File, p.Name, a, strings.Join(p.Arches, ", "))
		}
	}
	for _, f := range o.Formats {
		if !contains(profile.KnownFormats, f) {
			return nil, fmt.Errorf("unknown format %q (allowed: %s)", f, strings.Join(profile.KnownFormats, ", "))
		}
	}
	if err := checkOutDir(o.OutDir); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(o.OutDir, ".kiln-build-")
	if err != nil {
		return nil, fmt.Errorf("output directory %s: %w", o.OutDir, err)
	}
	defer os.RemoveAll(tmp)

	res := &Result{}
	var sboms []sbomArch
	for _, a := range o.Arches {
		ai, _ := arch.Lookup(a)
		b := &archBuild{o: o, p: p, arch: ai, tmp: filepath.Join(tmp, a), prog: o.Progress}
		if err := os.MkdirAll(b.tmp, 0o755); err != nil {
			return nil, err
		}
		arts, sb, err := b.run(ctx)
		if err != nil {
			return nil, err
		}
		res.Artifacts = append(res.Artifacts, arts...)
		sboms = append(sboms, sb)
	}
	sbomName := fmt.Sprintf("%s-%s.sbom.spdx.json", p.Name, p.Version)
	if err := writeSBOM(filepath.Join(tmp, sbomName), p, o.Epoch, sboms); err != nil {
		return nil, err
	}
	res.SBOM = filepath.Join(o.OutDir, sbomName)

	// Everything is written: move the artifacts into place, then the sums.
	sort.Slice(res.Artifacts, func(i, j int) bool { return res.Artifacts[i].Path < res.Artifacts[j].Path })
	for i, a := range res.Artifacts {
		final := filepath.Join(o.OutDir, filepath.Base(a.Path))
		if err := os.Rename(a.Path, final); err != nil {
			return nil, err
		}
		res.Artifacts[i].Path = final
		if res.Artifacts[i].SHA256, err = fileSHA256(final); err != nil {
			return nil, err
		}
	}
	if err := os.Rename(filepath.Join(tmp, sbomName), res.SBOM); err != nil {
		return nil, err
	}
	sbomSum, err := fileSHA256(res.SBOM)
	if err != nil {
		return nil, err
	}
	if err := updateSums(o.OutDir, append(res.Artifacts, Artifact{Path: res.SBOM, SHA256: sbomSum})); err != nil {
		return nil, err
	}
	return res, nil
}

// checkOutDir makes sure the output directory exists (creating it) and is writable.
func checkOutDir(dir string) error {
	if dir == "" {
		return fmt.Errorf("no output directory given")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("output directory %s: %w", dir, err)
	}
	f, err := os.CreateTemp(dir, ".kiln-write-test-")
	if err != nil {
		return fmt.Errorf("output directory %s is not writable: %w", dir, err)
	}
	name := f.Name()
	f.Close()
	return os.Remove(name)
}

// BaseName is <profile>-<version>-<arch>.
func BaseName(p *profile.Profile, arch string) string {
	return fmt.Sprintf("%s-%s-%s", p.Name, p.Version, arch)
}

// FormatFile gives the output file name of a format.
func FormatFile(p *profile.Profile, arch, format string) string {
	base := BaseName(p, arch)
	switch format {
	case "vhd-dynamic":
		return base + "-dynamic.vhd"
	case "uki":
		return base + ".efi"
	case "pxe":
		return base + ".ipxe"
	}
	return base + "." + format
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
