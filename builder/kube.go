package builder

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"runtime"
	"sort"
	"strings"

	"github.com/kilnproject/kiln/builder/components"
	"github.com/kilnproject/kiln/builder/fstree"
	"github.com/kilnproject/kiln/builder/images"
)

// The Kubernetes payload of a profile: the component binaries laid into the
// system image and the OCI layout of every container image the cluster runs.
// A profile without components and images (minimal) skips all of it.

// Where the payload lives in the system image.
const (
	binDir    = "usr/bin"
	cniBinDir = "opt/cni/bin" // containerd's and the kubelet's default CNI plugin path
	// ImagesDir holds the OCI image layout initd imports into containerd.
	ImagesDir = "usr/share/kiln/images"
)

// ImagesKubeadm in a profile's images list stands for kubeadm's own list of
// images for the pinned Kubernetes version.
const ImagesKubeadm = "kubeadm"

// payload is what buildPayload produced for one architecture.
type payload struct {
	binaries   []components.Output // laid into the rootfs
	imageBins  []components.Output // built for the images only
	images     []images.Image
	imagesDir  string // the OCI layout on the host
	kubernetes string // Kubernetes version of the kubeadm component ("" without one)
}

func (b *archBuild) hasPayload() bool {
	return len(b.p.Components) > 0 || len(b.p.Images) > 0
}

// buildPayload builds (or takes from the cache) the profile's components and
// images for this architecture.
func (b *archBuild) buildPayload(ctx context.Context) error {
	if !b.hasPayload() {
		return nil
	}
	dir := filepath.Join(b.o.RepoRoot, "components")
	cache := filepath.Join(b.o.CacheDir, "components")
	logf := func(format string, args ...any) { b.prog.Logf("%s: %s", b.arch.Name, fmt.Sprintf(format, args...)) }

	done := b.stage("components")
	pl := &payload{}
	var err error
	if len(b.p.Components) > 0 {
		pl.binaries, err = components.Build(ctx, components.Options{ComponentsDir: dir, Arch: b.arch.Name, CacheDir: cache, Names: b.p.Components, Log: logf})
		if err != nil {
			return fmt.Errorf("%s: %w", b.p.File, err) // the error begins "components: NAME"
		}
	}
	for _, o := range pl.binaries {
		if o.Component == "kubernetes" {
			pl.kubernetes = o.Version
		}
	}
	var refs []string
	if len(b.p.Images) > 0 {
		if refs, pl.kubernetes, err = b.imageRefs(ctx, dir, cache, logf); err != nil {
			return err
		}
		need, err := images.Binaries(refs)
		if err != nil {
			return fmt.Errorf("%s: images: %w", b.p.File, err)
		}
		if pl.imageBins, err = components.Build(ctx, components.Options{ComponentsDir: dir, Arch: b.arch.Name, CacheDir: cache, Names: need, Log: logf}); err != nil {
			return fmt.Errorf("%s: images: %w", b.p.File, err)
		}
	}
	var size int64
	for _, o := range append(append([]components.Output(nil), pl.binaries...), pl.imageBins...) {
		size += fileSize(o.Path)
	}
	done(size, fmt.Sprintf("%d binaries for the rootfs, %d for the images", len(pl.binaries), len(pl.imageBins)))

	if len(refs) > 0 {
		done = b.stage("images")
		bins := map[string]string{}
		for _, o := range pl.imageBins {
			bins[o.Name] = o.Path
		}
		src, err := b.debianSource()
		if err != nil {
			return err
		}
		pl.imagesDir = filepath.Join(b.tmp, "images")
		pl.images, err = images.Build(ctx, images.Options{Arch: b.arch.Name, Refs: refs, Binaries: bins,
			Debian: src, Index: b.in.index, Epoch: b.o.Epoch, Dir: pl.imagesDir, Log: logf})
		if err != nil {
			return fmt.Errorf("%s: images: %w", b.p.File, err)
		}
		size = 0
		for _, im := range pl.images {
			size += im.Size
		}
		done(size, fmt.Sprintf("%d images, OCI layout, uncompressed layers", len(pl.images)))
	}
	b.payload = pl
	return nil
}

// imageRefs expands the profile's images list: "kubeadm" is what the pinned
// kubeadm itself lists for its version (run on the build host), the rest are
// addons named by their repository basename.
func (b *archBuild) imageRefs(ctx context.Context, dir, cache string, logf func(string, ...any)) ([]string, string, error) {
	host, err := components.Build(ctx, components.Options{ComponentsDir: dir, Arch: runtime.GOARCH, CacheDir: cache, Names: []string{"kubeadm"}, Log: logf})
	if err != nil {
		return nil, "", fmt.Errorf("%s: images: kubeadm for the build host: %w", b.p.File, err)
	}
	version := host[0].Version
	listed, err := images.KubeadmList(ctx, host[0].Path, version)
	if err != nil {
		return nil, "", fmt.Errorf("%s: images: %w", b.p.File, err)
	}
	addons, err := images.Addons(listed)
	if err != nil {
		return nil, "", fmt.Errorf("%s: images: %w", b.p.File, err)
	}
	byName := map[string]string{}
	for _, ref := range addons {
		_, base, _, err := images.RefParts(ref)
		if err != nil {
			return nil, "", fmt.Errorf("%s: images: %w", b.p.File, err)
		}
		byName[base] = ref
	}
	var refs []string
	for i, name := range b.p.Images {
		switch ref, ok := byName[name]; {
		case name == ImagesKubeadm:
			refs = append(refs, listed...)
		case ok:
			refs = append(refs, ref)
		default:
			known := []string{ImagesKubeadm}
			for k := range byName {
				known = append(known, k)
			}
			sort.Strings(known[1:])
			return nil, "", fmt.Errorf("%s: images.%d: unknown image set %q (allowed: %s)", b.p.File, i, name, strings.Join(known, ", "))
		}
	}
	return refs, version, nil
}

// addPayload lays the payload into the system tree.
func (b *archBuild) addPayload(t *fstree.Tree) error {
	pl := b.payload
	if pl == nil {
		return nil
	}
	for _, o := range pl.binaries {
		dst := binDir
		if o.Component == "cni-plugins" {
			dst = cniBinDir
		}
		if err := t.AddHostFile(dst+"/"+o.Name, 0o755, o.Path); err != nil {
			return fmt.Errorf("component %s: %w", o.Name, err)
		}
	}
	// Aliases after every binary, so a real binary of that name wins.
	for _, o := range pl.binaries {
		for _, a := range components.AliasesOf(o.Name) {
			if t.Get(binDir+"/"+a) != nil {
				continue
			}
			if err := t.Symlink(binDir+"/"+a, o.Name); err != nil {
				return fmt.Errorf("component %s: alias %s: %w", o.Name, a, err)
			}
		}
	}
	if pl.imagesDir != "" {
		if err := t.AddHostDir(pl.imagesDir, ImagesDir); err != nil {
			return fmt.Errorf("images: %w", err)
		}
	}
	// kubeadm's preflight (SystemVerification) reads the kernel's build
	// configuration; /usr/lib/modules/KVER/config is one place it looks.
	kconfig := filepath.Join(b.in.kernelDir, "boot", "config-"+b.kver)
	if err := t.AddHostFile("usr/lib/modules/"+b.kver+"/config", 0o644, kconfig); err != nil {
		return fmt.Errorf("kernel config: %w", err)
	}
	// What initd checks a machine config against (the Kubernetes version
	// must match the image's) and imports on first boot.
	info := struct {
		Kubernetes string            `json:"kubernetes,omitempty"`
		Components map[string]string `json:"components"`
		Images     []string          `json:"images,omitempty"`
		ImagesDir  string            `json:"imagesDir,omitempty"`
	}{Kubernetes: pl.kubernetes, Components: map[string]string{}}
	for _, o := range pl.binaries {
		info.Components[o.Name] = o.Version
	}
	for _, im := range pl.images {
		info.Images = append(info.Images, im.Ref)
	}
	if pl.imagesDir != "" {
		info.ImagesDir = "/" + ImagesDir
	}
	data, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		return err
	}
	return t.AddFile("etc/kiln/cluster.json", 0o644, append(data, '\n'))
}

// payloadSBOM lists the components and images for the SBOM.
func (pl *payload) sbom(arch string) []sbomPackage {
	if pl == nil {
		return nil
	}
	var out []sbomPackage
	seen := map[string]bool{}
	for _, o := range append(append([]components.Output(nil), pl.binaries...), pl.imageBins...) {
		if seen[o.Name] {
			continue
		}
		seen[o.Name] = true
		sum, _ := fileSHA256(o.Path)
		out = append(out, sbomPackage{Name: o.Name, Version: o.Version, Arch: arch, SHA256: sum, Kind: "component",
			Module: o.Module, GoSum: o.Sum})
	}
	for _, im := range pl.images {
		repo, base, tag, _ := images.RefParts(im.Ref) // Build checked every reference
		out = append(out, sbomPackage{Name: im.Ref, Version: tag, Arch: arch, Kind: "oci-image", Digest: im.Digest,
			Repository: repo, RepoBase: base})
		for _, p := range im.Packages {
			out = append(out, sbomPackage{Name: p.Name, Version: p.Version, Arch: p.Arch, SHA256: p.SHA256, Kind: "deb"})
		}
	}
	return out
}
