package builder

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/kilnproject/kiln/builder/fat"
	"github.com/kilnproject/kiln/builder/fstree"
	"github.com/kilnproject/kiln/builder/gpt"
	"github.com/kilnproject/kiln/builder/iso9660"
	"github.com/kilnproject/kiln/builder/ova"
	"github.com/kilnproject/kiln/builder/qcow2"
	"github.com/kilnproject/kiln/builder/uki"
	"github.com/kilnproject/kiln/builder/vhd"
	"github.com/kilnproject/kiln/builder/vmdk"
)

// writeFormats writes every requested format for this arch into the
// staging directory and returns them.
func (b *archBuild) writeFormats(ctx context.Context) ([]Artifact, error) {
	want := map[string]bool{}
	for _, f := range b.o.Formats {
		want[f] = true
	}
	var arts []Artifact
	add := func(format, path string) {
		arts = append(arts, Artifact{Arch: b.arch.Name, Format: format, Path: path, Size: fileSize(path)})
	}
	if want["iso"] {
		if err := b.writeISO(b.staged("iso")); err != nil {
			return nil, err
		}
		add("iso", b.staged("iso"))
	}
	if want["uki"] {
		done := b.stage("uki")
		img, err := b.uki("")
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(b.staged("uki"), img, 0o644); err != nil {
			return nil, err
		}
		done(int64(len(img)), "kernel + initramfs + cmdline in one EFI binary")
		add("uki", b.staged("uki"))
	}
	if want["pxe"] {
		paths, err := b.writePXE()
		if err != nil {
			return nil, err
		}
		for _, p := range paths {
			add("pxe", p)
		}
	}
	needDisk := want["raw"] || want["qcow2"] || want["vmdk"] || want["ova"] || want["vhd"] || want["vhd-dynamic"]
	if !needDisk {
		return arts, nil
	}
	raw := b.staged("raw")
	if err := b.writeDisk(raw); err != nil {
		return nil, err
	}
	size := fileSize(raw)
	src, err := os.Open(raw)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	convert := func(format, detail string, write func(f *os.File) error) error {
		done := b.stage(format)
		path := b.staged(format)
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		if err := write(f); err != nil {
			f.Close()
			return fmt.Errorf("%s: %w", format, err)
		}
		if err := f.Close(); err != nil {
			return err
		}
		done(fileSize(path), detail)
		add(format, path)
		return nil
	}
	if want["qcow2"] {
		if err := convert("qcow2", "qcow2 v3, sparse", func(f *os.File) error { return qcow2.Write(f, src, size) }); err != nil {
			return nil, err
		}
	}
	if want["vmdk"] || want["ova"] {
		if err := convert("vmdk", "streamOptimized", func(f *os.File) error {
			return vmdk.WriteStreamOptimized(f, src, size, vmdk.Options{FileName: BaseName(b.p, b.arch.Name) + "-disk1.vmdk"})
		}); err != nil {
			return nil, err
		}
	}
	if want["ova"] {
		vmdkPath := b.staged("vmdk")
		if err := convert("ova", "OVF + VMDK + manifest", func(f *os.File) error {
			return ova.Write(f, ova.Options{
				Name:         BaseName(b.p, b.arch.Name),
				VMDKPath:     vmdkPath,
				DiskCapacity: size,
				CPUs:         b.p.VM.CPUs,
				MemoryMiB:    b.p.VM.MemoryMiB,
				UEFI:         b.p.VM.UEFI || !b.arch.BIOS,
				NICs:         1,
				ModTime:      b.o.Epoch,
				OSType:       b.arch.OVFOSType,
				Properties:   ovaSeedProperties(),
			})
		}); err != nil {
			return nil, err
		}
		if !want["vmdk"] {
			os.Remove(vmdkPath)
			arts = dropFormat(arts, "vmdk")
		}
	}
	vopts := vhd.Options{UniqueID: [16]byte(gpt.NameGUID(b.p.Name, b.p.Version, b.arch.Name, "vhd")), Timestamp: uint32(b.o.Epoch - 946684800)}
	if want["vhd"] {
		if err := convert("vhd", "fixed", func(f *os.File) error { return vhd.WriteFixed(f, src, size, vopts) }); err != nil {
			return nil, err
		}
	}
	if want["vhd-dynamic"] {
		if err := convert("vhd-dynamic", "dynamic, sparse", func(f *os.File) error { return vhd.WriteDynamic(f, src, size, vopts) }); err != nil {
			return nil, err
		}
	}
	if want["raw"] {
		add("raw", raw)
	} else {
		os.Remove(raw)
	}
	return arts, nil
}

func dropFormat(arts []Artifact, format string) []Artifact {
	var out []Artifact
	for _, a := range arts {
		if a.Format != format {
			out = append(out, a)
		}
	}
	return out
}

// ovaSeedProperties let VMware users pass the seed in the import wizard;
// initd's VMware datasource reads them as guestinfo or from the OVF environment.
func ovaSeedProperties() []ova.Property {
	return []ova.Property{
		{Key: "hostname", Type: "string", Label: "Hostname", Description: "Host name of the node", UserConfigurable: true},
		{Key: "guestinfo.userdata", Type: "string", Label: "User data", Description: "Machine config or #cloud-config, encoded as set in guestinfo.userdata.encoding", UserConfigurable: true},
		{Key: "guestinfo.userdata.encoding", Type: "string", Default: "base64", Label: "User data encoding", Description: "base64, gzip+base64 or empty for plain text", UserConfigurable: true},
		{Key: "guestinfo.metadata", Type: "string", Label: "Metadata", Description: "cloud-init style metadata (instance-id, local-hostname, network)", UserConfigurable: true},
		{Key: "guestinfo.metadata.encoding", Type: "string", Default: "base64", Label: "Metadata encoding", UserConfigurable: true},
	}
}

// uki assembles a UKI whose command line selects slot ("" = live medium).
func (b *archBuild) uki(slot string) ([]byte, error) {
	if img, ok := b.ukis[slot]; ok {
		return img, nil
	}
	stubPath, err := b.in.bootFile(b.arch.EFIStub)
	if err != nil {
		return nil, err
	}
	stub, err := os.ReadFile(stubPath)
	if err != nil {
		return nil, err
	}
	osr := fmt.Sprintf("ID=kiln\nNAME=kiln\nVERSION_ID=%s\nPRETTY_NAME=\"kiln %s %s\"\n", b.p.Version, b.p.Name, b.p.Version)
	img, err := uki.Build(stub, uki.Options{Kernel: b.kernel, Initrd: b.initrd, Cmdline: b.cmdline(slot), OSRelease: osr, Uname: b.kver, Arch: b.arch.Name})
	if err != nil {
		return nil, fmt.Errorf("UKI: %w", err)
	}
	if b.ukis == nil {
		b.ukis = map[string][]byte{}
	}
	b.ukis[slot] = img
	return img, nil
}

// syslinuxCfg fills the per-arch boot menu with the command line.
func (b *archBuild) syslinuxCfg(name, slot string) ([]byte, error) {
	tmpl, err := b.arch.File(name)
	if err != nil {
		return nil, err
	}
	return []byte(strings.ReplaceAll(string(tmpl), "@CMDLINE@", b.cmdline(slot))), nil
}

// espTree is the EFI system partition content for a slot.
func (b *archBuild) espTree(slot string) (*fstree.Tree, error) {
	t := fstree.New()
	img, err := b.uki(slot)
	if err != nil {
		return nil, err
	}
	if err := t.AddFile(b.arch.EFIBootFile, 0o644, img); err != nil {
		return nil, err
	}
	return t, nil
}

// writeISO writes the hybrid ISO: isolinux for BIOS, the ESP image for UEFI,
// and the system squashfs as a file the initramfs finds by volume label.
func (b *archBuild) writeISO(path string) error {
	done := b.stage("iso")
	t := fstree.New()
	if err := t.AddHostFile("kiln/system.sqfs", 0o644, b.sqfs); err != nil {
		return err
	}
	esp, err := b.espTree("")
	if err != nil {
		return err
	}
	espImg := filepath.Join(b.tmp, "efiboot.img")
	espSize := roundUp(fat.MinSize(esp, 0)+512*1024, 1<<20)
	if err := writeFAT(espImg, esp, espSize, "KILN-EFI", b.volumeID("iso-esp"), b.o.Epoch); err != nil {
		return fmt.Errorf("ISO EFI image: %w", err)
	}
	if err := t.AddHostFile("boot/efi.img", 0o644, espImg); err != nil {
		return err
	}
	opts := iso9660.Options{VolumeID: b.p.VolumeLabel, ModTime: b.o.Epoch, Hybrid: true, EFI: &iso9660.EFIBoot{Image: "boot/efi.img"}}
	if b.arch.BIOS {
		isolinux, err := b.in.bootFile(b.arch.ISOLinux)
		if err != nil {
			return err
		}
		ldlinux, err := b.in.bootFile(b.arch.LDLinux)
		if err != nil {
			return err
		}
		mbrPath, err := b.in.bootFile(b.arch.ISOHybridMBR)
		if err != nil {
			return err
		}
		mbr, err := os.ReadFile(mbrPath)
		if err != nil {
			return err
		}
		cfg, err := b.syslinuxCfg("isolinux.cfg", "")
		if err != nil {
			return err
		}
		for _, f := range []struct {
			p   string
			err error
		}{
			{"isolinux/isolinux.bin", t.AddHostFile("isolinux/isolinux.bin", 0o644, isolinux)},
			{"isolinux/ldlinux.c32", t.AddHostFile("isolinux/ldlinux.c32", 0o644, ldlinux)},
			{"isolinux/isolinux.cfg", t.AddFile("isolinux/isolinux.cfg", 0o644, cfg)},
			{"boot/vmlinuz", t.AddFile("boot/vmlinuz", 0o644, b.kernel)},
			{"boot/initrd.img", t.AddFile("boot/initrd.img", 0o644, b.initrd)},
		} {
			if f.err != nil {
				return fmt.Errorf("ISO %s: %w", f.p, f.err)
			}
		}
		opts.BIOS = &iso9660.BIOSBoot{Image: "isolinux/isolinux.bin", Catalog: "isolinux/boot.cat", MBR: mbr}
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	n, err := iso9660.Write(f, t, opts)
	if err != nil {
		return fmt.Errorf("ISO: %w", err)
	}
	if err := f.Truncate(n); err != nil {
		return err
	}
	boots := "UEFI"
	if b.arch.BIOS {
		boots = "BIOS+UEFI"
	}
	done(n, fmt.Sprintf("ISO9660+Rock Ridge, El Torito %s, hybrid MBR/GPT, label %s", boots, b.p.VolumeLabel))
	return f.Close()
}

// volumeID derives a FAT serial number from names.
func (b *archBuild) volumeID(what string) uint32 {
	g := gpt.NameGUID(b.p.Name, b.p.Version, b.arch.Name, what)
	return uint32(g[0]) | uint32(g[1])<<8 | uint32(g[2])<<16 | uint32(g[3])<<24
}

func writeFAT(path string, t *fstree.Tree, size int64, label string, id uint32, epoch int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		return err
	}
	if err := writeFATTo(f, t, fat.Options{Size: size, Label: label, VolumeID: id, ModTime: epoch}); err != nil {
		return err
	}
	return f.Close()
}

func writeFATTo(w io.WriterAt, t *fstree.Tree, o fat.Options) error {
	return fat.Write(w, t, o)
}

// writePXE writes the kernel, initramfs, command line and an iPXE script.
func (b *archBuild) writePXE() ([]string, error) {
	done := b.stage("pxe")
	base := filepath.Join(b.tmp, BaseName(b.p, b.arch.Name))
	kernel, err := gunzipIfNeeded(b.kernel)
	if err != nil {
		return nil, err
	}
	name := filepath.Base(base)
	script := fmt.Sprintf("#!ipxe\n# kiln %s %s %s: serve these files next to this script.\nkernel %s.vmlinuz %s\ninitrd %s.initrd\nboot\n",
		b.p.Name, b.p.Version, b.arch.Name, name, b.cmdline(""), name)
	files := map[string][]byte{
		base + ".vmlinuz": kernel,
		base + ".initrd":  b.initrd,
		base + ".cmdline": []byte(b.cmdline("") + "\n"),
		base + ".ipxe":    []byte(script),
	}
	var out []string
	var total int64
	for _, p := range []string{base + ".vmlinuz", base + ".initrd", base + ".cmdline", base + ".ipxe"} {
		if err := os.WriteFile(p, files[p], 0o644); err != nil {
			return nil, err
		}
		total += int64(len(files[p]))
		out = append(out, p)
	}
	done(total, "kernel, initramfs, cmdline, iPXE script")
	return out, nil
}
