package builder

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/kilnproject/kiln/builder/fstree"
	"github.com/kilnproject/kiln/builder/squashfs"
)

// mergedUsr maps the top-level directories Debian packages still ship into
// /usr, as bookworm's usrmerge does: the image has one copy of each file.
var mergedUsr = map[string]string{"bin": "usr/bin", "sbin": "usr/sbin", "lib": "usr/lib", "lib32": "usr/lib32", "lib64": "usr/lib64", "libx32": "usr/libx32"}

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

// systemTree lays out the read-only system image.
func (b *archBuild) systemTree(ctx context.Context) (*fstree.Tree, error) {
	t := fstree.New()
	for _, d := range []string{"usr/bin", "usr/sbin", "usr/lib", "etc/kiln", "proc", "sys", "dev", "run", "tmp", "var", "root", "mnt", "sysroot", "home", "opt", "srv", "media"} {
		if err := t.Mkdir(d, 0o755); err != nil {
			return nil, err
		}
	}
	t.Get("tmp").Perm = 0o777 | fs.ModeSticky // fstree keeps the sticky bit as fs.ModeSticky, not 0o1000
	t.Get("root").Perm = 0o700
	for from, to := range mergedUsr {
		if from == "lib32" || from == "libx32" {
			continue
		}
		if err := t.Symlink(from, to); err != nil {
			return nil, err
		}
	}
	// Debian userland: package files, with /bin, /lib ... folded into /usr.
	for _, ex := range b.in.userland {
		pt := fstree.New()
		if err := pt.AddHostDir(ex.dir, ""); err != nil {
			return nil, fmt.Errorf("package %s: %w", ex.pkg.Name, err)
		}
		for _, e := range pt.Entries() {
			if e.Path == "" || strings.HasPrefix(e.Path, "usr/share/doc") || strings.HasPrefix(e.Path, "usr/share/man") ||
				strings.HasPrefix(e.Path, "usr/share/info") || strings.HasPrefix(e.Path, "usr/share/lintian") || strings.HasPrefix(e.Path, "usr/share/locale") {
				continue
			}
			c := *e
			c.Path = usrPath(e.Path)
			if _, isTop := mergedUsr[e.Path]; isTop {
				continue // the merged-usr symlink already stands there
			}
			if old := t.Get(c.Path); old != nil && old.Kind == fstree.Dir && c.Kind == fstree.Dir {
				continue
			}
			if err := t.Add(&c); err != nil {
				return nil, fmt.Errorf("package %s: %w", ex.pkg.Name, err)
			}
		}
	}
	initd, err := b.initdBinary(ctx)
	if err != nil {
		return nil, err
	}
	if err := t.AddHostFile("usr/sbin/init", 0o755, initd); err != nil {
		return nil, err
	}
	// All the profile's modules, with their own depmod files.
	set, err := b.moduleSet()
	if err != nil {
		return nil, err
	}
	if err := set.AddTo(t, "usr"); err != nil {
		return nil, err
	}
	osr := fmt.Sprintf("NAME=kiln\nID=kiln\nPRETTY_NAME=\"kiln %s (%s)\"\nVERSION_ID=%s\nVARIANT_ID=%s\nBUILD_ID=%s-%s\n",
		b.p.Version, b.p.Name, b.p.Version, b.p.Name, b.p.Name, b.p.Version)
	if err := t.AddFile("usr/lib/os-release", 0o644, []byte(osr)); err != nil {
		return nil, err
	}
	if err := t.Symlink("etc/os-release", "../usr/lib/os-release"); err != nil {
		return nil, err
	}
	digest, err := initdDigest(initd)
	if err != nil {
		return nil, err
	}
	sys, _ := json.MarshalIndent(map[string]string{"profile": b.p.Name, "version": b.p.Version, "arch": b.arch.Name, "kernel": b.kver, "initd": digest,
		"moduleIndex": set.IndexDigest()}, "", "  ")
	if err := t.AddFile("etc/kiln/system.json", 0o644, append(sys, '\n')); err != nil {
		return nil, err
	}
	for _, f := range []struct{ p, s string }{
		{"etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"},
		{"etc/group", "root:x:0:\nnogroup:x:65534:\n"},
		{"etc/hostname", "kiln\n"},
		{"etc/hosts", "127.0.0.1 localhost\n::1 localhost\n"},
		{"etc/nsswitch.conf", "passwd: files\ngroup: files\nhosts: files dns\n"},
	} {
		if err := t.AddFile(f.p, 0o644, []byte(f.s)); err != nil {
			return nil, err
		}
	}
	if err := b.addPayload(t); err != nil {
		return nil, err
	}
	for _, ov := range b.p.Overlays {
		dir := ov
		if !filepath.IsAbs(dir) {
			dir = filepath.Join(b.o.RepoRoot, ov)
		}
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			return nil, fmt.Errorf("%s: overlays: %s is not a directory", b.p.File, ov)
		}
		if err := t.AddHostDir(dir, ""); err != nil {
			return nil, fmt.Errorf("%s: overlays: %w", b.p.File, err)
		}
	}
	return t, nil
}

// buildSystem writes the system squashfs.
func (b *archBuild) buildSystem(ctx context.Context) error {
	done := b.stage("system")
	t, err := b.systemTree(ctx)
	if err != nil {
		return err
	}
	b.sqfs = filepath.Join(b.tmp, "system.sqfs")
	f, err := os.Create(b.sqfs)
	if err != nil {
		return err
	}
	defer f.Close()
	n, err := squashfs.Write(f, t, squashfs.Options{ModTime: b.o.Epoch, Compression: "zstd", BlockSize: int(b.p.System.BlockSize)})
	if err != nil {
		return fmt.Errorf("system image: %w", err)
	}
	if err := f.Truncate(n); err != nil {
		return err
	}
	b.sqfsSz = n
	done(n, fmt.Sprintf("squashfs zstd, %d entries", t.Len()))
	return f.Close()
}

// gunzipIfNeeded returns the kernel decompressed when Debian shipped it
// gzip-compressed (arm64), since EFI and network loaders want the PE image.
func gunzipIfNeeded(b []byte) ([]byte, error) {
	if len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
		return b, nil
	}
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("kernel image: %w", err)
	}
	return io.ReadAll(zr)
}
