package qemu_test

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// These tests run the real kiln binary the boot tests use, against the
// inputs TestMain already fetched into the cache.

func kiln(t *testing.T, env []string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(kilnBin, args...)
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestReproducible: a second build of the same profile, into another
// directory and offline, gives byte-identical files (SHA256SUMS equal).
func TestReproducible(t *testing.T) {
	dir := t.TempDir()
	if out, err := kiln(t, nil, "build", "-p", "profiles/minimal.yaml", "--offline", "-o", dir); err != nil {
		t.Fatalf("second build: %v\n%s", err, out)
	}
	a, err := os.ReadFile(filepath.Join(outDir, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Fatalf("builds differ:\nfirst:\n%s\nsecond:\n%s", a, b)
	}
	if n := strings.Count(string(a), "\n"); n < 20 {
		t.Fatalf("only %d artifacts in SHA256SUMS", n)
	}
	if out, err := exec.Command("sh", "-c", "cd "+dir+" && sha256sum -c --quiet SHA256SUMS").CombinedOutput(); err != nil {
		t.Fatalf("sha256sum -c: %v\n%s", err, out)
	}
}

// TestRootless: an unprivileged user with no access to /dev/loop* builds
// every format (from a copy of the verified cache, offline).
func TestRootless(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to switch to an unprivileged user")
	}
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Fatal("setpriv missing (Debian package util-linux)")
	}
	work, err := os.MkdirTemp("", "kiln-rootless-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(work)
	cache := filepath.Join(work, "cache")
	initd := filepath.Join(work, "initd")
	src, _ := kilnCacheDir()
	steps := [][]string{
		{"cp", "-a", src, cache},
		{"go", "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w -buildid=", "-o", initd, "./cmd/initd"},
		{"cp", kilnBin, filepath.Join(work, "kiln")},
		{"cp", "-a", filepath.Join(repoRoot, "profiles"), filepath.Join(work, "profiles")},
		{"chown", "-R", "65534:65534", work},
		{"chmod", "755", work},
	}
	for _, s := range steps {
		c := exec.Command(s[0], s[1:]...)
		c.Dir = repoRoot
		c.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := c.CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", s, err, out)
		}
	}
	out := filepath.Join(work, "out")
	cmd := exec.Command("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--no-new-privs",
		filepath.Join(work, "kiln"), "build", "-p", filepath.Join(work, "profiles/minimal.yaml"), "--arch", "amd64",
		"--offline", "--cache", cache, "--initd", "amd64="+initd, "-o", out)
	cmd.Dir = work
	cmd.Env = []string{"HOME=" + work, "PATH=/usr/bin:/bin"}
	if o, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build as nobody: %v\n%s", err, o)
	}
	// The point of the test: the user that built everything has no loop
	// devices. If this host grants them, the test proves nothing.
	probe := exec.Command("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "sh", "-c", "exec 3<>/dev/loop-control")
	if probe.Run() == nil {
		t.Fatal("uid 65534 can open /dev/loop-control on this host, so this build does not show that kiln needs no loop devices")
	}
	want, _ := os.ReadFile(filepath.Join(outDir, "SHA256SUMS"))
	got, err := os.ReadFile(filepath.Join(out, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(got)), "\n") {
		if strings.Contains(line, "amd64") && !strings.Contains(string(want), line) {
			t.Errorf("rootless artifact differs from root build: %s", line)
		}
	}
}

func kilnCacheDir() (string, error) {
	if d := os.Getenv("KILN_CACHE_DIR"); d != "" {
		return d, nil
	}
	d, err := os.UserCacheDir()
	return filepath.Join(d, "kiln"), err
}

// TestBadInput: each mistake gives a one-line error naming the thing, a
// non-zero exit, and no output files.
func TestBadInput(t *testing.T) {
	good, err := os.ReadFile(filepath.Join(repoRoot, "profiles/minimal.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	mk := func(t *testing.T, edit func(string) string) string {
		p := filepath.Join(t.TempDir(), "p.yaml")
		if err := os.WriteFile(p, []byte(edit(string(good))), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ro := filepath.Join(t.TempDir(), "ro")
	os.MkdirAll(ro, 0o555)
	cases := []struct {
		name string
		args func(t *testing.T) []string
		want string
	}{
		{"missing kernel", func(t *testing.T) []string {
			return []string{"-p", mk(t, func(s string) string {
				return strings.Replace(s, "linux-image-6.1.0-56-amd64", "linux-image-9.9.9-1-amd64", 1)
			}), "--arch", "amd64"}
		}, "linux-image-9.9.9-1-amd64"},
		{"unknown component version", func(t *testing.T) []string {
			return []string{"-p", mk(t, func(s string) string {
				return strings.Replace(s, "packages: [e2fsprogs]", "packages: [e2fsprogs]\ncomponents: [etcd@v3.6.0]", 1)
			}), "--arch", "amd64"}
		}, "version v3.6.0 is not available: etcd is pinned to v3.7.0"},
		{"unknown component", func(t *testing.T) []string {
			return []string{"-p", mk(t, func(s string) string {
				return strings.Replace(s, "packages: [e2fsprogs]", "packages: [e2fsprogs]\ncomponents: [kubelett]", 1)
			}), "--arch", "amd64"}
		}, `components.0: unknown component "kubelett"`},
		{"unknown format", func(t *testing.T) []string {
			return []string{"-p", "profiles/minimal.yaml", "--format", "iso,floppy"}
		}, `unknown format "floppy"`},
		{"size too small", func(t *testing.T) []string {
			return []string{"-p", mk(t, func(s string) string {
				return strings.Replace(s, "  state: 16MiB", "  state: 16MiB\n  sys: 1MiB", 1)
			}), "--arch", "amd64", "--format", "raw"}
		}, "disk.sys: 1MiB is too small for the system image"},
		{"unwritable output", func(t *testing.T) []string {
			return []string{"-p", "profiles/minimal.yaml", "--arch", "amd64", "-o", filepath.Join(ro, "sub", "out")}
		}, "output directory"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			args := append([]string{"build", "--offline"}, c.args(t)...)
			dir := ""
			if !containsArg(args, "-o") {
				dir = filepath.Join(t.TempDir(), "out")
				args = append(args, "-o", dir)
			}
			env := []string{}
			if c.name == "unwritable output" {
				// root can write anywhere: drop to nobody for this one.
				cmd := exec.Command("setpriv", append([]string{"--reuid=65534", "--regid=65534", "--clear-groups", kilnBin}, args...)...)
				cmd.Dir = repoRoot
				cmd.Env = []string{"HOME=/tmp", "PATH=/usr/bin:/bin"}
				out, err := cmd.CombinedOutput()
				checkBad(t, string(out), err, c.want, "")
				return
			}
			out, err := kiln(t, env, args...)
			checkBad(t, out, err, c.want, dir)
		})
	}
}

func checkBad(t *testing.T, out string, err error, want, dir string) {
	t.Helper()
	if err == nil {
		t.Fatalf("build succeeded; output:\n%s", out)
	}
	last := strings.TrimSpace(out)
	if i := strings.LastIndex(last, "\n"); i >= 0 {
		last = last[i+1:]
	}
	if !strings.HasPrefix(last, "kiln: ") || !strings.Contains(last, want) {
		t.Fatalf("last line %q does not name %q; output:\n%s", last, want, out)
	}
	if dir != "" {
		ents, _ := os.ReadDir(dir)
		if len(ents) != 0 {
			var names []string
			for _, e := range ents {
				names = append(names, e.Name())
			}
			t.Fatalf("failed build left files behind: %v", names)
		}
	}
	t.Logf("error: %s", last)
}

func containsArg(args []string, a string) bool {
	for _, x := range args {
		if x == a {
			return true
		}
	}
	return false
}

// TestSBOM: the SPDX document lists the Debian packages with their digests
// and the Go modules compiled into initd.
func TestSBOM(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(outDir, "minimal-"+minimalVersion+".sbom.spdx.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		SPDXVersion string `json:"spdxVersion"`
		Packages    []struct {
			Name      string `json:"name"`
			Version   string `json:"versionInfo"`
			Checksums []struct {
				Algorithm string `json:"algorithm"`
				Value     string `json:"checksumValue"`
			} `json:"checksums"`
		} `json:"packages"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("SBOM is not JSON: %v", err)
	}
	if doc.SPDXVersion != "SPDX-2.3" {
		t.Fatalf("spdxVersion %q", doc.SPDXVersion)
	}
	found := map[string]bool{}
	for _, p := range doc.Packages {
		found[p.Name] = true
		if strings.HasPrefix(p.Name, "linux-image-") && (len(p.Checksums) != 1 || len(p.Checksums[0].Value) != 64) {
			t.Errorf("%s has no SHA256: %+v", p.Name, p.Checksums)
		}
	}
	for _, want := range []string{"linux-image-6.1.0-56-amd64", "linux-image-6.1.0-56-arm64", "systemd-boot-efi", "isolinux", "syslinux", "e2fsprogs", "libc6",
		"initd", "github.com/vishvananda/netlink", "github.com/insomniacslk/dhcp"} {
		if !found[want] {
			t.Errorf("SBOM lacks %s", want)
		}
	}
}

// TestSystemImageModes reads the minimal image's system squashfs with
// unsquashfs and checks the modes that matter for safety: /tmp is
// world-writable with the sticky bit, /root is private.
func TestSystemImageModes(t *testing.T) {
	sqfs := filepath.Join(t.TempDir(), "system.sqfs")
	runTool(t, "xorriso", "-osirrox", "on", "-indev", image("amd64", "iso"), "-extract", "/kiln/system.sqfs", sqfs)
	out := runTool(t, "unsquashfs", "-lls", "-d", "", sqfs, "tmp", "root")
	want := map[string]string{"/tmp": "drwxrwxrwt", "/root": "drwx------"}
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) < 6 {
			continue
		}
		if w, ok := want[f[len(f)-1]]; ok {
			if f[0] != w {
				t.Errorf("%s has mode %s, want %s", f[len(f)-1], f[0], w)
			}
			delete(want, f[len(f)-1])
		}
	}
	if len(want) > 0 {
		t.Errorf("unsquashfs -lls did not list %v:\n%s", want, out)
	}
}
