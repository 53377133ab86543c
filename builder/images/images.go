// Package images builds the container images a kubeadm cluster runs from
// kiln's own component binaries and stores them as one OCI image layout
// directory, which goes into the system image so that first boot imports
// every image into containerd with no registry.
//
// Use:
//
//	refs, err := images.KubeadmList(ctx, hostKubeadm, "v1.37.2") // kubeadm's own list
//	addons, err := images.Addons(refs)                          // metrics-server (same registry prefix), kiln-probe
//	refs = append(refs, addons...)
//	need, err := images.Binaries(refs)                          // component binaries to build
//	res, err := images.Build(ctx, images.Options{Arch: "arm64", Refs: refs,
//		Binaries: map[string]string{"kube-apiserver": path, ...},
//		Debian: src, Index: ix, Epoch: epoch, Dir: dir})
//
// Image references are never written here: they come from kubeadm at build
// time (our own kiln-probe image is "localhost/kiln-probe:<version>", the
// usual name of a locally built image, which no registry serves). Each
// reference's repository basename (kube-apiserver, etcd, coredns, pause,
// ..., metrics-server, kiln-probe) selects a recipe saying which
// binaries go where, the entrypoint, user and working directory (see
// recipes.go); a reference without a recipe is an error naming it.
//
// Every image is single-architecture and made of uncompressed tar layers
// (application/vnd.oci.image.layer.v1.tar: the squashfs compresses them
// once): a base layer shared by all images (/etc/passwd, /etc/group,
// /etc/nsswitch.conf, /tmp), for kube-proxy a layer of Debian packages
// (iptables, nftables, ipset and their libraries, docs and locales left
// out), and a layer with the component binaries. Tars are deterministic
// (sorted, numeric owners, mtime = Epoch, no access/change times); the
// config's created time is Epoch. Same inputs give a byte-identical layout.
//
// The layout's index.json lists one manifest per image, sorted by
// reference, with the platform and the annotations containerd's importer
// names images by: org.opencontainers.image.ref.name and
// io.containerd.image.name, both the full reference. Dir is replaced
// atomically: the layout is written in a temporary sibling directory and
// renamed over it.
package images

import (
	"context"
	"debug/elf"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/kilnproject/kiln/builder/debian"
	"github.com/kilnproject/kiln/builder/fstree"
)

// Annotations on the index.json descriptors.
const (
	AnnotationRefName    = "org.opencontainers.image.ref.name" // OCI image-spec
	AnnotationContainerd = "io.containerd.image.name"          // containerd's importer
)

// Options for Build.
type Options struct {
	Arch     string            // target architecture, GOARCH spelling: "amd64" or "arm64"
	Refs     []string          // image references: KubeadmList plus Addons
	Binaries map[string]string // component binary name -> host path, built for Arch
	// Debian packages for images that need a userspace (kube-proxy). Index
	// is the already-read index for Arch; nil reads it through Debian.
	Debian *debian.Source
	Index  *debian.Index
	Epoch  int64  // seconds since 1970 stamped into configs and tar headers (SOURCE_DATE_EPOCH); must be > 0
	Dir    string // the OCI layout directory to write (replaced if it exists)
	Log    func(format string, args ...any)
}

// Image is one image of the layout, for the SBOM.
type Image struct {
	Ref      string            // full reference, as kubeadm printed it
	Digest   string            // manifest digest, "sha256:..."
	Size     int64             // bytes of manifest, config and layers (uncompressed tars)
	Packages []*debian.Package // Debian packages whose files are in the image
}

// Build writes the images of o.Refs into the OCI layout o.Dir and returns
// them sorted by reference.
func Build(ctx context.Context, o Options) ([]Image, error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	refs := append([]string(nil), o.Refs...)
	sort.Strings(refs)
	type job struct {
		ref string
		r   recipe
	}
	var jobs []job
	for i, ref := range refs {
		if i > 0 && refs[i-1] == ref {
			return nil, fmt.Errorf("images: Refs: %q listed twice", ref)
		}
		r, _, err := recipeFor(ref)
		if err != nil {
			return nil, err
		}
		if err := o.checkBinaries(ref, r); err != nil {
			return nil, err
		}
		jobs = append(jobs, job{ref, r})
	}

	if err := os.MkdirAll(filepath.Dir(o.Dir), 0o755); err != nil {
		return nil, fmt.Errorf("images: %w", err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(o.Dir), ".tmp-images-*")
	if err != nil {
		return nil, fmt.Errorf("images: %w", err)
	}
	defer os.RemoveAll(tmp) // after the swap it holds the old layout, if any
	lp, err := layout.Write(tmp, empty.Index)
	if err != nil {
		return nil, fmt.Errorf("images: %w", err)
	}
	blobDir := filepath.Join(tmp, "blobs", "sha256")
	if err := os.MkdirAll(blobDir, 0o755); err != nil {
		return nil, fmt.Errorf("images: %w", err)
	}
	b := &build{o: o, blobDir: blobDir, mtime: time.Unix(o.Epoch, 0).UTC()}
	if b.base, err = writeLayerBlob(blobDir, baseTree(), nil, b.mtime); err != nil {
		return nil, fmt.Errorf("images: base layer: %w", err)
	}
	var out []Image
	for _, j := range jobs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		img, pkgs, err := b.image(ctx, j.ref, j.r)
		if err != nil {
			return nil, fmt.Errorf("images: %s: %w", j.ref, err)
		}
		ann := map[string]string{AnnotationRefName: j.ref, AnnotationContainerd: j.ref}
		if err := lp.AppendImage(img, layout.WithAnnotations(ann), layout.WithPlatform(v1.Platform{OS: "linux", Architecture: o.Arch})); err != nil {
			return nil, fmt.Errorf("images: %s: write: %w", j.ref, err)
		}
		res, err := describe(j.ref, img, pkgs)
		if err != nil {
			return nil, fmt.Errorf("images: %s: %w", j.ref, err)
		}
		o.logf("image %s: %s, %d bytes", j.ref, res.Digest, res.Size)
		out = append(out, res)
	}
	if err := normalizePerms(tmp); err != nil {
		return nil, fmt.Errorf("images: %w", err)
	}
	if err := replaceDir(tmp, o.Dir); err != nil {
		return nil, fmt.Errorf("images: %w", err)
	}
	return out, nil
}

func (o *Options) logf(format string, args ...any) {
	if o.Log != nil {
		o.Log(format, args...)
	}
}

func (o *Options) check() error {
	if _, ok := elfMachines[o.Arch]; !ok {
		return fmt.Errorf("images: Arch %q: want amd64 or arm64", o.Arch)
	}
	if len(o.Refs) == 0 {
		return fmt.Errorf("images: Refs is empty")
	}
	if o.Epoch <= 0 {
		return fmt.Errorf("images: Epoch %d: want seconds since 1970 (the build's SOURCE_DATE_EPOCH)", o.Epoch)
	}
	if o.Dir == "" {
		return fmt.Errorf("images: Dir is empty")
	}
	return nil
}

var elfMachines = map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}

// checkBinaries makes sure every binary the recipe needs was handed in
// and is an ELF executable for the target architecture, before anything
// is written.
func (o *Options) checkBinaries(ref string, r recipe) error {
	for _, f := range r.files {
		p, ok := o.Binaries[f.binary]
		if !ok || p == "" {
			return fmt.Errorf("images: %s: Binaries has no %q (needed for /%s)", ref, f.binary, f.path)
		}
		ef, err := elf.Open(p)
		if err != nil {
			return fmt.Errorf("images: %s: binary %s: %w", ref, f.binary, err)
		}
		m := ef.Machine
		ef.Close()
		if m != elfMachines[o.Arch] {
			return fmt.Errorf("images: %s: binary %s (%s) is built for %s, want %s", ref, f.binary, p, m, o.Arch)
		}
	}
	if len(r.debian) > 0 && o.Debian == nil {
		return fmt.Errorf("images: %s: needs Debian packages (%s) but Options.Debian is nil", ref, strings.Join(r.debian, ", "))
	}
	return nil
}

// recipeFor parses ref and finds its recipe.
func recipeFor(ref string) (recipe, string, error) {
	tag, err := parseTag(ref)
	if err != nil {
		return recipe{}, "", fmt.Errorf("images: %w", err)
	}
	base := repoBase(tag)
	r, ok := recipes[base]
	if !ok {
		return recipe{}, "", fmt.Errorf("images: %s: no recipe for image %q (kiln builds %s)", ref, base, strings.Join(RecipeNames(), ", "))
	}
	return r, base, nil
}

type build struct {
	o       Options
	blobDir string
	mtime   time.Time
	base    *fileLayer
	ix      *debian.Index
}

// image assembles one image from the shared base layer, an optional
// Debian layer and the binaries layer.
func (b *build) image(ctx context.Context, ref string, r recipe) (v1.Image, []*debian.Package, error) {
	created := v1.Time{Time: b.mtime}
	adds := []mutate.Addendum{{Layer: b.base, History: v1.History{Created: created, CreatedBy: "kiln: base files (passwd, group, nsswitch.conf, tmp)"}}}
	var pkgs []*debian.Package
	if len(r.debian) > 0 {
		ix, err := b.index(ctx)
		if err != nil {
			return nil, nil, err
		}
		t, ps, err := debianLayer(ctx, b.o.Debian, ix, r.debian, r.links)
		if err != nil {
			return nil, nil, err
		}
		l, err := writeLayerBlob(b.blobDir, t, nil, b.mtime)
		if err != nil {
			return nil, nil, fmt.Errorf("Debian layer: %w", err)
		}
		pkgs = ps
		adds = append(adds, mutate.Addendum{Layer: l, History: v1.History{Created: created, CreatedBy: "kiln: Debian " + packageList(ps)}})
	}
	t := fstree.New()
	xa := xattrs{}
	var names []string
	for _, f := range r.files {
		if err := t.AddHostFile(f.path, 0o755, b.o.Binaries[f.binary]); err != nil {
			return nil, nil, err
		}
		if f.netBindService {
			xa[f.path] = map[string]string{"security.capability": capNetBindService}
		}
		names = append(names, f.binary)
	}
	l, err := writeLayerBlob(b.blobDir, t, xa, b.mtime)
	if err != nil {
		return nil, nil, fmt.Errorf("binaries layer: %w", err)
	}
	adds = append(adds, mutate.Addendum{Layer: l, History: v1.History{Created: created, CreatedBy: "kiln: " + strings.Join(names, ", ")}})

	cfg := &v1.ConfigFile{
		Architecture: b.o.Arch,
		OS:           "linux",
		Created:      created,
		Config: v1.Config{
			Entrypoint: r.entrypoint,
			Cmd:        r.cmd,
			Env:        []string{pathEnv},
			User:       r.user,
			WorkingDir: r.workdir,
		},
		RootFS: v1.RootFS{Type: "layers"},
	}
	if len(r.ports) > 0 {
		cfg.Config.ExposedPorts = map[string]struct{}{}
		for _, p := range r.ports {
			cfg.Config.ExposedPorts[p] = struct{}{}
		}
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		return nil, nil, err
	}
	img, err = mutate.Append(img, adds...)
	if err != nil {
		return nil, nil, err
	}
	return img, pkgs, nil
}

func (b *build) index(ctx context.Context) (*debian.Index, error) {
	if b.ix != nil {
		return b.ix, nil
	}
	if b.o.Index != nil {
		if b.o.Index.Arch != b.o.Arch {
			return nil, fmt.Errorf("Options.Index is for %s, not %s", b.o.Index.Arch, b.o.Arch)
		}
		b.ix = b.o.Index
		return b.ix, nil
	}
	ix, err := b.o.Debian.Index(ctx, b.o.Arch) // Debian's and Go's names agree for amd64 and arm64
	if err != nil {
		return nil, err
	}
	b.ix = ix
	return ix, nil
}

// describe reads back what the SBOM needs.
func describe(ref string, img v1.Image, pkgs []*debian.Package) (Image, error) {
	d, err := img.Digest()
	if err != nil {
		return Image{}, err
	}
	m, err := img.Manifest()
	if err != nil {
		return Image{}, err
	}
	raw, err := img.RawManifest()
	if err != nil {
		return Image{}, err
	}
	size := int64(len(raw)) + m.Config.Size
	for _, l := range m.Layers {
		size += l.Size
	}
	return Image{Ref: ref, Digest: d.String(), Size: size, Packages: pkgs}, nil
}

// baseTree is the layer every image starts from: the users the recipes
// run as, name service order, and a sticky /tmp.
func baseTree() *fstree.Tree {
	t := fstree.New()
	passwd := fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%d:%d:nonroot:/home/nonroot:/sbin/nologin\nnobody:x:%d:%d:nobody:/nonexistent:/sbin/nologin\n",
		uidNonroot, uidNonroot, uidNobody, uidNobody)
	group := fmt.Sprintf("root:x:0:\nnonroot:x:%d:\nnogroup:x:%d:\n", uidNonroot, uidNobody)
	must(t.AddFile("etc/passwd", 0o644, []byte(passwd)))
	must(t.AddFile("etc/group", 0o644, []byte(group)))
	must(t.AddFile("etc/nsswitch.conf", 0o644, []byte("passwd: files\ngroup: files\nhosts: files dns\n")))
	must(t.Mkdir("tmp", 0o777|os.ModeSticky))
	must(t.Mkdir("root", 0o700))
	must(t.Add(&fstree.Entry{Path: "home/nonroot", Kind: fstree.Dir, Perm: 0o700, UID: uidNonroot, GID: uidNonroot}))
	return t
}

func must(err error) {
	if err != nil {
		panic(err) // only for fixed, known-good trees
	}
}

// normalizePerms gives the layout 0644 files and 0755 directories
// whatever the umask, since its modes are copied into the system image.
func normalizePerms(dir string) error {
	return filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		mode := os.FileMode(0o644)
		if fi.IsDir() {
			mode = 0o755
		}
		return os.Chmod(p, mode)
	})
}

// replaceDir puts the finished layout at dir: a plain rename when dir does
// not exist, else an atomic exchange (the old layout ends up in tmp, which
// the caller removes).
func replaceDir(tmp, dir string) error {
	if _, err := os.Lstat(dir); os.IsNotExist(err) {
		return os.Rename(tmp, dir)
	}
	if err := unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, dir, unix.RENAME_EXCHANGE); err != nil {
		return fmt.Errorf("replace %s: %w", dir, err)
	}
	return nil
}
