package builder

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/kilnproject/kiln/arch"
	"github.com/kilnproject/kiln/builder/kmod"
	"github.com/kilnproject/kiln/builder/profile"
	"github.com/kilnproject/kiln/builder/syslinux"
)

// archBuild is the pipeline for one architecture.
type archBuild struct {
	o    Options
	p    *profile.Profile
	arch arch.Info
	tmp  string // scratch and staged outputs for this arch
	prog *Progress

	in      *inputs  // verified Debian inputs
	payload *payload // components and images (nil for a profile without them)
	kver    string
	kernel  []byte // kernel image as the boot loaders load it
	initrd  []byte
	sqfs    string // path of the system squashfs
	sqfsSz  int64

	biosLoader *syslinux.Loader // amd64 disk images

	// Computed once per arch and shared by the stages that need them.
	initdPath string            // built or given initd binary
	modules   *kmod.Set         // the profile's module subset
	ukis      map[string][]byte // slot ("" = live medium) -> UKI
}

func (b *archBuild) stage(name string) func(int64, string) {
	return b.prog.Stage(b.arch.Name, name)
}

func (b *archBuild) run(ctx context.Context) ([]Artifact, sbomArch, error) {
	var err error
	if b.in, err = b.fetchInputs(ctx); err != nil {
		return nil, sbomArch{}, err
	}
	if err := b.buildPayload(ctx); err != nil {
		return nil, sbomArch{}, err
	}
	if err := b.buildInitramfs(ctx); err != nil {
		return nil, sbomArch{}, err
	}
	if err := b.buildSystem(ctx); err != nil {
		return nil, sbomArch{}, err
	}
	outs, err := b.writeFormats(ctx)
	if err != nil {
		return nil, sbomArch{}, err
	}
	sb, err := b.sbom()
	if err != nil {
		return nil, sbomArch{}, err
	}
	return outs, sb, nil
}

// cmdline is the kernel command line for a boot entry; slot is "" for the ISO.
func (b *archBuild) cmdline(slot string) string {
	c := "console=" + b.arch.Console + " kiln.label=" + b.p.VolumeLabel
	if slot != "" {
		c += " kiln.slot=" + slot
	}
	if b.p.Cmdline != "" {
		c += " " + b.p.Cmdline
	}
	return c
}

// staged returns a path in the staging directory for a final output name.
func (b *archBuild) staged(format string) string {
	return filepath.Join(b.tmp, FormatFile(b.p, b.arch.Name, format))
}

func fileSize(path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return st.Size()
}

func roundUp(n, to int64) int64 { return (n + to - 1) / to * to }

var errNoKernel = fmt.Errorf("no kernel")
