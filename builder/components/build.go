package components

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"
)

// Options select what Build builds and where it caches.
type Options struct {
	ComponentsDir string   // directory holding one module per component
	Arch          string   // target: amd64 or arm64
	CacheDir      string   // outputs are cached here
	Names         []string // binary or component names, optionally @version; empty = all
	Log           func(format string, args ...any)
}

// Output is one built (or cached) binary.
type Output struct {
	Name      string // binary name, e.g. "kubelet"
	Path      string // the file in the cache
	Component string // e.g. "kubernetes"
	Module    string // module providing the main package, e.g. "k8s.io/kubernetes"
	Version   string // that module's version, e.g. "v1.37.2"
	Sum       string // go.sum h1 digest of Module@Version ("" for our own code)
	Cached    bool   // found in the cache, not built by this call
}

// arches are the supported targets and their GNU triplets (C toolchain).
var arches = map[string]string{"amd64": "x86_64-linux-gnu", "arm64": "aarch64-linux-gnu"}

// selected is one binary to produce with everything its build needs.
type selected struct {
	comp   *Component
	bin    Binary
	mod    *modFile
	sum    string
	stamps []string // with {sum} expanded
	key    string
	recipe string
	cached bool
}

// Build returns the requested binaries for opts.Arch, building those that
// are not cached. See the package documentation.
func Build(ctx context.Context, opts Options) ([]Output, error) {
	if _, ok := arches[opts.Arch]; !ok {
		return nil, fmt.Errorf("components: unsupported arch %q (want amd64 or arm64)", opts.Arch)
	}
	if opts.ComponentsDir == "" || opts.CacheDir == "" {
		return nil, errors.New("components: ComponentsDir and CacheDir are required")
	}
	logf := opts.Log
	if logf == nil {
		logf = func(string, ...any) {}
	}
	want, err := selectBinaries(opts.Names)
	if err != nil {
		return nil, err
	}
	tc, err := findToolchain(opts.Arch, needsCGO(want))
	if err != nil {
		return nil, err
	}
	dirHashes := map[string]string{}
	var sels []*selected
	for _, w := range want {
		comp, bin := w.comp, w.bin
		dir := filepath.Join(opts.ComponentsDir, comp.Name)
		mod, gosum, err := readModule(dir, comp, bin)
		if err != nil {
			return nil, err
		}
		s := &selected{comp: comp, bin: bin, mod: mod}
		if bin.Module != mod.module {
			s.sum = sumOf(gosum, bin.Module, mod.requires[bin.Module])
			if s.sum == "" {
				return nil, fmt.Errorf("%s: no h1 digest for %s %s", filepath.Join(dir, "go.sum"), bin.Module, mod.requires[bin.Module])
			}
		}
		stampSum := s.sum
		if bin.StampSumOf != "" {
			if stampSum = sumOf(gosum, bin.StampSumOf, mod.requires[bin.StampSumOf]); stampSum == "" {
				return nil, fmt.Errorf("%s: no h1 digest for %s %s", filepath.Join(dir, "go.sum"), bin.StampSumOf, mod.requires[bin.StampSumOf])
			}
		}
		for _, st := range bin.Stamps {
			if strings.Contains(st, "{sum}") && stampSum == "" {
				return nil, fmt.Errorf("components: %s: stamp %q needs a module digest, but %s is the main module", bin.Name, st, bin.Module)
			}
			s.stamps = append(s.stamps, strings.ReplaceAll(st, "{sum}", stampSum))
		}
		if dirHashes[dir] == "" {
			if dirHashes[dir], err = hashTree(dir); err != nil {
				return nil, err
			}
		}
		s.key, s.recipe = cacheKey(s.bin, buildArgs(s.bin, s.stamps), opts.Arch, dirHashes[dir], tc)
		sels = append(sels, s)
	}

	// Group what is missing by component and flags: one go build per group.
	type group struct {
		comp *Component
		args []string
		sels []*selected
	}
	var groups []*group
	byArgs := map[string]*group{}
	for _, s := range sels {
		if exists(filepath.Join(opts.CacheDir, s.key, s.bin.Name)) {
			s.cached = true
			continue
		}
		args := buildArgs(s.bin, s.stamps)
		id := s.comp.Name + "\x00" + strings.Join(args, "\x00")
		g := byArgs[id]
		if g == nil {
			g = &group{comp: s.comp, args: args}
			byArgs[id] = g
			groups = append(groups, g)
		}
		g.sels = append(g.sels, s)
	}
	if len(groups) > 0 {
		if err := os.MkdirAll(opts.CacheDir, 0o755); err != nil {
			return nil, err
		}
	}
	for _, g := range groups {
		names := make([]string, len(g.sels))
		for i, s := range g.sels {
			names[i] = s.bin.Name
		}
		logf("components: building %s %s for %s: %s", g.comp.Name, g.comp.Version, opts.Arch, strings.Join(names, " "))
		t0 := time.Now()
		if err := buildGroup(ctx, opts, tc, g.comp, g.args, g.sels); err != nil {
			return nil, err
		}
		logf("components: built %s for %s in %s", g.comp.Name, opts.Arch, time.Since(t0).Round(time.Second))
	}

	outs := make([]Output, len(sels))
	for i, s := range sels {
		version := s.mod.requires[s.bin.Module]
		if s.bin.Module == s.mod.module {
			version = s.comp.Version
		}
		outs[i] = Output{
			Name: s.bin.Name, Path: filepath.Join(opts.CacheDir, s.key, s.bin.Name),
			Component: s.comp.Name, Module: s.bin.Module, Version: version, Sum: s.sum, Cached: s.cached,
		}
	}
	return outs, nil
}

type want struct {
	comp *Component
	bin  Binary
}

// selectBinaries resolves names to binaries in Table order (all when names is
// empty). A name is a binary name or else a component name, optionally
// with @version, which must be the pinned one.
func selectBinaries(names []string) ([]want, error) {
	pick := map[string]bool{}
	for _, n := range names {
		name, version, _ := strings.Cut(n, "@")
		found := false
		for ci := range Table {
			c := &Table[ci]
			for _, b := range c.Binaries {
				if b.Name == name {
					found = true
					pick[b.Name] = true
				}
			}
			if !found && c.Name == name {
				found = true
				for _, b := range c.Binaries {
					pick[b.Name] = true
				}
			}
			if found {
				if version != "" && version != c.Version {
					return nil, fmt.Errorf("components: %s: version %s is not available: %s is pinned to %s (components/%s/go.mod)", n, version, c.Name, c.Version, c.Name)
				}
				break
			}
		}
		if !found {
			return nil, fmt.Errorf("components: unknown component %q (known: %s)", n, strings.Join(KnownNames(), ", "))
		}
	}
	var out []want
	for ci := range Table {
		for _, b := range Table[ci].Binaries {
			if len(names) == 0 || pick[b.Name] {
				out = append(out, want{&Table[ci], b})
			}
		}
	}
	return out, nil
}

// KnownNames lists the component and binary names Select accepts.
func KnownNames() []string {
	set := map[string]bool{}
	for _, c := range Table {
		set[c.Name] = true
		for _, b := range c.Binaries {
			set[b.Name] = true
		}
	}
	var out []string
	for n := range set {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func needsCGO(ws []want) bool {
	for _, w := range ws {
		if w.bin.CGO {
			return true
		}
	}
	return false
}

// readModule reads a component's go.mod and go.sum and checks that go.mod
// pins the table's version and names the binary's package as a tool.
func readModule(dir string, comp *Component, bin Binary) (*modFile, []byte, error) {
	gomodPath := filepath.Join(dir, "go.mod")
	data, err := os.ReadFile(gomodPath)
	if err != nil {
		return nil, nil, fmt.Errorf("components: %s: %w", comp.Name, err)
	}
	mod, err := parseGoMod(gomodPath, data)
	if err != nil {
		return nil, nil, err
	}
	gosum, err := os.ReadFile(filepath.Join(dir, "go.sum"))
	if err != nil {
		return nil, nil, fmt.Errorf("components: %s: %w", comp.Name, err)
	}
	if bin.Module != mod.module {
		if v := mod.requires[bin.Module]; v != comp.Version {
			if v == "" {
				return nil, nil, fmt.Errorf("%s: require: %s is missing (want %s)", gomodPath, bin.Module, comp.Version)
			}
			return nil, nil, fmt.Errorf("%s: require: %s is %s, the table pins %s", gomodPath, bin.Module, v, comp.Version)
		}
	}
	if !mod.tools[bin.Package] {
		return nil, nil, fmt.Errorf("%s: tool: %s is missing (binary %s)", gomodPath, bin.Package, bin.Name)
	}
	return mod, gosum, nil
}

var stampRE = regexp.MustCompile(`^[A-Za-z0-9_./-]+\.[A-Za-z_][A-Za-z0-9_]*=[^\s'"]*$`)

// buildArgs are the go build flags of one binary (without -o and package).
func buildArgs(b Binary, stamps []string) []string {
	ld := []string{"-s", "-w", "-buildid="}
	for _, st := range stamps {
		ld = append(ld, "-X", st)
	}
	args := []string{"build", "-trimpath", "-buildvcs=false"}
	if b.CGO {
		// What runc's Makefile does for static builds on amd64/arm64.
		args = append(args, "-buildmode=pie")
		ld = append(ld, "-linkmode", "external", "-extldflags", "-static-pie")
	}
	if len(b.Tags) > 0 {
		args = append(args, "-tags", strings.Join(b.Tags, ","))
	}
	return append(args, "-ldflags", strings.Join(ld, " "))
}

// buildGroup runs one go build for binaries of one component sharing flags,
// then moves each binary into its cache entry (temp dir, then rename).
func buildGroup(ctx context.Context, opts Options, tc toolchain, comp *Component, args []string, sels []*selected) error {
	tmp, err := os.MkdirTemp(opts.CacheDir, ".build-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	out := filepath.Join(tmp, "bin")
	argv := append(append([]string{}, args...), "-o", out+string(filepath.Separator))
	for _, s := range sels {
		argv = append(argv, s.bin.Package)
	}
	cmd := exec.CommandContext(ctx, tc.goCmd, argv...)
	cmd.Dir = filepath.Join(opts.ComponentsDir, comp.Name)
	cmd.Env = buildEnv(opts.Arch, sels[0].bin.CGO, tc)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("components: go build of %s %s for %s: %v\n%s", comp.Name, comp.Version, opts.Arch, err, tail(buf.String(), 40))
	}
	for _, s := range sels {
		stage, err := os.MkdirTemp(opts.CacheDir, ".entry-")
		if err != nil {
			return err
		}
		if err := os.Rename(filepath.Join(out, exeName(s.bin.Package)), filepath.Join(stage, s.bin.Name)); err != nil {
			os.RemoveAll(stage)
			return fmt.Errorf("components: %s: go build left no %s: %v", comp.Name, exeName(s.bin.Package), err)
		}
		if err := os.WriteFile(filepath.Join(stage, "recipe.txt"), []byte(s.recipe), 0o644); err != nil {
			os.RemoveAll(stage)
			return err
		}
		if err := os.Chmod(stage, 0o755); err != nil {
			os.RemoveAll(stage)
			return err
		}
		final := filepath.Join(opts.CacheDir, s.key)
		if err := os.Rename(stage, final); err != nil {
			os.RemoveAll(stage)
			// Another build filled the same entry first: same inputs, same bytes.
			if !exists(filepath.Join(final, s.bin.Name)) {
				return fmt.Errorf("components: caching %s: %v", s.bin.Name, err)
			}
		}
	}
	return nil
}

// exeName is the file go build -o DIR writes for a main package: the last
// path element, skipping a major-version suffix (go.etcd.io/etcd/server/v3
// -> server).
func exeName(pkg string) string {
	base := path.Base(pkg)
	if len(base) > 1 && base[0] == 'v' && strings.Trim(base[1:], "0123456789") == "" && path.Dir(pkg) != "." {
		return path.Base(path.Dir(pkg))
	}
	return base
}

// buildEnv is the process environment minus everything that could change
// the output without being in the cache key, plus the fixed build settings.
func buildEnv(arch string, cgo bool, tc toolchain) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if fixedEnv[k] || strings.HasPrefix(k, "CGO_") || strings.HasPrefix(k, "PKG_CONFIG") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, envFor(arch, cgo, tc)...)
}

// fixedEnv are the variables Build always sets itself.
var fixedEnv = map[string]bool{
	"GOOS": true, "GOARCH": true, "GOFLAGS": true, "GOWORK": true, "GOTOOLCHAIN": true,
	"GOAMD64": true, "GOARM64": true, "GOEXPERIMENT": true, "GOFIPS140": true, "CC": true, "CXX": true,
	"GO_EXTLINK_ENABLED": true, "GODEBUG": true,
}

// envFor is the environment a build sets; it is part of the cache key.
func envFor(arch string, cgo bool, tc toolchain) []string {
	env := []string{
		"GOOS=linux", "GOARCH=" + arch, "GOFLAGS=-mod=readonly", "GOWORK=off", "GOTOOLCHAIN=local",
		"GOAMD64=v1", "GOARM64=v8.0", "GOEXPERIMENT=", "GOFIPS140=off",
	}
	if !cgo {
		return append(env, "CGO_ENABLED=0")
	}
	triplet := arches[arch]
	return append(env, "CGO_ENABLED=1", "CC="+tc.cc,
		"CGO_CFLAGS=-O2", "CGO_CPPFLAGS=", "CGO_LDFLAGS=-O2",
		"PKG_CONFIG_LIBDIR=/usr/lib/"+triplet+"/pkgconfig:/usr/share/pkgconfig")
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func tail(s string, lines int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > lines {
		l = append([]string{"..."}, l[len(l)-lines:]...)
	}
	return strings.Join(l, "\n")
}

// hashTree is a digest of every file under dir (names, modes and contents).
func hashTree(dir string) (string, error) {
	h := newHash()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s %d %x\n", filepath.ToSlash(rel), len(data), sha(data))
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("components: %w", err)
	}
	return fmt.Sprintf("%x", h.Sum(nil)), nil
}
