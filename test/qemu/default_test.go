package qemu_test

import (
	"archive/tar"
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kilnproject/kiln/builder/components"
	"github.com/kilnproject/kiln/builder/images"
)

// The default profile: the Kubernetes appliance. Built once per test
// process (for amd64 and arm64, ISO and qcow2: the cluster test wants a
// disk for containerd; the other formats are the minimal profile's tests),
// lazily, by the first test that needs it. KILN_DEFAULT_IMAGES=DIR uses the
// images of an earlier `kiln build -p profiles/default.yaml -o DIR` instead.

const defaultVersion = "0.1.0"

var defaultOnce struct {
	sync.Once
	dir string
	err error
}

// defaultISO builds the default profile (once) and returns the ISO for arch.
func defaultISO(t *testing.T, arch string) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the default profile (Kubernetes components: tens of minutes from a cold Go cache)")
	}
	defaultOnce.Do(func() {
		if dir := os.Getenv("KILN_DEFAULT_IMAGES"); dir != "" {
			defaultOnce.dir = dir
			return
		}
		dir := filepath.Join(os.TempDir(), fmt.Sprintf("kiln-default-%d", os.Getpid()))
		t0 := time.Now()
		cmd := exec.Command(kilnBin, "build", "-p", filepath.Join(repoRoot, "profiles/default.yaml"), "--format", "iso,qcow2", "-o", dir)
		cmd.Dir = repoRoot
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			defaultOnce.err = fmt.Errorf("kiln build of the default profile: %v\n%s", err, lastLines(out.String(), 30))
			return
		}
		fmt.Fprintf(os.Stderr, "%sdefault profile built in %.1fs\n", out.String(), time.Since(t0).Seconds())
		defaultOnce.dir = dir
		cleanups = append(cleanups, func() { os.RemoveAll(dir) })
	})
	if defaultOnce.err != nil {
		t.Fatal(defaultOnce.err)
	}
	return defaultImage(t, arch, "iso")
}

// defaultImage builds the default profile (once) and returns its image of
// format ext (iso, qcow2) for arch.
func defaultImage(t *testing.T, arch, ext string) string {
	t.Helper()
	if ext != "iso" {
		defaultISO(t, arch)
	}
	p := filepath.Join(defaultOnce.dir, fmt.Sprintf("default-%s-%s.%s", defaultVersion, arch, ext))
	if _, err := os.Stat(p); err != nil {
		t.Fatal(err)
	}
	return p
}

// hostBinaries are the components the default profile lays into the rootfs.
var hostBinaries = map[string]string{
	"kubelet": "usr/bin", "kubeadm": "usr/bin", "kubectl": "usr/bin", "containerd": "usr/bin",
	"containerd-shim-runc-v2": "usr/bin", "runc": "usr/bin", "crictl": "usr/bin", "etcdctl": "usr/bin",
	"ctr": "usr/bin", "kiln-bootstrap": "usr/bin",
	"bridge": "opt/cni/bin", "host-local": "opt/cni/bin", "loopback": "opt/cni/bin", "portmap": "opt/cni/bin",
}

// imageBinaries: the binary each image exists to run, by repository basename.
var imageBinaries = map[string]string{
	"kube-apiserver": "kube-apiserver", "kube-controller-manager": "kube-controller-manager",
	"kube-scheduler": "kube-scheduler", "kube-proxy": "kube-proxy", "etcd": "etcd", "coredns": "coredns",
	"pause": "pause", "metrics-server": "metrics-server", "kiln-probe": "kiln-probe",
}

// addonImages are the images beyond kubeadm's list, by repository basename.
var addonImages = []string{"kiln-probe", "metrics-server"}

var elfMachines = map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}

// TestDefaultProfileContents opens the default ISO of each architecture the
// way a user would (xorriso, unsquashfs), and checks that every component
// binary and every image kubeadm needs is inside, built for that
// architecture, statically; on amd64 it runs each with its version flag.
// The image references must be exactly what the image's own kubeadm lists.
func TestDefaultProfileContents(t *testing.T) {
	for _, arch := range []string{"amd64", "arm64"} {
		t.Run(arch, func(t *testing.T) {
			iso := defaultISO(t, arch)
			st, err := os.Stat(iso)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: %.1f MiB", filepath.Base(iso), float64(st.Size())/(1<<20))
			if st.Size() > 350e6 {
				t.Errorf("%s is %d bytes: over the 350 MB budget for the full appliance", filepath.Base(iso), st.Size())
			}
			root := extractSystem(t, iso)
			for name, dir := range hostBinaries {
				checkBinary(t, arch, filepath.Join(root, dir, name), name)
			}

			// The profile's overlay (overlays/kubernetes) is in the rootfs as written.
			overlay, _ := os.ReadFile(filepath.Join(repoRoot, "overlays/kubernetes/etc/crictl.yaml"))
			if got, err := os.ReadFile(filepath.Join(root, "etc/crictl.yaml")); err != nil || !bytes.Equal(got, overlay) || len(overlay) == 0 {
				t.Errorf("etc/crictl.yaml from overlays/kubernetes: got %q (%v), want %q", got, err, overlay)
			}

			var cluster struct {
				Kubernetes string   `json:"kubernetes"`
				Images     []string `json:"images"`
				ImagesDir  string   `json:"imagesDir"`
			}
			readJSON(t, filepath.Join(root, "etc/kiln/cluster.json"), &cluster)
			if cluster.Kubernetes != "v1.37.2" {
				t.Errorf("cluster.json: kubernetes %q, want v1.37.2", cluster.Kubernetes)
			}
			layout := filepath.Join(root, strings.TrimPrefix(cluster.ImagesDir, "/"))
			refs := layoutImages(t, layout, arch)

			// kubeadm's own list, from the amd64 image's kubeadm (it runs here).
			kubeadm := filepath.Join(strings.Replace(root, "/"+arch+"/", "/amd64/", 1), "usr/bin/kubeadm")
			if arch == "amd64" {
				kubeadm = filepath.Join(root, "usr/bin/kubeadm")
			}
			want := kubeadmList(t, kubeadm)
			var addons []string
			for ref := range refs {
				if !slices.Contains(want, ref) {
					addons = append(addons, ref)
				}
			}
			for _, ref := range want {
				if _, ok := refs[ref]; !ok {
					t.Errorf("kubeadm lists %s, the image's OCI layout lacks it", ref)
				}
			}
			var addonBases []string
			for _, ref := range addons {
				addonBases = append(addonBases, repoBaseOf(ref))
			}
			slices.Sort(addonBases)
			if !slices.Equal(addonBases, addonImages) {
				t.Errorf("images beyond kubeadm's list: %v, want %v", addonBases, addonImages)
			}
			// Ours, under the local name no registry serves, as the cluster
			// checks refer to it; it serves HTTP by default, as nobody.
			if _, ok := refs[images.ProbeRef]; !ok {
				t.Errorf("the OCI layout has no %s", images.ProbeRef)
			} else {
				cfg := layoutConfig(t, layout, images.ProbeRef)
				if !slices.Equal(cfg.Entrypoint, []string{"/kiln-probe"}) || !slices.Equal(cfg.Cmd, []string{"serve"}) ||
					cfg.User != "65534:65534" || len(cfg.ExposedPorts) != 1 || cfg.ExposedPorts["8080/tcp"] == nil {
					t.Errorf("%s: config %+v, want entrypoint /kiln-probe, cmd serve, user 65534:65534, port 8080/tcp", images.ProbeRef, cfg)
				}
			}
			slices.Sort(cluster.Images)
			all := append(append([]string(nil), want...), addons...)
			slices.Sort(all)
			if !slices.Equal(cluster.Images, all) {
				t.Errorf("cluster.json images %v, layout %v", cluster.Images, all)
			}
			checkSBOMImages(t, arch, layout)
			for ref, files := range refs {
				bin := imageBinaries[repoBaseOf(ref)]
				p, ok := files[bin]
				if !ok {
					t.Errorf("%s: no %s binary in its layers", ref, bin)
					continue
				}
				checkBinary(t, arch, p, bin)
			}
			var names []string // repository basenames and tags: the log names no registry
			for _, ref := range all {
				names = append(names, ref[strings.LastIndex(ref, "/")+1:])
			}
			t.Logf("%s: %d host binaries, %d images (%s)", arch, len(hostBinaries), len(refs), strings.Join(names, " "))
		})
	}
}

// extractSystem pulls the system squashfs out of the ISO and unpacks the
// parts the test reads. The directory is shared by the arch subtests, so
// the arm64 one can run the amd64 kubeadm.
func extractSystem(t *testing.T, iso string) string {
	t.Helper()
	base := filepath.Join(os.TempDir(), fmt.Sprintf("kiln-default-root-%d", os.Getpid()))
	arch := "amd64"
	if strings.Contains(filepath.Base(iso), "arm64") {
		arch = "arm64"
	}
	dir := filepath.Join(base, arch)
	if _, err := os.Stat(filepath.Join(dir, "root")); err == nil {
		return filepath.Join(dir, "root")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cleanups = append(cleanups, func() { os.RemoveAll(base) })
	sqfs := filepath.Join(dir, "system.sqfs")
	runTool(t, "xorriso", "-osirrox", "on", "-indev", iso, "-extract", "/kiln/system.sqfs", sqfs)
	runTool(t, "unsquashfs", "-no-progress", "-d", filepath.Join(dir, "root"), sqfs, "usr/bin", "opt/cni/bin", "usr/share/kiln", "etc/kiln", "etc/crictl.yaml")
	return filepath.Join(dir, "root")
}

// checkBinary: an ELF executable for arch with no interpreter (static);
// the amd64 ones must also print the pinned version.
func checkBinary(t *testing.T, arch, path, name string) {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Errorf("%s/%s: %v", arch, name, err)
		return
	}
	defer f.Close()
	if f.Machine != elfMachines[arch] {
		t.Errorf("%s/%s: ELF machine %v, want %v", arch, name, f.Machine, elfMachines[arch])
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("%s/%s: dynamically linked (has PT_INTERP)", arch, name)
		}
	}
	if arch != "amd64" {
		return
	}
	probe, ok := components.VersionProbes[name]
	if !ok {
		t.Errorf("no version probe for %s", name)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, probe.Args...).CombinedOutput()
	if err != nil && !probe.ExitNonZero {
		t.Errorf("%s %v: %v\n%s", name, probe.Args, err, out)
		return
	}
	for _, w := range probe.Want {
		if !bytes.Contains(out, []byte(w)) {
			t.Errorf("%s %v printed %q, want %q in it", name, probe.Args, out, w)
		}
	}
}

func kubeadmList(t *testing.T, kubeadm string) []string {
	t.Helper()
	out, err := exec.Command(kubeadm, "config", "images", "list", "--kubernetes-version", "v1.37.2").Output()
	if err != nil {
		t.Fatalf("kubeadm config images list: %v", err)
	}
	var refs []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			refs = append(refs, l)
		}
	}
	if len(refs) < 7 {
		t.Fatalf("kubeadm config images list printed %q", out)
	}
	return refs
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// layoutImages reads an OCI image layout by hand (index -> manifest ->
// config, layers) and returns, per reference, the image's regular files
// (name -> extracted path) from its layers. Every manifest must be for arch.
func layoutImages(t *testing.T, dir, arch string) map[string]map[string]string {
	t.Helper()
	type desc struct {
		MediaType   string            `json:"mediaType"`
		Digest      string            `json:"digest"`
		Annotations map[string]string `json:"annotations"`
	}
	blob := func(d string) string { return filepath.Join(dir, "blobs", strings.Replace(d, ":", "/", 1)) }
	var index struct {
		Manifests []desc `json:"manifests"`
	}
	readJSON(t, filepath.Join(dir, "index.json"), &index)
	out := map[string]map[string]string{}
	for _, m := range index.Manifests {
		ref := m.Annotations["io.containerd.image.name"]
		if ref == "" || m.Annotations["org.opencontainers.image.ref.name"] != ref {
			t.Errorf("manifest %s: annotations %v do not name the image for containerd", m.Digest, m.Annotations)
			continue
		}
		var man struct {
			Config desc   `json:"config"`
			Layers []desc `json:"layers"`
		}
		readJSON(t, blob(m.Digest), &man)
		var cfg struct {
			Architecture string `json:"architecture"`
			OS           string `json:"os"`
		}
		readJSON(t, blob(man.Config.Digest), &cfg)
		if cfg.Architecture != arch || cfg.OS != "linux" {
			t.Errorf("%s: config says %s/%s, want linux/%s", ref, cfg.OS, cfg.Architecture, arch)
		}
		files := map[string]string{}
		exDir := filepath.Join(filepath.Dir(dir), ".test-"+repoBaseOf(ref))
		for _, l := range man.Layers {
			if err := untarExecutables(blob(l.Digest), exDir, files); err != nil {
				t.Errorf("%s: layer %s: %v", ref, l.Digest, err)
			}
		}
		out[ref] = files
	}
	return out
}

// imageConfig is the part of an image config the test checks.
type imageConfig struct {
	Entrypoint   []string
	Cmd          []string
	User         string
	ExposedPorts map[string]*struct{}
}

// layoutConfig reads the config of the image named ref in the layout.
func layoutConfig(t *testing.T, dir, ref string) imageConfig {
	t.Helper()
	blob := func(d string) string { return filepath.Join(dir, "blobs", strings.Replace(d, ":", "/", 1)) }
	var index struct {
		Manifests []struct {
			Digest      string            `json:"digest"`
			Annotations map[string]string `json:"annotations"`
		} `json:"manifests"`
	}
	readJSON(t, filepath.Join(dir, "index.json"), &index)
	for _, m := range index.Manifests {
		if m.Annotations["io.containerd.image.name"] != ref {
			continue
		}
		var man struct {
			Config struct {
				Digest string `json:"digest"`
			} `json:"config"`
		}
		readJSON(t, blob(m.Digest), &man)
		var cfg struct {
			Config imageConfig `json:"config"`
		}
		readJSON(t, blob(man.Config.Digest), &cfg)
		return cfg.Config
	}
	t.Fatalf("%s: not in %s", ref, dir)
	return imageConfig{}
}

// untarExecutables extracts the executable regular files of an uncompressed
// layer tar into dir, recording base name -> path.
func untarExecutables(layer, dir string, files map[string]string) error {
	f, err := os.Open(layer)
	if err != nil {
		return err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if h.Typeflag != tar.TypeReg || h.Mode&0o111 == 0 {
			continue
		}
		p := filepath.Join(dir, filepath.FromSlash(h.Name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		w, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
		if err != nil {
			return err
		}
		if _, err := io.Copy(w, tr); err != nil {
			w.Close()
			return err
		}
		if err := w.Close(); err != nil {
			return err
		}
		files[filepath.Base(h.Name)] = p
	}
}

func repoBaseOf(ref string) string {
	_, base, _, err := images.RefParts(ref)
	if err != nil {
		return ref
	}
	return base
}

// checkSBOMImages: the SBOM next to the images lists every image of the
// layout with its manifest digest as the checksum.
func checkSBOMImages(t *testing.T, arch, layout string) {
	t.Helper()
	var index struct {
		Manifests []struct {
			Digest      string            `json:"digest"`
			Annotations map[string]string `json:"annotations"`
		} `json:"manifests"`
	}
	readJSON(t, filepath.Join(layout, "index.json"), &index)
	var sbom struct {
		Packages []struct {
			SPDXID    string `json:"SPDXID"`
			Name      string `json:"name"`
			Checksums []struct {
				Value string `json:"checksumValue"`
			} `json:"checksums"`
		} `json:"packages"`
	}
	readJSON(t, filepath.Join(defaultOnce.dir, fmt.Sprintf("default-%s.sbom.spdx.json", defaultVersion)), &sbom)
	listed := map[string]string{}
	for _, p := range sbom.Packages {
		if strings.HasPrefix(p.SPDXID, "SPDXRef-oci-image-") && strings.HasSuffix(p.SPDXID, "-"+arch) && len(p.Checksums) == 1 {
			listed[p.Name] = "sha256:" + p.Checksums[0].Value
		}
	}
	for _, m := range index.Manifests {
		ref := m.Annotations["io.containerd.image.name"]
		if listed[ref] != m.Digest {
			t.Errorf("SBOM lists image %s with digest %q, the layout has %s", ref[strings.LastIndex(ref, "/")+1:], listed[ref], m.Digest)
		}
	}
}
