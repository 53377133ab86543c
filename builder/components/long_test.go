package components

import (
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

var elfMachine = map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}

// TestBuildAll builds every component for amd64 and arm64 (a cold build
// takes tens of minutes on two cores), checks each ELF file and runs the
// host's binaries with their version flag. KILN_COMPONENTS_CACHE keeps the
// outputs between runs.
func TestBuildAll(t *testing.T) {
	if testing.Short() {
		t.Skip("builds every component for two architectures")
	}
	cache := os.Getenv("KILN_COMPONENTS_CACHE")
	if cache == "" {
		cache = t.TempDir()
	}
	for _, arch := range []string{"amd64", "arm64"} {
		t0 := time.Now()
		outs, err := Build(context.Background(), Options{ComponentsDir: componentsDir, Arch: arch, CacheDir: cache, Log: t.Logf})
		if err != nil {
			t.Fatalf("%s: %v", arch, err)
		}
		t.Logf("%s: %d binaries in %s", arch, len(outs), time.Since(t0).Round(time.Millisecond))
		if len(outs) != len(VersionProbes) {
			t.Errorf("%s: %d outputs, want %d (one per version probe)", arch, len(outs), len(VersionProbes))
		}
		for _, o := range outs {
			st, err := os.Stat(o.Path)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s %-24s %6.1f MiB  %s %s", arch, o.Name, float64(st.Size())/(1<<20), o.Module, o.Version)
			checkStaticELF(t, o, arch)
			if arch == runtime.GOARCH {
				checkVersion(t, o)
			}
		}
	}
}

// checkStaticELF: right machine, no interpreter and no shared libraries;
// runc is a static PIE (ET_DYN without PT_INTERP), the rest ET_EXEC.
func checkStaticELF(t *testing.T, o Output, arch string) {
	t.Helper()
	f, err := elf.Open(o.Path)
	if err != nil {
		t.Errorf("%s: %v", o.Name, err)
		return
	}
	defer f.Close()
	if f.Machine != elfMachine[arch] {
		t.Errorf("%s/%s: machine %v, want %v", arch, o.Name, f.Machine, elfMachine[arch])
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("%s/%s: has PT_INTERP (dynamically linked)", arch, o.Name)
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("%s/%s: needs shared libraries %v", arch, o.Name, libs)
	}
	want := elf.ET_EXEC
	if o.Name == "runc" {
		want = elf.ET_DYN
	}
	if f.Type != want {
		t.Errorf("%s/%s: ELF type %v, want %v", arch, o.Name, f.Type, want)
	}
}

func checkVersion(t *testing.T, o Output) {
	t.Helper()
	vc, ok := VersionProbes[o.Name]
	if !ok {
		t.Errorf("no version probe for %s", o.Name)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, o.Path, vc.Args...).CombinedOutput()
	if err != nil && !vc.ExitNonZero {
		t.Errorf("%s %v: %v\n%s", o.Name, vc.Args, err, out)
		return
	}
	for _, w := range vc.Want {
		if !bytes.Contains(out, []byte(w)) {
			t.Errorf("%s %v printed %q, want %q in it", o.Name, vc.Args, out, w)
		}
	}
	if o.Name == "kubeadm" && strings.TrimSpace(string(out)) != "v1.37.2" {
		t.Errorf("kubeadm version -o short = %q, want v1.37.2", out)
	}
	if o.Component == "cni-plugins" {
		checkCNIVersion(t, o)
	}
}

// checkCNIVersion runs a plugin the way a runtime asks for its version.
func checkCNIVersion(t *testing.T, o Output) {
	cmd := exec.Command(o.Path)
	cmd.Env = append(os.Environ(), "CNI_COMMAND=VERSION")
	cmd.Stdin = strings.NewReader(`{"cniVersion":"1.0.0"}`)
	out, err := cmd.Output()
	if err != nil {
		t.Errorf("%s CNI_COMMAND=VERSION: %v", o.Name, err)
		return
	}
	var v struct {
		CNIVersion        string   `json:"cniVersion"`
		SupportedVersions []string `json:"supportedVersions"`
	}
	if err := json.Unmarshal(out, &v); err != nil || len(v.SupportedVersions) == 0 {
		t.Errorf("%s CNI_COMMAND=VERSION printed %q (%v)", o.Name, out, err)
	}
}

// TestReproducibleCGO builds runc (cgo, static-pie, the riskiest for
// reproducibility) and the CNI plugins twice, each time into a new cache
// and with an empty Go build cache, and compares the bytes.
func TestReproducibleCGO(t *testing.T) {
	if testing.Short() {
		t.Skip("builds runc and the CNI plugins four times")
	}
	for _, arch := range []string{"amd64", "arm64"} {
		var first []Output
		for i := 0; i < 2; i++ {
			t.Setenv("GOCACHE", filepath.Join(t.TempDir(), "gocache"))
			outs, err := Build(context.Background(), Options{ComponentsDir: componentsDir, Arch: arch,
				CacheDir: t.TempDir(), Names: []string{"runc", "cni-plugins"}})
			if err != nil {
				t.Fatal(err)
			}
			if i == 0 {
				first = outs
				continue
			}
			for j, o := range outs {
				a, _ := os.ReadFile(first[j].Path)
				b, _ := os.ReadFile(o.Path)
				if len(a) == 0 || !bytes.Equal(a, b) {
					t.Errorf("%s/%s: two builds differ (%d and %d bytes)", arch, o.Name, len(a), len(b))
				}
			}
		}
	}
}
