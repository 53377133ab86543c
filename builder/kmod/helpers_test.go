package kmod

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// cacheDir holds Debian packages the tests download once (shared with the
// other builder tests that need a real kernel).
const cacheDir = "/tmp/kiln-test-cache"

func requireTool(t testing.TB, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is required by this test but is not installed (apt-get install %s)", name, pkg)
	}
	return p
}

func readFile(t testing.TB, p, pkg string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (install package %s)", err, pkg)
	}
	return b
}

func run(t testing.TB, dir, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// debPackage downloads a Debian package with apt-get into cacheDir, extracts
// it with dpkg-deb and returns the extraction directory. arch is a dpkg
// architecture; a foreign one is added to dpkg first.
func debPackage(t testing.TB, pkg, arch string) string {
	t.Helper()
	requireTool(t, "apt-get", "apt")
	requireTool(t, "dpkg-deb", "dpkg")
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		t.Fatal(err)
	}
	// Serialise with other test processes using the same cache.
	lock, err := os.OpenFile(filepath.Join(cacheDir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(cacheDir, "x-"+pkg+"_"+arch)
	if _, err := os.Stat(filepath.Join(dest, ".complete")); err == nil {
		return dest
	}
	native := strings.TrimSpace(run(t, "", "dpkg", "--print-architecture"))
	spec := pkg
	if arch != native {
		spec = pkg + ":" + arch
		if !strings.Contains(run(t, "", "dpkg", "--print-foreign-architectures"), arch) {
			run(t, "", "dpkg", "--add-architecture", arch)
			run(t, "", "apt-get", "update", "-q")
		}
	}
	debs, _ := filepath.Glob(filepath.Join(cacheDir, pkg+"_*_"+arch+".deb"))
	if len(debs) == 0 {
		run(t, cacheDir, "apt-get", "download", "-q", spec)
		debs, _ = filepath.Glob(filepath.Join(cacheDir, pkg+"_*_"+arch+".deb"))
		if len(debs) == 0 {
			t.Fatalf("apt-get download %s left no %s_*_%s.deb in %s", spec, pkg, arch, cacheDir)
		}
	}
	tmp := dest + ".tmp"
	os.RemoveAll(tmp)
	run(t, "", "dpkg-deb", "-x", debs[len(debs)-1], tmp)
	os.RemoveAll(dest)
	if err := os.Rename(tmp, dest); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dest, ".complete"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return dest
}

// debianKernel returns the extracted current Debian kernel package for a
// Go architecture (amd64, arm64) and its release string.
func debianKernel(t testing.TB, goarch string) (dir, kver string) {
	t.Helper()
	meta := "linux-image-" + goarch
	spec := meta
	if goarch != strings.TrimSpace(run(t, "", "dpkg", "--print-architecture")) {
		spec += ":" + goarch
		debPackage(t, "systemd-boot-efi", goarch) // makes sure the foreign arch is known to apt
	}
	out := run(t, "", "apt-cache", "depends", spec)
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
	return debPackage(t, pkg, goarch), strings.TrimPrefix(pkg, "linux-image-")
}
