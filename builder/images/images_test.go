package images

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"golang.org/x/sys/unix"

	"github.com/kilnproject/kiln/builder/fstree"
)

const testEpoch = 1767225600 // 2026-01-01

var (
	standinOnce sync.Map // arch -> *standin
	standinRoot string
)

type standin struct {
	once sync.Once
	path string
	err  error
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "kiln-images-test-")
	if err != nil {
		panic(err)
	}
	standinRoot = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// standinBinary compiles, once per arch, a tiny static Go program that
// stands in for the components.
func standinBinary(t *testing.T, arch string) string {
	t.Helper()
	v, _ := standinOnce.LoadOrStore(arch, &standin{})
	s := v.(*standin)
	s.once.Do(func() {
		dir := filepath.Join(standinRoot, "src-"+arch)
		if s.err = os.MkdirAll(dir, 0o755); s.err != nil {
			return
		}
		src := "package main\n\nimport (\n\t\"fmt\"\n\t\"os\"\n)\n\nfunc main() { fmt.Println(\"kiln stand-in\", os.Args[1:], \"uid\", os.Getuid()) }\n"
		if s.err = os.WriteFile(filepath.Join(dir, "main.go"), []byte(src), 0o644); s.err != nil {
			return
		}
		s.path = filepath.Join(standinRoot, "standin-"+arch)
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", s.path, "main.go")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch, "GO111MODULE=off")
		if out, err := cmd.CombinedOutput(); err != nil {
			s.err = &buildError{err, string(out)}
		}
	})
	if s.err != nil {
		t.Fatalf("building the stand-in binary for %s: %v", arch, s.err)
	}
	return s.path
}

type buildError struct {
	err error
	out string
}

func (e *buildError) Error() string { return e.err.Error() + "\n" + e.out }

// marker is appended to each binary's copy so tests can tell which one
// landed where (an ELF file ignores trailing bytes).
func marker(name string) string { return "\nkiln-test-binary:" + name + "\n" }

// testBinaries returns one marked copy of the stand-in per component name.
func testBinaries(t *testing.T, arch string) map[string]string {
	t.Helper()
	base, err := os.ReadFile(standinBinary(t, arch))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	out := map[string]string{}
	names, err := Binaries(testRefs())
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		p := filepath.Join(dir, n)
		if err := os.WriteFile(p, append(bytes.Clone(base), marker(n)...), 0o755); err != nil {
			t.Fatal(err)
		}
		out[n] = p
	}
	return out
}

// testRefs is kubeadm's list (from the fake kubeadm) plus the addons.
func testRefs() []string {
	refs := append([]string(nil), wantKubeadmRefs...)
	add, err := Addons(refs)
	if err != nil {
		panic(err)
	}
	return append(refs, add...)
}

func tripletOf(arch string) string {
	return map[string]string{"amd64": "x86_64-linux-gnu", "arm64": "aarch64-linux-gnu"}[arch]
}

func testOptions(t *testing.T, arch string) Options {
	t.Helper()
	refs, err := KubeadmList(context.Background(), fakeKubeadm(t), testK8sVersion)
	if err != nil {
		t.Fatal(err)
	}
	add, err := Addons(refs)
	if err != nil {
		t.Fatal(err)
	}
	return Options{
		Arch:     arch,
		Refs:     append(refs, add...),
		Binaries: testBinaries(t, arch),
		Debian:   fakeArchive(t, arch, fakeUserspace(tripletOf(arch))),
		Epoch:    testEpoch,
		Dir:      filepath.Join(t.TempDir(), "images"),
		Log:      t.Logf,
	}
}

// tarEntry is a layer member with its content.
type tarEntry struct {
	hdr  *tar.Header
	data []byte
}

func readLayer(t *testing.T, l v1.Layer) []tarEntry {
	t.Helper()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	var out []tarEntry
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, tarEntry{hdr, data})
	}
}

func byName(entries []tarEntry) map[string]tarEntry {
	m := map[string]tarEntry{}
	for _, e := range entries {
		m[strings.TrimSuffix(e.hdr.Name, "/")] = e
	}
	return m
}

// wantImage is what each recipe must produce, checked from the outside.
type wantImage struct {
	entrypoint []string
	cmd        []string
	user       string
	workdir    string
	ports      []string          // ExposedPorts
	files      map[string]string // path -> binary name whose marker it carries
	caps       []string          // paths with cap_net_bind_service
}

var wantImages = map[string]wantImage{
	"kube-apiserver":          {entrypoint: []string{"/usr/local/bin/kube-apiserver"}, files: map[string]string{"usr/local/bin/kube-apiserver": "kube-apiserver"}, caps: []string{"usr/local/bin/kube-apiserver"}},
	"kube-controller-manager": {entrypoint: []string{"/usr/local/bin/kube-controller-manager"}, files: map[string]string{"usr/local/bin/kube-controller-manager": "kube-controller-manager"}},
	"kube-scheduler":          {entrypoint: []string{"/usr/local/bin/kube-scheduler"}, files: map[string]string{"usr/local/bin/kube-scheduler": "kube-scheduler"}},
	"kube-proxy":              {entrypoint: []string{"/usr/local/bin/kube-proxy"}, files: map[string]string{"usr/local/bin/kube-proxy": "kube-proxy"}},
	"etcd": {entrypoint: []string{"/usr/local/bin/etcd"}, workdir: "/", ports: []string{"2379/tcp", "2380/tcp", "4001/tcp", "7001/tcp"},
		files: map[string]string{"usr/local/bin/etcd": "etcd", "usr/local/bin/etcdctl": "etcdctl"}},
	"coredns": {entrypoint: []string{"/coredns"}, user: "65532:65532", workdir: "/", ports: []string{"53/tcp", "53/udp"},
		files: map[string]string{"coredns": "coredns"}, caps: []string{"coredns"}},
	"pause":          {entrypoint: []string{"/pause"}, user: "65535:65535", files: map[string]string{"pause": "pause"}},
	"metrics-server": {entrypoint: []string{"/metrics-server"}, user: "65534", files: map[string]string{"metrics-server": "metrics-server"}},
	"kiln-probe": {entrypoint: []string{"/kiln-probe"}, cmd: []string{"serve"}, user: "65534:65534", ports: []string{"8080/tcp"},
		files: map[string]string{"kiln-probe": "kiln-probe"}},
}

func TestBuild(t *testing.T) {
	for _, arch := range []string{"amd64", "arm64"} {
		t.Run(arch, func(t *testing.T) { testBuild(t, arch) })
	}
}

func testBuild(t *testing.T, arch string) {
	o := testOptions(t, arch)
	res, err := Build(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	refs := append([]string(nil), o.Refs...)
	sort.Strings(refs)
	if len(res) != len(refs) {
		t.Fatalf("%d images, want %d", len(res), len(refs))
	}
	for i := range res {
		if res[i].Ref != refs[i] {
			t.Fatalf("result %d is %s, want %s (sorted refs)", i, res[i].Ref, refs[i])
		}
	}

	// go-containerregistry's layout reader and validator as the oracle.
	ii, err := layout.ImageIndexFromPath(o.Dir)
	if err != nil {
		t.Fatal(err)
	}
	im, err := ii.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != len(res) {
		t.Fatalf("index.json lists %d manifests, want %d", len(im.Manifests), len(res))
	}
	baseDigests := map[v1.Hash]bool{}
	for i, desc := range im.Manifests {
		r := res[i]
		ref := r.Ref
		if desc.Digest.String() != r.Digest {
			t.Errorf("%s: index digest %s, Build returned %s", ref, desc.Digest, r.Digest)
		}
		if desc.MediaType != types.OCIManifestSchema1 {
			t.Errorf("%s: media type %s", ref, desc.MediaType)
		}
		if desc.Annotations[AnnotationRefName] != ref || desc.Annotations[AnnotationContainerd] != ref {
			t.Errorf("%s: annotations %v", ref, desc.Annotations)
		}
		if desc.Platform == nil || desc.Platform.OS != "linux" || desc.Platform.Architecture != arch {
			t.Errorf("%s: platform %v", ref, desc.Platform)
		}
		img, err := ii.Image(desc.Digest)
		if err != nil {
			t.Fatal(err)
		}
		// validate's full mode assumes gzip layers; Fast checks config and
		// manifest against each other, the blobs are hashed below.
		if err := validate.Image(img, validate.Fast); err != nil {
			t.Errorf("%s: go-containerregistry validation: %v", ref, err)
		}
		m, err := img.Manifest()
		if err != nil {
			t.Fatal(err)
		}
		size := desc.Size + m.Config.Size
		for _, l := range m.Layers {
			size += l.Size
			if l.MediaType != types.OCIUncompressedLayer {
				t.Errorf("%s: layer %s has media type %s, want uncompressed OCI tar", ref, l.Digest, l.MediaType)
			}
		}
		if size != r.Size {
			t.Errorf("%s: Size %d, blobs add up to %d", ref, r.Size, size)
		}
		cfg, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		tag, _ := parseTag(ref)
		want := wantImages[repoBase(tag)]
		if cfg.Architecture != arch || cfg.OS != "linux" || !cfg.Created.Time.Equal(time.Unix(testEpoch, 0)) {
			t.Errorf("%s: config arch %q os %q created %v", ref, cfg.Architecture, cfg.OS, cfg.Created)
		}
		if !reflect.DeepEqual(cfg.Config.Entrypoint, want.entrypoint) || cfg.Config.User != want.user || cfg.Config.WorkingDir != want.workdir {
			t.Errorf("%s: entrypoint %q user %q workdir %q, want %q %q %q", ref, cfg.Config.Entrypoint, cfg.Config.User, cfg.Config.WorkingDir, want.entrypoint, want.user, want.workdir)
		}
		if !reflect.DeepEqual(cfg.Config.Cmd, want.cmd) {
			t.Errorf("%s: cmd %q, want %q", ref, cfg.Config.Cmd, want.cmd)
		}
		var ports []string
		for p := range cfg.Config.ExposedPorts {
			ports = append(ports, p)
		}
		sort.Strings(ports)
		if !reflect.DeepEqual(ports, want.ports) {
			t.Errorf("%s: exposed ports %q, want %q", ref, ports, want.ports)
		}
		if !reflect.DeepEqual(cfg.Config.Env, []string{pathEnv}) {
			t.Errorf("%s: env %q", ref, cfg.Config.Env)
		}
		layers, err := img.Layers()
		if err != nil {
			t.Fatal(err)
		}
		if len(cfg.RootFS.DiffIDs) != len(layers) || len(cfg.History) != len(layers) {
			t.Errorf("%s: %d diff_ids and %d history entries for %d layers", ref, len(cfg.RootFS.DiffIDs), len(cfg.History), len(layers))
		}
		for i, l := range layers {
			rc, err := l.Compressed()
			if err != nil {
				t.Fatal(err)
			}
			h, n, err := v1.SHA256(rc)
			rc.Close()
			if err != nil {
				t.Fatal(err)
			}
			if h != m.Layers[i].Digest || n != m.Layers[i].Size || h != cfg.RootFS.DiffIDs[i] {
				t.Errorf("%s: layer %d hashes to %s (%d bytes); manifest says %s (%d), diff_id %s", ref, i, h, n, m.Layers[i].Digest, m.Layers[i].Size, cfg.RootFS.DiffIDs[i])
			}
		}
		baseDigests[m.Layers[0].Digest] = true

		// Every layer: deterministic headers, only xattr PAX records.
		files := map[string]tarEntry{}
		for _, l := range layers {
			entries := readLayer(t, l)
			checkTarHeaders(t, ref, entries)
			for k, v := range byName(entries) {
				files[k] = v
			}
		}
		for p, bin := range want.files {
			e, ok := files[p]
			if !ok {
				t.Errorf("%s: /%s missing", ref, p)
				continue
			}
			if !bytes.HasSuffix(e.data, []byte(marker(bin))) || e.hdr.Mode != 0o755 {
				t.Errorf("%s: /%s is not binary %s with mode 0755 (mode %o)", ref, p, bin, e.hdr.Mode)
			}
		}
		for p, e := range files {
			hasCap := e.hdr.PAXRecords["SCHILY.xattr.security.capability"] != ""
			if hasCap != contains(want.caps, p) {
				t.Errorf("%s: /%s has capability xattr %v, want %v", ref, p, hasCap, contains(want.caps, p))
			}
			if hasCap && e.hdr.PAXRecords["SCHILY.xattr.security.capability"] != capNetBindService {
				t.Errorf("%s: /%s capability xattr %x", ref, p, e.hdr.PAXRecords["SCHILY.xattr.security.capability"])
			}
		}
		for _, p := range []string{"etc/passwd", "etc/group", "tmp"} {
			if _, ok := files[p]; !ok {
				t.Errorf("%s: /%s missing", ref, p)
			}
		}
		if files["tmp"].hdr.Mode != 0o1777 {
			t.Errorf("%s: /tmp mode %o, want 1777", ref, files["tmp"].hdr.Mode)
		}
		if repoBase(tag) == "kube-proxy" {
			checkKubeProxy(t, arch, r, files)
		} else if len(r.Packages) != 0 {
			t.Errorf("%s: Debian packages %v", ref, r.Packages)
		}
	}
	if len(baseDigests) != 1 {
		t.Errorf("the base layer differs between images: %v", baseDigests)
	}
	checkIndexJSON(t, o.Dir, res)
	checkSkopeo(t, o.Dir, res, arch)
	checkUmoci(t, o.Dir, res)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func checkTarHeaders(t *testing.T, ref string, entries []tarEntry) {
	t.Helper()
	var names []string
	for _, e := range entries {
		h := e.hdr
		names = append(names, strings.TrimSuffix(h.Name, "/"))
		if !h.ModTime.Equal(time.Unix(testEpoch, 0)) || !h.AccessTime.IsZero() || !h.ChangeTime.IsZero() {
			t.Errorf("%s: %s: times %v %v %v", ref, h.Name, h.ModTime, h.AccessTime, h.ChangeTime)
		}
		if h.Uname != "" || h.Gname != "" {
			t.Errorf("%s: %s: owner names %q %q", ref, h.Name, h.Uname, h.Gname)
		}
		for k := range h.PAXRecords {
			if !strings.HasPrefix(k, "SCHILY.xattr.") && k != "path" && k != "linkpath" {
				t.Errorf("%s: %s: PAX record %q", ref, h.Name, k)
			}
		}
		if strings.HasPrefix(h.Name, "/") || strings.HasPrefix(h.Name, "./") {
			t.Errorf("%s: member name %q", ref, h.Name)
		}
	}
	if !sort.StringsAreSorted(names) {
		t.Errorf("%s: layer members not sorted: %q", ref, names)
	}
}

// checkKubeProxy looks at the Debian layer built from the fake archive.
func checkKubeProxy(t *testing.T, arch string, r Image, files map[string]tarEntry) {
	t.Helper()
	var names []string
	for _, p := range r.Packages {
		names = append(names, p.Name)
	}
	if want := []string{"ipset", "iptables", "libc6", "libxtables12", "nftables"}; !reflect.DeepEqual(names, want) {
		t.Errorf("kube-proxy packages %q, want %q", names, want)
	}
	lib := "usr/lib/" + tripletOf(arch)
	for _, p := range []string{"usr/sbin/xtables-nft-multi", "usr/sbin/nft", "usr/sbin/ipset", "etc/nftables.conf",
		lib + "/libc.so.6", lib + "/libxtables.so.12", lib + "/xtables/libxt_comment.so"} {
		if e, ok := files[p]; !ok || e.hdr.Typeflag != tar.TypeReg {
			t.Errorf("kube-proxy: /%s missing or not a file", p)
		}
	}
	for p, target := range map[string]string{
		"bin": "usr/bin", "sbin": "usr/sbin", "lib": "usr/lib", "lib64": "usr/lib64",
		"usr/sbin/iptables": "iptables-nft", "usr/sbin/ip6tables-restore": "ip6tables-nft-restore",
		"usr/lib64/ld-fake.so.2": "/lib/" + tripletOf(arch) + "/libc.so.6",
	} {
		if e := files[p]; e.hdr == nil || e.hdr.Typeflag != tar.TypeSymlink || e.hdr.Linkname != target {
			t.Errorf("kube-proxy: /%s is not a symlink to %s", p, target)
		}
	}
	for p := range files {
		if strings.HasPrefix(p, "usr/share") || strings.Contains(p, "/gconv") || strings.Contains(p, "systemd") ||
			strings.HasPrefix(p, "usr/libexec") || strings.Contains(p, "unrelated") {
			t.Errorf("kube-proxy: /%s should have been left out", p)
		}
		if first, _, _ := strings.Cut(p, "/"); first != p && (first == "lib" || first == "sbin" || first == "lib64" || first == "bin") {
			t.Errorf("kube-proxy: /%s is below a merged-usr symlink", p)
		}
	}
}

// checkIndexJSON reads index.json as containerd's importer would: the
// image name comes from the descriptor annotations.
func checkIndexJSON(t *testing.T, dir string, res []Image) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	var idx struct {
		SchemaVersion int `json:"schemaVersion"`
		Manifests     []struct {
			MediaType   string            `json:"mediaType"`
			Digest      string            `json:"digest"`
			Annotations map[string]string `json:"annotations"`
		} `json:"manifests"`
	}
	if err := json.Unmarshal(raw, &idx); err != nil {
		t.Fatal(err)
	}
	if idx.SchemaVersion != 2 || len(idx.Manifests) != len(res) {
		t.Fatalf("index.json: schemaVersion %d, %d manifests", idx.SchemaVersion, len(idx.Manifests))
	}
	for i, m := range idx.Manifests {
		if m.Annotations["io.containerd.image.name"] != res[i].Ref || m.Annotations["org.opencontainers.image.ref.name"] != res[i].Ref || m.Digest != res[i].Digest {
			t.Errorf("index.json manifest %d: %+v, want %s %s", i, m, res[i].Ref, res[i].Digest)
		}
	}
	layoutFile, err := os.ReadFile(filepath.Join(dir, "oci-layout"))
	if err != nil || !bytes.Contains(layoutFile, []byte(`"imageLayoutVersion": "1.0.0"`)) {
		t.Errorf("oci-layout: %q %v", layoutFile, err)
	}
}

func needTool(t *testing.T, name, pkg string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Fatalf("%s is required by this test (apt-get install %s)", name, pkg)
	}
}

// checkSkopeo has skopeo read every image by its reference and copy it
// out of the layout, which verifies every blob against its digest.
func checkSkopeo(t *testing.T, dir string, res []Image, arch string) {
	t.Helper()
	needTool(t, "skopeo", "skopeo")
	for _, r := range res {
		out, err := exec.Command("skopeo", "inspect", "oci:"+dir+":"+r.Ref).Output()
		if err != nil {
			t.Fatalf("skopeo inspect %s: %v %s", r.Ref, err, stderrOf(err))
		}
		var info struct {
			Digest       string
			Architecture string
			Os           string
			Created      time.Time
		}
		if err := json.Unmarshal(out, &info); err != nil {
			t.Fatal(err)
		}
		if info.Digest != r.Digest || info.Architecture != arch || info.Os != "linux" || !info.Created.Equal(time.Unix(testEpoch, 0)) {
			t.Errorf("skopeo inspect %s: %+v, want digest %s", r.Ref, info, r.Digest)
		}
		dest := filepath.Join(t.TempDir(), "copy")
		if out, err := exec.Command("skopeo", "copy", "--quiet", "oci:"+dir+":"+r.Ref, "dir:"+dest).CombinedOutput(); err != nil {
			t.Fatalf("skopeo copy %s: %v\n%s", r.Ref, err, out)
		}
	}
}

// checkUmoci unpacks each image into a runtime bundle (rootless), which
// applies the layers in order and checks their diff IDs, and looks at the
// root filesystem a container would get.
func checkUmoci(t *testing.T, dir string, res []Image) {
	t.Helper()
	needTool(t, "umoci", "umoci")
	for _, r := range res {
		bundle := filepath.Join(t.TempDir(), "bundle")
		if out, err := exec.Command("umoci", "--log", "error", "unpack", "--rootless", "--image", dir+":"+r.Ref, bundle).CombinedOutput(); err != nil {
			t.Fatalf("umoci unpack %s: %v\n%s", r.Ref, err, out)
		}
		tag, _ := parseTag(r.Ref)
		want := wantImages[repoBase(tag)]
		for p, bin := range want.files {
			b, err := os.ReadFile(filepath.Join(bundle, "rootfs", p))
			if err != nil || !bytes.HasSuffix(b, []byte(marker(bin))) {
				t.Errorf("umoci %s: /%s: %v", r.Ref, p, err)
			}
		}
		var spec struct {
			Process struct {
				Args []string
				Cwd  string
			}
		}
		raw, err := os.ReadFile(filepath.Join(bundle, "config.json"))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(raw, &spec); err != nil {
			t.Fatal(err)
		}
		if wantArgs := append(append([]string(nil), want.entrypoint...), want.cmd...); !reflect.DeepEqual(spec.Process.Args, wantArgs) {
			t.Errorf("umoci %s: process args %q, want %q", r.Ref, spec.Process.Args, wantArgs)
		}
	}
}

func stderrOf(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return string(ee.Stderr)
	}
	return ""
}

// TestDeterministic builds twice, the second time from refs in another
// order and a different cache, and wants byte-identical layouts.
func TestDeterministic(t *testing.T) {
	o := testOptions(t, runtime.GOARCH)
	if _, err := Build(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	o2 := o
	o2.Dir = filepath.Join(t.TempDir(), "again")
	o2.Refs = append([]string(nil), o.Refs...)
	sort.Sort(sort.Reverse(sort.StringSlice(o2.Refs)))
	o2.Debian = fakeArchive(t, runtime.GOARCH, fakeUserspace(tripletOf(runtime.GOARCH)))
	if _, err := Build(context.Background(), o2); err != nil {
		t.Fatal(err)
	}
	a, b := treeOf(t, o.Dir), treeOf(t, o2.Dir)
	if !reflect.DeepEqual(a, b) {
		for k := range a {
			if a[k] != b[k] {
				t.Errorf("%s differs", k)
			}
		}
		for k := range b {
			if _, ok := a[k]; !ok {
				t.Errorf("%s only in the second build", k)
			}
		}
		t.Fatal("two builds of the same inputs differ")
	}
	if _, ok := a["index.json"]; !ok || len(a) < 10 {
		t.Fatalf("layout holds only %d files", len(a))
	}
}

// treeOf maps every file of dir to its mode and content.
func treeOf(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if fi.IsDir() {
			out[rel] = fi.Mode().String()
			return nil
		}
		b, err := os.ReadFile(p)
		out[rel] = fi.Mode().String() + " " + sha256Hex(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestReplace: a build replaces an existing layout whole; a failed build
// leaves it alone; neither leaves temporary directories behind.
func TestReplace(t *testing.T) {
	o := testOptions(t, runtime.GOARCH)
	if err := os.MkdirAll(filepath.Join(o.Dir, "blobs/sha256"), 0o755); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(o.Dir, "blobs/sha256/stale")
	if err := os.WriteFile(stale, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Build(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Fatalf("the old layout's file survived: %v", err)
	}
	before := treeOf(t, o.Dir)

	bad := o
	bad.Binaries = map[string]string{}
	for k, v := range o.Binaries {
		bad.Binaries[k] = v
	}
	bad.Binaries["etcdctl"] = filepath.Join(t.TempDir(), "gone")
	if _, err := Build(context.Background(), bad); err == nil {
		t.Fatal("missing etcdctl: no error")
	}
	// Fails late: the Debian index cannot be read.
	late := o
	late.Debian = fakeArchive(t, runtime.GOARCH, fakeUserspace(tripletOf(runtime.GOARCH)))
	late.Debian.Keyring = filepath.Join(t.TempDir(), "no-keyring")
	if _, err := Build(context.Background(), late); err == nil {
		t.Fatal("unreadable keyring: no error")
	}
	if after := treeOf(t, o.Dir); !reflect.DeepEqual(before, after) {
		t.Fatal("a failed build changed the existing layout")
	}
	ents, err := os.ReadDir(filepath.Dir(o.Dir))
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 1 {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Fatalf("left next to the layout: %q", names)
	}
}

func TestBuildErrors(t *testing.T) {
	o := testOptions(t, "amd64")
	other := testBinaries(t, "arm64")
	for _, tc := range []struct {
		name string
		edit func(o *Options)
		want string
	}{
		{"no recipe", func(o *Options) { o.Refs = append(o.Refs, "registry.example.test/kube-state-metrics:v2.0.0") }, `no recipe for image "kube-state-metrics"`},
		{"missing binary", func(o *Options) { delete(o.Binaries, "etcdctl") }, `registry.example.test/etcd:3.7.0-0: Binaries has no "etcdctl"`},
		{"wrong arch", func(o *Options) { o.Binaries["pause"] = other["pause"] }, "binary pause (" + other["pause"] + ") is built for EM_AARCH64, want amd64"},
		{"not ELF", func(o *Options) { o.Binaries["pause"] = "testdata/fake-kubeadm" }, "binary pause"},
		{"twice", func(o *Options) { o.Refs = append(o.Refs, o.Refs[0]) }, "listed twice"},
		{"bad ref", func(o *Options) { o.Refs = append(o.Refs, "pause") }, `image reference "pause"`},
		{"no epoch", func(o *Options) { o.Epoch = 0 }, "Epoch 0"},
		{"arch", func(o *Options) { o.Arch = "riscv64" }, `Arch "riscv64"`},
		{"no debian", func(o *Options) { o.Debian = nil }, "kube-proxy:v1.37.2: needs Debian packages (iptables, nftables, ipset)"},
		{"missing package", func(o *Options) {
			o.Debian = fakeArchive(t, "amd64", fakeUserspace(tripletOf("amd64"))[1:])
		}, "iptables"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := o
			c.Refs = append([]string(nil), o.Refs...)
			c.Binaries = map[string]string{}
			for k, v := range o.Binaries {
				c.Binaries[k] = v
			}
			c.Dir = filepath.Join(t.TempDir(), "images")
			tc.edit(&c)
			_, err := Build(context.Background(), c)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
			if _, err := os.Stat(c.Dir); !os.IsNotExist(err) {
				t.Fatalf("failed build left %s: %v", c.Dir, err)
			}
		})
	}
}

// TestCapabilityXattr checks the capability xattr against the real
// tools: the bytes setcap writes, and what GNU tar extracts from a layer
// as getcap reads it back. Both need CAP_SETFCAP, so root.
func TestCapabilityXattr(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("setcap and extracting security.capability need root")
	}
	needTool(t, "setcap", "libcap2-bin")
	needTool(t, "getcap", "libcap2-bin")
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	if err := os.WriteFile(p, nil, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("setcap", "cap_net_bind_service=+ep", p).CombinedOutput(); err != nil {
		t.Fatalf("setcap: %v\n%s", err, out)
	}
	buf := make([]byte, 64)
	n, err := unix.Getxattr(p, "security.capability", buf)
	if err != nil {
		t.Fatal(err)
	}
	if string(buf[:n]) != capNetBindService {
		t.Fatalf("setcap wrote %x, we write %x", buf[:n], capNetBindService)
	}

	tr := fstree.New()
	if err := tr.AddFile("usr/local/bin/server", 0o755, []byte("#!/bin/true\n")); err != nil {
		t.Fatal(err)
	}
	blobs := filepath.Join(dir, "blobs")
	if err := os.Mkdir(blobs, 0o755); err != nil {
		t.Fatal(err)
	}
	l, err := writeLayerBlob(blobs, tr, xattrs{"usr/local/bin/server": {"security.capability": capNetBindService}}, time.Unix(testEpoch, 0))
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(dir, "root")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("tar", "--xattrs", "--xattrs-include=*", "-xf", l.path, "-C", root).CombinedOutput(); err != nil {
		t.Fatalf("tar: %v\n%s", err, out)
	}
	out, err := exec.Command("getcap", filepath.Join(root, "usr/local/bin/server")).CombinedOutput()
	if err != nil || !strings.HasSuffix(strings.TrimSpace(string(out)), " cap_net_bind_service=ep") {
		t.Fatalf("getcap after tar -x: %q %v", out, err)
	}
}
