package images

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/kilnproject/kiln/builder/components"
	"github.com/kilnproject/kiln/builder/debian"
	"github.com/kilnproject/kiln/internal/testdeb"
)

// realK8sVersion is the pinned Kubernetes release kubeadm is asked about.
const realK8sVersion = "v1.37.2"

// TestRealComponents is the end-to-end check with the real binaries: the
// host's kubeadm v1.37.2 lists the images, every one of them has a recipe,
// the images are built for amd64 and arm64 from the pinned components and
// Debian packages, skopeo reads each, and on the host's architecture each
// image is unpacked and its programs run from the unpacked root the way the
// manifests call them (by name on the image's PATH, or by the entrypoint).
//
// It reads the components from KILN_COMPONENTS_CACHE (see
// builder/components' TestBuildAll) and is skipped without it: building
// Kubernetes from scratch takes tens of minutes.
func TestRealComponents(t *testing.T) {
	if testing.Short() || os.Getenv("KILN_OFFLINE") == "1" {
		t.Skip("needs the built components and the Debian mirror (skipped by -short or KILN_OFFLINE=1)")
	}
	cache := os.Getenv("KILN_COMPONENTS_CACHE")
	if cache == "" {
		t.Skip("set KILN_COMPONENTS_CACHE to a builder/components cache holding the pinned binaries")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	build := func(arch string, names []string) map[string]components.Output {
		t.Helper()
		outs, err := components.Build(ctx, components.Options{ComponentsDir: "../../components", Arch: arch, CacheDir: cache, Names: names, Log: t.Logf})
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]components.Output{}
		for _, o := range outs {
			m[o.Name] = o
		}
		return m
	}
	kubeadm := build(runtime.GOARCH, []string{"kubeadm"})["kubeadm"].Path
	refs, err := KubeadmList(ctx, kubeadm, realK8sVersion)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("kubeadm %s lists %q", realK8sVersion, refs)
	addons, err := Addons(refs)
	if err != nil {
		t.Fatal(err)
	}
	all := append(append([]string(nil), refs...), addons...)
	names, err := Binaries(all) // every listed image has a recipe
	if err != nil {
		t.Fatal(err)
	}
	suites, err := debian.HostSuites()
	if err != nil {
		t.Fatal(err)
	}
	for _, arch := range []string{"amd64", "arm64"} {
		t.Run(arch, func(t *testing.T) {
			outs := build(arch, names)
			bins := map[string]string{}
			for n, o := range outs {
				bins[n] = o.Path
			}
			checkTagsMatchComponents(t, all, outs)
			o := Options{
				Arch:     arch,
				Refs:     all,
				Binaries: bins,
				Debian:   &debian.Source{Mirrors: suites, CacheDir: filepath.Join(testdeb.CacheDir, "debian")},
				Epoch:    testEpoch,
				Dir:      filepath.Join(t.TempDir(), "images"),
			}
			start := time.Now()
			res, err := Build(ctx, o)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("built %d images for %s in %s", len(res), arch, time.Since(start).Round(time.Millisecond))
			var total int64
			for _, r := range res {
				t.Logf("  %-60s %s %7.1f MiB", r.Ref, r.Digest[:19], float64(r.Size)/(1<<20))
				total += r.Size
			}
			t.Logf("  images: %.1f MiB; layout directory: %.1f MiB (the base layer is stored once)", float64(total)/(1<<20), float64(dirSize(t, o.Dir))/(1<<20))
			checkSkopeo(t, o.Dir, res, arch)
			if arch == runtime.GOARCH {
				runImages(t, o.Dir, res)
			}
		})
	}
}

// TestAddonVersionsPinned: the addon tags are the versions the components
// table builds (TestRealComponents checks the binaries themselves).
func TestAddonVersionsPinned(t *testing.T) {
	want := map[string]string{"metrics-server": MetricsServerVersion, "probe": ProbeVersion}
	for _, c := range components.Table {
		if v, ok := want[c.Name]; ok {
			if c.Version != v {
				t.Errorf("components.Table pins %s %s, the image tag is %s", c.Name, c.Version, v)
			}
			delete(want, c.Name)
		}
	}
	for name := range want {
		t.Errorf("components.Table has no %s", name)
	}
}

// checkTagsMatchComponents: the images carry the versions kubeadm asks
// for (etcd "3.7.0-0" holds etcd v3.7.0, coredns v1.14.6 holds CoreDNS
// v1.14.6, the control plane tags are the Kubernetes version).
func checkTagsMatchComponents(t *testing.T, refs []string, outs map[string]components.Output) {
	t.Helper()
	for _, ref := range refs {
		tag, err := parseTag(ref)
		if err != nil {
			t.Fatal(err)
		}
		r := recipes[repoBase(tag)]
		for _, f := range r.files {
			v := outs[f.binary].Version
			if f.binary == "pause" || v == "" {
				continue // our own code: the tag is kubeadm's choice
			}
			if got := tag.TagStr(); got != v && !strings.HasPrefix("v"+got, v+"-") {
				t.Errorf("%s: binary %s is version %s", ref, f.binary, v)
			}
		}
	}
}

// runImages unpacks each image and runs its programs chrooted in it.
func runImages(t *testing.T, dir string, res []Image) {
	t.Helper()
	needTool(t, "umoci", "umoci")
	checks := map[string][][]string{ // by repository basename: command lines and wanted output
		"kube-apiserver":          {{"kube-apiserver", "--version"}, {"Kubernetes " + realK8sVersion}},
		"kube-controller-manager": {{"kube-controller-manager", "--version"}, {"Kubernetes " + realK8sVersion}},
		"kube-scheduler":          {{"kube-scheduler", "--version"}, {"Kubernetes " + realK8sVersion}},
		"kube-proxy":              {{"/usr/local/bin/kube-proxy", "--version"}, {"Kubernetes " + realK8sVersion}},
		"etcd":                    {{"etcd", "--version"}, {"etcd Version: 3.7.0"}},
		"coredns":                 {{"/coredns", "-version"}, {"CoreDNS-1.14.6"}},
		"metrics-server":          {{"/metrics-server", "--version"}, {"v0.9.0"}},
		"kiln-probe":              {{"/kiln-probe", "version"}, {"kiln-probe " + ProbeVersion}},
	}
	for _, r := range res {
		bundle := filepath.Join(t.TempDir(), "bundle")
		if out, err := exec.Command("umoci", "--log", "error", "unpack", "--rootless", "--image", dir+":"+r.Ref, bundle).CombinedOutput(); err != nil {
			t.Fatalf("umoci unpack %s: %v\n%s", r.Ref, err, out)
		}
		rootfs := filepath.Join(bundle, "rootfs")
		var spec struct{ Process struct{ Env []string } }
		raw, err := os.ReadFile(filepath.Join(bundle, "config.json"))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(raw, &spec); err != nil {
			t.Fatal(err)
		}
		tag, _ := parseTag(r.Ref)
		c, ok := checks[repoBase(tag)]
		if !ok {
			continue // pause: runs until signalled
		}
		// The image's PATH resolves the bare names.
		out, err := inRoot(rootfs, spec.Process.Env, c[0]...)
		if err != nil || !strings.Contains(string(out), c[1][0]) {
			t.Errorf("%s: %s: %v\n%s", r.Ref, strings.Join(c[0], " "), err, out)
		}
	}
}

func dirSize(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			n += fi.Size()
		}
		return err
	})
	return n
}
