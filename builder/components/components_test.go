package components

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// componentsDir is the repo's components/ seen from this package.
const componentsDir = "../../components"

func TestTableValid(t *testing.T) {
	names := map[string]bool{}
	for ci := range Table {
		c := &Table[ci]
		dir := filepath.Join(componentsDir, c.Name)
		if _, err := os.Stat(filepath.Join(dir, "go.sum")); err != nil {
			t.Errorf("%s: %v", c.Name, err)
		}
		groupExe := map[string]string{}
		for _, b := range c.Binaries {
			if names[b.Name] {
				t.Errorf("binary name %s used twice", b.Name)
			}
			names[b.Name] = true
			mod, gosum, err := readModule(dir, c, b)
			if err != nil {
				t.Errorf("%s/%s: %v", c.Name, b.Name, err)
				continue
			}
			if b.Module != mod.module && sumOf(gosum, b.Module, c.Version) == "" {
				t.Errorf("%s/go.sum: no digest of %s %s", dir, b.Module, c.Version)
			}
			if b.Module == mod.module && b.Module != PauseModule && b.Module != BootstrapModule && b.Module != ProbeModule {
				t.Errorf("%s: only pause, bootstrap and probe are our own modules, %s is not", c.Name, b.Module)
			}
			for _, st := range b.Stamps {
				if !stampRE.MatchString(st) {
					t.Errorf("%s: stamp %q is not importpath.name=value without spaces or quotes", b.Name, st)
				}
			}
			if len(b.CLibs) > 0 && !b.CGO {
				t.Errorf("%s: C libraries without cgo", b.Name)
			}
			// Binaries built by one go build call must not share a default name.
			id := strings.Join(buildArgs(b, b.Stamps), " ")
			if prev, ok := groupExe[exeName(b.Package)+id]; ok {
				t.Errorf("%s and %s would both be written as %s", prev, b.Name, exeName(b.Package))
			}
			groupExe[exeName(b.Package)+id] = b.Name
		}
	}
	for _, want := range []string{"kubelet", "kubectl", "kubeadm", "kube-apiserver", "kube-controller-manager",
		"kube-scheduler", "kube-proxy", "etcd", "etcdctl", "containerd", "containerd-shim-runc-v2", "runc",
		"bridge", "host-local", "loopback", "portmap", "coredns", "crictl", "metrics-server", "pause", "ctr", "kiln-bootstrap", "kiln-probe"} {
		if !names[want] {
			t.Errorf("table has no %s", want)
		}
	}
}

// TestVersionProbesCoverTable: every binary the table builds has a version
// probe (TestBuildAll and the image tests run them), and no probe is stale.
func TestVersionProbesCoverTable(t *testing.T) {
	inTable := map[string]bool{}
	for _, c := range Table {
		for _, b := range c.Binaries {
			inTable[b.Name] = true
			if _, ok := VersionProbes[b.Name]; !ok {
				t.Errorf("%s/%s: no entry in VersionProbes", c.Name, b.Name)
			}
		}
	}
	for name := range VersionProbes {
		if !inTable[name] {
			t.Errorf("VersionProbes[%q]: no such binary in Table", name)
		}
	}
}

func TestReadModuleErrors(t *testing.T) {
	dir := t.TempDir()
	comp := &Component{Name: "x", Version: "v1.2.3"}
	bin := Binary{Name: "x", Module: "example.com/x", Package: "example.com/x/cmd/x"}
	write := func(gomod string) {
		os.WriteFile(filepath.Join(dir, "go.mod"), []byte(gomod), 0o644)
		os.WriteFile(filepath.Join(dir, "go.sum"), nil, 0o644)
	}
	for _, tc := range []struct{ gomod, want string }{
		{"module m\n\ntool example.com/x/cmd/x\n", "require: example.com/x is missing (want v1.2.3)"},
		{"module m\nrequire example.com/x v1.2.2\ntool example.com/x/cmd/x\n", "require: example.com/x is v1.2.2, the table pins v1.2.3"},
		{"module m\nrequire (\n\texample.com/x v1.2.3 // indirect\n)\n", "tool: example.com/x/cmd/x is missing"},
		{"require example.com/x\n", "go.mod:1: require: want module and version"},
	} {
		write(tc.gomod)
		_, _, err := readModule(dir, comp, bin)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "go.mod") {
			t.Errorf("go.mod %q: error %v, want one naming go.mod and containing %q", tc.gomod, err, tc.want)
		}
	}
	write("module m\nrequire (\n\texample.com/x v1.2.3 // indirect\n)\ntool (\n\texample.com/x/cmd/x\n)\n")
	if _, _, err := readModule(dir, comp, bin); err != nil {
		t.Errorf("valid go.mod: %v", err)
	}
}

func TestCacheKey(t *testing.T) {
	tc := toolchain{goVersion: "go1.26.8", cc: "gcc", ccDigest: "cc1", libs: map[string]string{"c": "c1", "seccomp": "s1"}}
	bin := Binary{Name: "x", Module: "example.com/x", Package: "example.com/x", Stamps: []string{"main.v=1"}, Tags: []string{"a"}}
	key := func(b Binary, arch, dir string, tc toolchain) string {
		k, _ := cacheKey(b, buildArgs(b, b.Stamps), arch, dir, tc)
		return k
	}
	base := key(bin, "amd64", "d1", tc)
	if again := key(bin, "amd64", "d1", tc); again != base {
		t.Fatalf("same inputs, different keys: %s %s", base, again)
	}
	variants := map[string]string{}
	add := func(name, k string) {
		if k == base {
			t.Errorf("%s: key unchanged", name)
		}
		for other, ok := range variants {
			if ok == k {
				t.Errorf("%s and %s share a key", name, other)
			}
		}
		variants[name] = k
	}
	add("arch", key(bin, "arm64", "d1", tc))
	add("component dir (go.mod, go.sum)", key(bin, "amd64", "d2", tc))
	b2 := bin
	b2.Tags = []string{"b"}
	add("tags", key(b2, "amd64", "d1", tc))
	b2 = bin
	b2.Stamps = []string{"main.v=2"}
	add("ldflags", key(b2, "amd64", "d1", tc))
	b2 = bin
	b2.Package = "example.com/x/cmd/y"
	add("package", key(b2, "amd64", "d1", tc))
	tc2 := tc
	tc2.goVersion = "go1.26.9"
	add("go version", key(bin, "amd64", "d1", tc2))

	cg := bin
	cg.CGO, cg.CLibs = true, []string{"seccomp"}
	cgBase := key(cg, "amd64", "d1", tc)
	add("cgo", cgBase)
	tc2 = tc
	tc2.cc = "aarch64-linux-gnu-gcc"
	if key(cg, "amd64", "d1", tc2) == cgBase {
		t.Error("C compiler name: key unchanged")
	}
	tc2 = tc
	tc2.ccDigest = "cc2"
	if key(cg, "amd64", "d1", tc2) == cgBase {
		t.Error("C compiler binary: key unchanged")
	}
	tc2 = tc
	tc2.libs = map[string]string{"c": "c1", "seccomp": "s2"}
	if key(cg, "amd64", "d1", tc2) == cgBase {
		t.Error("libseccomp.a: key unchanged")
	}
	// A pure Go build does not depend on the C toolchain.
	if key(bin, "amd64", "d1", tc2) != base {
		t.Error("pure Go key depends on the C toolchain")
	}
}

func TestUnknownNames(t *testing.T) {
	cache := filepath.Join(t.TempDir(), "cache")
	for _, tc := range []struct{ name, want string }{
		{"kubelett", `unknown component "kubelett"`},
		{"etcd@v3.6.0", "etcd@v3.6.0: version v3.6.0 is not available: etcd is pinned to v3.7.0"},
		{"kubernetes@v1.36.0", "kubernetes@v1.36.0: version v1.36.0 is not available"},
	} {
		_, err := Build(context.Background(), Options{ComponentsDir: componentsDir, Arch: "amd64", CacheDir: cache, Names: []string{"pause", tc.name}})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		}
	}
	_, err := Build(context.Background(), Options{ComponentsDir: componentsDir, Arch: "riscv64", CacheDir: cache})
	if err == nil || !strings.Contains(err.Error(), `"riscv64"`) {
		t.Errorf("arch riscv64: error %v", err)
	}
	if _, err := os.Stat(cache); !os.IsNotExist(err) {
		t.Errorf("a failed selection left %s behind", cache)
	}
}

func TestSelect(t *testing.T) {
	for _, tc := range []struct {
		names []string
		want  string
	}{
		{[]string{"etcd"}, "etcd"}, // the binary, not the whole component
		{[]string{"etcdctl", "etcd@v3.7.0"}, "etcd etcdctl"},
		{[]string{"cni-plugins"}, "bridge host-local loopback portmap"},
		{[]string{"pause", "kubernetes@v1.37.2"}, "kubelet kubectl kubeadm kube-apiserver kube-controller-manager kube-scheduler kube-proxy pause"},
	} {
		ws, err := selectBinaries(tc.names)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, w := range ws {
			got = append(got, w.bin.Name)
		}
		if strings.Join(got, " ") != tc.want {
			t.Errorf("%v: got %v, want %s", tc.names, got, tc.want)
		}
	}
	all, _ := selectBinaries(nil)
	if len(all) != 23 {
		t.Errorf("all: %d binaries, want 23", len(all))
	}
}

func TestExeName(t *testing.T) {
	for pkg, want := range map[string]string{
		"go.etcd.io/etcd/server/v3":           "server",
		"go.etcd.io/etcd/etcdctl/v3":          "etcdctl",
		"k8s.io/kubernetes/cmd/kubelet":       "kubelet",
		"github.com/opencontainers/runc":      "runc",
		"github.com/containerd/containerd/v2": "containerd",
		"example.com/vx":                      "vx",
	} {
		if got := exeName(pkg); got != want {
			t.Errorf("exeName(%s) = %s, want %s", pkg, got, want)
		}
	}
}

// goRecorder puts a go command on PATH that logs each call and runs the
// real one; GOROOT/VERSION is copied so the toolchain fingerprint matches.
func goRecorder(t *testing.T) (logFile string) {
	t.Helper()
	real, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	realGo, _ := filepath.EvalSymlinks(real)
	root := t.TempDir()
	logFile = filepath.Join(root, "calls")
	os.MkdirAll(filepath.Join(root, "bin"), 0o755)
	script := "#!/bin/sh\necho \"$@\" >> " + logFile + "\nexec " + realGo + " \"$@\"\n"
	if err := os.WriteFile(filepath.Join(root, "bin", "go"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	ver, err := os.ReadFile(filepath.Join(filepath.Dir(filepath.Dir(realGo)), "VERSION"))
	if err != nil {
		t.Skip("GOROOT has no VERSION file")
	}
	os.WriteFile(filepath.Join(root, "VERSION"), ver, 0o644)
	t.Setenv("PATH", filepath.Join(root, "bin")+string(os.PathListSeparator)+os.Getenv("PATH"))
	return logFile
}

func calls(t *testing.T, logFile string) []string {
	data, err := os.ReadFile(logFile)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(data)), "\n")
}

// TestBuildPause builds our pause binary for real (seconds, no network):
// version stamp, cache hit without any go call (offline), reproducibility.
func TestBuildPause(t *testing.T) {
	logFile := goRecorder(t)
	cacheA := t.TempDir()
	opts := Options{ComponentsDir: componentsDir, Arch: runtime.GOARCH, CacheDir: cacheA, Names: []string{"pause"}, Log: t.Logf}
	outs, err := Build(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(outs) != 1 || outs[0].Name != "pause" || outs[0].Cached || outs[0].Version != "v1.0.0" || outs[0].Module != PauseModule {
		t.Fatalf("outputs: %+v", outs)
	}
	if c := calls(t, logFile); len(c) != 1 || !strings.HasPrefix(c[0], "build -trimpath -buildvcs=false") {
		t.Fatalf("go calls: %q, want one go build", c)
	}
	out, err := exec.Command(outs[0].Path, "-v").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "pause v1.0.0" {
		t.Fatalf("pause -v: %q %v", out, err)
	}
	if st, _ := os.Stat(filepath.Join(cacheA, ".")); st == nil {
		t.Fatal("no cache dir")
	}
	if leftovers, _ := filepath.Glob(filepath.Join(cacheA, ".*-*")); len(leftovers) > 0 {
		t.Errorf("temp files left in the cache: %v", leftovers)
	}

	// Cached: no go call at all, even with the module proxy off.
	t.Setenv("GOPROXY", "off")
	t.Setenv("GOFLAGS", "-mod=readonly")
	again, err := Build(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if !again[0].Cached || again[0].Path != outs[0].Path {
		t.Errorf("second build: %+v, want the cached %s", again[0], outs[0].Path)
	}
	if c := calls(t, logFile); len(c) != 1 {
		t.Errorf("go was called for a cached build: %q", c[1:])
	}

	// Another cache dir: built again, byte-identical.
	opts.CacheDir = t.TempDir()
	other, err := Build(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(outs[0].Path)
	b, _ := os.ReadFile(other[0].Path)
	if other[0].Cached || !bytes.Equal(a, b) {
		t.Errorf("rebuild in %s: cached=%v, identical=%v", opts.CacheDir, other[0].Cached, bytes.Equal(a, b))
	}
}
