package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/kilnproject/kiln/builder"
	"github.com/kilnproject/kiln/builder/profile"
)

func buildCmd() *cobra.Command {
	var (
		profilePath, outDir, mirror, cacheDir string
		arches, formats, initd                []string
		offline                               bool
	)
	c := &cobra.Command{
		Use:   "build",
		Short: "Build images from a profile",
		Long: `Build turns a profile into bootable images (iso, raw, qcow2, vmdk, ova, vhd,
vhd-dynamic, uki, pxe) for amd64 and arm64, plus SHA256SUMS and an SPDX SBOM.
It needs no root, no loop devices and no container engine. Debian inputs are
verified against the signed archive and cached; --offline builds from the cache.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := profile.Load(profilePath)
			if err != nil {
				return err
			}
			epoch, err := builder.EpochFromEnv()
			if err != nil {
				return err
			}
			if cacheDir == "" {
				if cacheDir, err = defaultCacheDir(); err != nil {
					return err
				}
			}
			if mirror == "" {
				mirror = os.Getenv("KILN_DEBIAN_MIRROR")
			}
			prebuilt := map[string]string{}
			for _, s := range initd {
				a, path, ok := strings.Cut(s, "=")
				if !ok {
					return fmt.Errorf("--initd %q: want ARCH=PATH", s)
				}
				prebuilt[a] = path
			}
			repo := findRepoRoot(filepath.Dir(profilePath))
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			prog := builder.NewProgress(os.Stderr)
			start := time.Now()
			fmt.Fprintf(os.Stderr, "kiln: building %s %s (%s) -> %s\n", p.Name, p.Version, strings.Join(orDefault(arches, p.Arches), ","), outDir)
			res, err := builder.Build(ctx, builder.Options{
				Profile: p, Arches: splitList(arches), Formats: splitList(formats), OutDir: outDir,
				Initd: prebuilt, InitdSource: repo, RepoRoot: repo, CacheDir: cacheDir,
				Offline: offline, Mirror: mirror, Epoch: epoch, Progress: prog,
			})
			if err != nil {
				return err
			}
			for _, a := range res.Artifacts {
				fmt.Printf("%s  %10s  %s\n", a.SHA256[:16], builder.HumanSize(a.Size), a.Path)
			}
			fmt.Fprintf(os.Stderr, "kiln: done in %.1fs; SHA256SUMS and %s written\n", time.Since(start).Seconds(), filepath.Base(res.SBOM))
			return nil
		},
	}
	f := c.Flags()
	f.StringVarP(&profilePath, "profile", "p", "profiles/default.yaml", "profile file")
	f.StringSliceVar(&arches, "arch", nil, "architectures to build (default: the profile's)")
	f.StringSliceVar(&formats, "format", nil, "formats: iso,raw,qcow2,vmdk,ova,vhd,vhd-dynamic,uki,pxe (default: the profile's)")
	f.StringVarP(&outDir, "output", "o", "out", "output directory")
	f.StringVar(&mirror, "mirror", "", "Debian mirror URL (default: KILN_DEBIAN_MIRROR, else the host's apt sources)")
	f.StringVar(&cacheDir, "cache", "", "cache directory (default: $XDG_CACHE_HOME/kiln)")
	f.BoolVar(&offline, "offline", false, "never fetch: build only from cached, verified inputs")
	f.StringSliceVar(&initd, "initd", nil, "prebuilt initd binary per arch, ARCH=PATH (default: build from source)")
	return c
}

func splitList(in []string) []string {
	var out []string
	for _, s := range in {
		for _, x := range strings.Split(s, ",") {
			if x = strings.TrimSpace(x); x != "" {
				out = append(out, x)
			}
		}
	}
	return out
}

func orDefault(a, def []string) []string {
	if len(a) > 0 {
		return splitList(a)
	}
	return def
}

func defaultCacheDir() (string, error) {
	if d := os.Getenv("KILN_CACHE_DIR"); d != "" {
		return d, nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no cache directory: set --cache or KILN_CACHE_DIR")
	}
	return filepath.Join(d, "kiln"), nil
}

// findRepoRoot walks up from dir to the kiln source tree (for building initd
// and resolving overlays); "" when not inside one.
func findRepoRoot(dir string) string {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return ""
	}
	for d := abs; ; d = filepath.Dir(d) {
		if b, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil && strings.Contains(string(b), "module github.com/kilnproject/kiln\n") {
			return d
		}
		if filepath.Dir(d) == d {
			if wd, err := os.Getwd(); err == nil && wd != abs {
				return findRepoRoot(wd)
			}
			return ""
		}
	}
}
