package images

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/kilnproject/kiln/builder/debian"
	"github.com/kilnproject/kiln/builder/fstree"
)

// debianExclude are dependencies an image without a package manager or an
// init system does not need (none are in the kube-proxy closure today; the
// list keeps them out if a dependency ever pulls them in).
var debianExclude = []string{"debconf", "dpkg", "perl-base", "init-system-helpers", "usrmerge", "usr-is-merged",
	"debianutils", "base-files", "base-passwd", "sysvinit-utils", "lsb-base", "install-info", "adduser"}

// mergedUsr folds the top-level directories bookworm packages still ship
// into /usr, as the usrmerge package does: /bin, /sbin and /lib are
// symlinks in the image.
var mergedUsr = map[string]string{"bin": "usr/bin", "sbin": "usr/sbin", "lib": "usr/lib", "lib64": "usr/lib64"}

func usrPath(p string) string {
	first, rest, _ := strings.Cut(p, "/")
	if to, ok := mergedUsr[first]; ok {
		if rest == "" {
			return to
		}
		return to + "/" + rest
	}
	return p
}

// dropped says whether a (usr-merged) package path stays out of an image:
// documentation, locales, the iconv modules, systemd units and helper
// programs nothing in a container calls. What remains is the programs,
// their libraries (and xtables' extension modules) and /etc.
func dropped(p string) bool {
	for _, prefix := range []string{"usr/share", "usr/libexec", "usr/lib/systemd", "etc/init.d", "etc/default"} {
		if p == prefix || strings.HasPrefix(p, prefix+"/") {
			return true
		}
	}
	// usr/lib/<triplet>/{gconv,audit}
	parts := strings.Split(p, "/")
	return len(parts) >= 4 && parts[0] == "usr" && parts[1] == "lib" && (parts[3] == "gconv" || parts[3] == "audit")
}

// debianLayer resolves names with their dependencies in ix and lays the
// packages' kept files into one tree, with owners as the .debs record
// them, plus the /bin, /sbin, /lib(64) symlinks and the recipe's links.
func debianLayer(ctx context.Context, src *debian.Source, ix *debian.Index, names []string, links []link) (*fstree.Tree, []*debian.Package, error) {
	pkgs, err := ix.Resolve(names, debianExclude)
	if err != nil {
		return nil, nil, err
	}
	t := fstree.New()
	tops := map[string]bool{}
	for _, p := range pkgs {
		pt := fstree.New()
		if err := src.AddToTree(ctx, pt, p); err != nil {
			return nil, nil, err
		}
		for _, e := range pt.Entries() {
			if e.Path == "" {
				continue
			}
			first, _, _ := strings.Cut(e.Path, "/")
			if _, ok := mergedUsr[first]; ok {
				tops[first] = true
			}
			if _, isTop := mergedUsr[e.Path]; isTop {
				continue // becomes the merged-usr symlink
			}
			c := *e
			c.Path = usrPath(e.Path)
			if dropped(c.Path) {
				continue
			}
			if old := t.Get(c.Path); old != nil && old.Kind == fstree.Dir && c.Kind == fstree.Dir {
				continue // shared directory: the first package's metadata stays
			}
			if err := t.Add(&c); err != nil {
				return nil, nil, fmt.Errorf("debian package %s: %w", p.Name, err)
			}
		}
	}
	// /bin, /sbin and /lib always (programs and scripts name them), /lib64
	// where a package ships it (the amd64 dynamic loader).
	tops["bin"], tops["sbin"], tops["lib"] = true, true, true
	var topNames []string
	for k := range tops {
		topNames = append(topNames, k)
	}
	sort.Strings(topNames)
	for _, top := range topNames {
		if t.Get(mergedUsr[top]) == nil {
			if err := t.Mkdir(mergedUsr[top], 0o755); err != nil {
				return nil, nil, err
			}
		}
		if err := t.Symlink(top, mergedUsr[top]); err != nil {
			return nil, nil, err
		}
	}
	for _, l := range links {
		target := l.target
		if !strings.HasPrefix(target, "/") {
			target = l.path[:strings.LastIndex(l.path, "/")+1] + target
		}
		if t.Get(strings.TrimPrefix(target, "/")) == nil {
			return nil, nil, fmt.Errorf("symlink /%s: target %s is not in Debian packages %s", l.path, l.target, strings.Join(names, ", "))
		}
		if err := t.Symlink(l.path, l.target); err != nil {
			return nil, nil, err
		}
	}
	return t, pkgs, nil
}

func packageList(pkgs []*debian.Package) string {
	var s []string
	for _, p := range pkgs {
		s = append(s, p.Name+"="+p.Version)
	}
	return strings.Join(s, " ")
}
