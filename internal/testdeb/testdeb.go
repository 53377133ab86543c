// Package testdeb is test support for code that needs real Debian packages
// (a kernel, the systemd-boot stub): it fetches them once with apt-get into a
// cache shared by all test processes, unpacks them with dpkg-deb, and fails
// the test with an install hint when a tool or file is missing. Tests only.
package testdeb

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// CacheDir holds the packages the tests download once, and their unpacked
// trees (x-PKG_ARCH).
const CacheDir = "/tmp/kiln-test-cache"

// RequireTool returns the path of tool name, or fails the test (it never
// skips) naming the Debian package pkg to install.
func RequireTool(t testing.TB, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is required by this test but is not installed (apt-get install %s)", name, pkg)
	}
	return p
}

// ReadFile reads p, or fails the test naming the package pkg that ships it.
func ReadFile(t testing.TB, p, pkg string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (install package %s)", err, pkg)
	}
	return b
}

// Run runs name with args in dir ("" for the current one) and returns its
// combined output, failing the test on error.
func Run(t testing.TB, dir, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// Package downloads a Debian package with apt-get into CacheDir, extracts
// it with dpkg-deb and returns the extraction directory. arch is a dpkg
// architecture; a foreign one is added to dpkg first.
func Package(t testing.TB, pkg, arch string) string {
	t.Helper()
	RequireTool(t, "apt-get", "apt")
	RequireTool(t, "dpkg-deb", "dpkg")
	if err := os.MkdirAll(CacheDir, 0o755); err != nil {
		t.Fatal(err)
	}
	// Serialise with other test processes using the same cache.
	lock, err := os.OpenFile(filepath.Join(CacheDir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(CacheDir, "x-"+pkg+"_"+arch)
	if _, err := os.Stat(filepath.Join(dest, ".complete")); err == nil {
		return dest
	}
	native := strings.TrimSpace(Run(t, "", "dpkg", "--print-architecture"))
	spec := pkg
	if arch != native {
		spec = pkg + ":" + arch
		if !strings.Contains(Run(t, "", "dpkg", "--print-foreign-architectures"), arch) {
			Run(t, "", "dpkg", "--add-architecture", arch)
			Run(t, "", "apt-get", "update", "-q")
		}
	}
	debs, _ := filepath.Glob(filepath.Join(CacheDir, pkg+"_*_"+arch+".deb"))
	if len(debs) == 0 {
		Run(t, CacheDir, "apt-get", "download", "-q", spec)
		debs, _ = filepath.Glob(filepath.Join(CacheDir, pkg+"_*_"+arch+".deb"))
		if len(debs) == 0 {
			t.Fatalf("apt-get download %s left no %s_*_%s.deb in %s", spec, pkg, arch, CacheDir)
		}
	}
	tmp := dest + ".tmp"
	os.RemoveAll(tmp)
	Run(t, "", "dpkg-deb", "-x", debs[len(debs)-1], tmp)
	os.RemoveAll(dest)
	if err := os.Rename(tmp, dest); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dest, ".complete"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return dest
}

// Kernel returns the extracted current Debian kernel package for a
// Go architecture (amd64, arm64) and its release string.
func Kernel(t testing.TB, goarch string) (dir, kver string) {
	t.Helper()
	meta := "linux-image-" + goarch
	spec := meta
	if goarch != strings.TrimSpace(Run(t, "", "dpkg", "--print-architecture")) {
		spec += ":" + goarch
		Package(t, "systemd-boot-efi", goarch) // makes sure the foreign arch is known to apt
	}
	out := Run(t, "", "apt-cache", "depends", spec)
	var pkg string
	for _, l := range strings.Split(out, "\n") {
		l = strings.TrimSpace(l)
		if name, ok := strings.CutPrefix(l, "Depends: "); ok && strings.HasPrefix(name, "linux-image-") {
			pkg = strings.TrimSuffix(name, ":"+goarch)
			break
		}
	}
	if pkg == "" {
		t.Fatalf("apt-cache depends %s names no linux-image package:\n%s", spec, out)
	}
	return Package(t, pkg, goarch), strings.TrimPrefix(pkg, "linux-image-")
}
