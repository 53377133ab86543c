package builder

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/kilnproject/kiln/arch"
	"github.com/kilnproject/kiln/builder/debian"
)

// inputs are the verified, extracted Debian packages one architecture needs.
type inputs struct {
	kernelDir string            // extracted kernel package
	boot      map[string]string // "package" -> extracted dir, for boot loader files
	userland  []extracted       // packages laid into the system image, sorted by name
	all       []*debian.Package // everything, for the SBOM
	index     *debian.Index     // the verified index, for later stages (images)
}

type extracted struct {
	pkg *debian.Package
	dir string
}

// bootPackages are the Debian packages boot files come from.
func bootPackages(a arch.Info) []string {
	set := map[string]bool{a.EFIStub.Package: true}
	if a.BIOS {
		set[syslinuxInstaller.Package] = true
	}
	if a.BIOS {
		for _, f := range []arch.PkgFile{a.ISOLinux, a.ISOHybridMBR, a.LDLinux, a.GPTMBR} {
			set[f.Package] = true
		}
	}
	var out []string
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// userlandExclude are packages a Debian system pulls in through dependencies
// that an appliance without a package manager does not need.
var userlandExclude = []string{"debconf", "dpkg", "perl-base", "init-system-helpers", "usrmerge", "usr-is-merged",
	"debianutils", "base-files", "base-passwd", "sysvinit-utils", "login", "passwd", "adduser", "lsb-base", "install-info"}

func (b *archBuild) debianSource() (*debian.Source, error) {
	if b.o.Mirror != "" {
		// The flag wins over the environment and the host's apt sources.
		os.Setenv(debian.MirrorEnv, b.o.Mirror)
	}
	suites, err := debian.HostSuites()
	if err != nil {
		return nil, err
	}
	if len(b.p.Debian.Suites) > 0 {
		var keep []debian.Suite
		for _, s := range suites {
			if contains(b.p.Debian.Suites, s.Suite) {
				keep = append(keep, s)
			}
		}
		suites = keep
	}
	if len(suites) == 0 {
		return nil, fmt.Errorf("no Debian suites: set --mirror or %s, or add Debian to the host's apt sources", debian.MirrorEnv)
	}
	return &debian.Source{
		Mirrors:  suites,
		CacheDir: filepath.Join(b.o.CacheDir, "debian"),
		Offline:  b.o.Offline,
	}, nil
}

func (b *archBuild) fetchInputs(ctx context.Context) (*inputs, error) {
	done := b.stage("index")
	src, err := b.debianSource()
	if err != nil {
		return nil, err
	}
	ix, err := src.Index(ctx, b.arch.DebArch)
	if err != nil {
		return nil, err
	}
	done(0, fmt.Sprintf("%d packages from %d suites, signatures verified", len(ix.Packages()), len(src.Mirrors)))

	done = b.stage("packages")
	in := &inputs{boot: map[string]string{}, index: ix}
	pin := b.p.Kernel.Packages[b.arch.Name]
	kpkg, err := ix.Lookup(pin.Name, pin.Version)
	if err != nil {
		return nil, fmt.Errorf("%s: kernel.packages.%s: %w", b.p.File, b.arch.Name, err)
	}
	var fetched int64
	get := func(p *debian.Package) (string, error) {
		dir, err := src.ExtractCached(ctx, p)
		if err != nil {
			return "", err
		}
		fetched += p.Size
		in.all = append(in.all, p)
		return dir, nil
	}
	if in.kernelDir, err = get(kpkg); err != nil {
		return nil, err
	}
	for _, name := range bootPackages(b.arch) {
		p, err := ix.Lookup(name, "")
		if err != nil {
			return nil, fmt.Errorf("boot loader package: %w", err)
		}
		if in.boot[name], err = get(p); err != nil {
			return nil, err
		}
	}
	if len(b.p.Packages) > 0 {
		pkgs, err := ix.Resolve(b.p.Packages, userlandExclude)
		if err != nil {
			return nil, fmt.Errorf("%s: packages: %w", b.p.File, err)
		}
		for _, p := range pkgs {
			dir, err := get(p)
			if err != nil {
				return nil, err
			}
			in.userland = append(in.userland, extracted{p, dir})
		}
	}
	done(fetched, fmt.Sprintf("%d .debs verified (kernel %s %s)", len(in.all), kpkg.Name, kpkg.Version))
	return in, nil
}

// bootFile returns the host path of a file from a boot loader package.
func (in *inputs) bootFile(f arch.PkgFile) (string, error) {
	dir, ok := in.boot[f.Package]
	if !ok {
		return "", fmt.Errorf("boot file %s: package %s was not fetched", f.Path, f.Package)
	}
	p := filepath.Join(dir, filepath.FromSlash(f.Path))
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("boot file %s is missing from Debian package %s", f.Path, f.Package)
	}
	return p, nil
}

// kernelVersion finds the single lib/modules/<kver> of the kernel package.
func kernelVersion(kernelDir string) (string, error) {
	for _, base := range []string{"lib/modules", "usr/lib/modules"} {
		ents, err := os.ReadDir(filepath.Join(kernelDir, base))
		if err != nil {
			continue
		}
		var vers []string
		for _, e := range ents {
			if e.IsDir() {
				vers = append(vers, e.Name())
			}
		}
		if len(vers) == 1 {
			return vers[0], nil
		}
		return "", fmt.Errorf("kernel package holds %d module trees (%s), want one", len(vers), strings.Join(vers, ", "))
	}
	return "", fmt.Errorf("%w: the kernel package has no lib/modules", errNoKernel)
}

func modulesDir(kernelDir, kver string) string {
	for _, base := range []string{"lib/modules", "usr/lib/modules"} {
		d := filepath.Join(kernelDir, base, kver)
		if _, err := os.Stat(d); err == nil {
			return d
		}
	}
	return filepath.Join(kernelDir, "lib/modules", kver)
}
