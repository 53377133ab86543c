package components

import (
	"crypto/sha256"
	"fmt"
	"hash"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
)

// toolchain identifies the compilers a build uses, without running go.
type toolchain struct {
	goCmd     string            // path of the go command
	goVersion string            // first line of GOROOT/VERSION, e.g. go1.26.8
	cc        string            // C compiler for cgo builds ("" when none is needed)
	ccDigest  string            // sha256 of the resolved C compiler driver
	libs      map[string]string // static library name -> sha256 (libc and CLibs)
}

// crossPackages name the Debian packages that provide a cross toolchain.
var crossPackages = map[string]string{"arm64": "gcc-aarch64-linux-gnu", "amd64": "gcc-x86-64-linux-gnu"}

// libPackages name the Debian -dev packages shipping the static libraries.
var libPackages = map[string]string{"c": "libc6-dev", "seccomp": "libseccomp-dev"}

// findToolchain locates go (and, for cgo, the C compiler and static
// libraries for arch) and fingerprints them for the cache key.
func findToolchain(arch string, cgo bool) (toolchain, error) {
	var tc toolchain
	goCmd, err := exec.LookPath("go")
	if err != nil {
		return tc, fmt.Errorf("components: the go command is needed to build components: %w", err)
	}
	tc.goCmd = goCmd
	real, err := filepath.EvalSymlinks(goCmd)
	if err != nil {
		return tc, err
	}
	ver, err := os.ReadFile(filepath.Join(filepath.Dir(filepath.Dir(real)), "VERSION"))
	if err != nil {
		// Distributions without GOROOT/VERSION: ask the go command.
		out, err := exec.Command(goCmd, "env", "GOVERSION").Output()
		if err != nil {
			return tc, fmt.Errorf("components: go version: %w", err)
		}
		ver = out
	}
	tc.goVersion, _, _ = strings.Cut(strings.TrimSpace(string(ver)), "\n")
	if !cgo {
		return tc, nil
	}
	tc.cc = "gcc"
	if arch != runtime.GOARCH {
		tc.cc = arches[arch] + "-gcc"
	}
	ccPath, err := exec.LookPath(tc.cc)
	if err != nil {
		return tc, fmt.Errorf("components: C compiler %s for %s not found (Debian package %s): %w", tc.cc, arch, crossPackages[arch], err)
	}
	if tc.ccDigest, err = fileDigest(ccPath); err != nil {
		return tc, err
	}
	tc.libs = map[string]string{}
	names := []string{"c"}
	for _, t := range Table {
		for _, b := range t.Binaries {
			names = append(names, b.CLibs...)
		}
	}
	for _, name := range names {
		if tc.libs[name] != "" {
			continue
		}
		out, err := exec.Command(ccPath, "-print-file-name=lib"+name+".a").Output()
		p := strings.TrimSpace(string(out))
		if err != nil || !filepath.IsAbs(p) {
			return tc, fmt.Errorf("components: lib%s.a for %s not found by %s (Debian package %s:%s)", name, arch, tc.cc, libPackages[name], arch)
		}
		if tc.libs[name], err = fileDigest(p); err != nil {
			return tc, err
		}
	}
	return tc, nil
}

// cacheKey digests everything that determines a binary's bytes; the recipe
// is the same text in readable form, stored next to the cached binary.
func cacheKey(b Binary, args []string, arch, dirHash string, tc toolchain) (key, recipe string) {
	var r strings.Builder
	fmt.Fprintf(&r, "kiln components cache v1\n")
	fmt.Fprintf(&r, "go %s\n", tc.goVersion)
	fmt.Fprintf(&r, "component-dir %s\n", dirHash)
	fmt.Fprintf(&r, "package %s\n", b.Package)
	fmt.Fprintf(&r, "output %s\n", b.Name)
	fmt.Fprintf(&r, "args %q\n", args)
	fmt.Fprintf(&r, "env %q\n", envFor(arch, b.CGO, tc))
	if b.CGO {
		fmt.Fprintf(&r, "cc %s %s\n", tc.cc, tc.ccDigest)
		for _, name := range append([]string{"c"}, b.CLibs...) {
			fmt.Fprintf(&r, "lib%s.a %s\n", name, tc.libs[name])
		}
	}
	return fmt.Sprintf("%x", sha([]byte(r.String()))), r.String()
}

func newHash() hash.Hash { return sha256.New() }

func sha(b []byte) []byte {
	s := sha256.Sum256(b)
	return s[:]
}

func fileDigest(p string) (string, error) {
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		return "", err
	}
	data, err := os.ReadFile(real)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%x", sha(data)), nil
}
