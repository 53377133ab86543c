package builder

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/klauspost/compress/zstd"

	"github.com/kilnproject/kiln/builder/cpio"
	"github.com/kilnproject/kiln/builder/fstree"
	"github.com/kilnproject/kiln/builder/kmod"
)

// initdBinary returns the path of initd for this arch, building it when no
// prebuilt one was given. The build is static and stripped of build IDs and
// paths so the binary is reproducible.
func (b *archBuild) initdBinary(ctx context.Context) (string, error) {
	if b.initdPath != "" {
		return b.initdPath, nil
	}
	if p := b.o.Initd[b.arch.Name]; p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("initd for %s: %w", b.arch.Name, err)
		}
		b.initdPath = p
		return p, nil
	}
	if b.o.InitdSource == "" {
		return "", fmt.Errorf("initd for %s: no prebuilt binary (--initd) and no source tree to build it from", b.arch.Name)
	}
	out := filepath.Join(b.tmp, "initd")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w -buildid=", "-o", out, "./cmd/initd")
	cmd.Dir = b.o.InitdSource
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+b.arch.GOARCH)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("building initd for %s: %v\n%s", b.arch.Name, err, stderr.String())
	}
	b.initdPath = out
	return out, nil
}

// initdDigest is "sha256:HEX" of the initd binary at path. initramfs.json
// and the system image's system.json both carry it: when they match, initd
// runs the system stage on in the initramfs's process instead of exec'ing
// /sbin/init from the squashfs.
func initdDigest(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("initd %s: %w", path, err)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

// moduleSet scans the kernel's modules once and selects the profile's subset
// (with dependencies); the initramfs and the system image both carry it.
func (b *archBuild) moduleSet() (*kmod.Set, error) {
	if b.modules != nil {
		return b.modules, nil
	}
	ix, err := kmod.Scan(modulesDir(b.in.kernelDir, b.kver))
	if err != nil {
		return nil, err
	}
	want := append(append([]string(nil), b.p.Kernel.InitramfsModules...), b.p.Kernel.ModulesFor(b.arch.Name)...)
	set, err := ix.Select(want)
	if err != nil {
		return nil, fmt.Errorf("%s: kernel modules: %w", b.p.File, err)
	}
	b.modules = set
	return set, nil
}

// buildInitramfs assembles initd plus the boot-critical modules as a
// deterministic newc cpio archive, and reads the kernel image.
func (b *archBuild) buildInitramfs(ctx context.Context) error {
	done := b.stage("initramfs")
	kver, err := kernelVersion(b.in.kernelDir)
	if err != nil {
		return err
	}
	b.kver = kver
	kpath := filepath.Join(b.in.kernelDir, "boot", "vmlinuz-"+kver)
	if b.kernel, err = os.ReadFile(kpath); err != nil {
		return fmt.Errorf("%w: kernel image boot/vmlinuz-%s is missing from %s", errNoKernel, kver, b.p.Kernel.Packages[b.arch.Name].Name)
	}
	initd, err := b.initdBinary(ctx)
	if err != nil {
		return err
	}
	set, err := b.moduleSet()
	if err != nil {
		return err
	}
	t := fstree.New()
	if err := t.AddHostFile("init", 0o755, initd); err != nil {
		return err
	}
	for _, d := range []string{"dev", "proc", "sys", "run", "tmp", "sysroot", "etc/kiln", "sbin"} {
		if err := t.Mkdir(d, 0o755); err != nil {
			return err
		}
	}
	if err := t.Symlink("sbin/init", "../init"); err != nil {
		return err
	}
	// The kernel opens /dev/console before initd can mount devtmpfs.
	if err := t.Add(&fstree.Entry{Path: "dev/console", Kind: fstree.CharDev, Perm: 0o600, Major: 5, Minor: 1}); err != nil {
		return err
	}
	if err := set.AddTo(t, ""); err != nil {
		return err
	}
	digest, err := initdDigest(initd)
	if err != nil {
		return err
	}
	cfg, _ := json.MarshalIndent(map[string]any{"kernel": kver, "modules": normaliseModules(b.p.Kernel.InitramfsModules), "initd": digest,
		"moduleIndex": set.IndexDigest()}, "", "  ")
	if err := t.AddFile("etc/kiln/initramfs.json", 0o644, append(cfg, '\n')); err != nil {
		return err
	}
	// zstd: the kernel unpacks it (CONFIG_RD_ZSTD) and it halves what the
	// loaders read from the medium. One encoder thread keeps it deterministic.
	var buf bytes.Buffer
	zw, err := zstd.NewWriter(&buf, zstd.WithEncoderConcurrency(1), zstd.WithEncoderLevel(zstd.SpeedBetterCompression))
	if err != nil {
		return err
	}
	if err := cpio.Write(zw, t, b.o.Epoch); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	b.initrd = buf.Bytes()
	done(int64(len(b.initrd)), fmt.Sprintf("kernel %s, %d modules, zstd cpio", kver, len(set.Modules)))
	return nil
}

func normaliseModules(in []string) []string {
	out := make([]string, len(in))
	for i, m := range in {
		out[i] = strings.ReplaceAll(m, "-", "_")
	}
	return out
}
