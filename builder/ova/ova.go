// Package ova packages a streamOptimized VMDK as an OVA: a USTAR tar holding
// the OVF 1.0 descriptor first, then the disk, then the SHA-256 manifest,
// which is the order VMware and VirtualBox expect when they stream an import.
//
// The tar headers are fixed (mode 0644, uid/gid 0, mtime from Options), so
// the same disk and options give the same bytes.
package ova

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"os"
	"regexp"
	"time"
)

// Property is one OVF ProductSection property: with the
// "com.vmware.guestInfo" transport it reaches the guest as
// guestinfo.<key> (or inside the OVF environment on the "iso" transport).
type Property struct {
	Key              string
	Type             string // OVF type: "string", "boolean", "uint16", ...; default "string"
	Default          string
	Label            string
	Description      string
	UserConfigurable bool
}

// Options describe the appliance. Zero values take the documented defaults.
type Options struct {
	Name     string // VM and file name stem: <Name>.ovf, <Name>-disk1.vmdk, <Name>.mf
	VMDKPath string // host path of the streamOptimized VMDK to embed

	DiskCapacity      int64 // virtual disk size in bytes; 0 reads it from the VMDK header
	VMDKPopulatedSize int64 // bytes of guest data in the VMDK; 0 omits ovf:populatedSize

	CPUs      int    // default 2
	MemoryMiB int    // default 2048
	UEFI      bool   // vmw:Config firmware=efi
	NICs      int    // default 1
	NICType   string // "vmxnet3" (default) or "E1000"
	// Controller is the disk controller: "lsilogic" (default), "pvscsi" or "sata".
	Controller string
	// Properties for the ProductSection; nil means DefaultProperties().
	Properties []Property
	// ModTime is the tar mtime (Unix seconds, e.g. SOURCE_DATE_EPOCH).
	ModTime int64
	// OSType is vmw:osType; default "other5xLinux64Guest" (use
	// "arm-other5xLinux64Guest"-style ids for arm64 as the target host names them).
	OSType string
	// HardwareVersion is the VMware virtual hardware family; default "vmx-13".
	HardwareVersion string
	Product         string // ProductSection Product; default "kiln"
	Version         string // ProductSection Version; optional
}

// DefaultProperties are the seed channels initd reads on VMware.
func DefaultProperties() []Property {
	return []Property{
		{Key: "guestinfo.userdata", Label: "User data", Description: "Machine config / cloud-config user-data, encoded as set in guestinfo.userdata.encoding.", UserConfigurable: true},
		{Key: "guestinfo.userdata.encoding", Label: "User data encoding", Description: "Encoding of the user data: empty for plain text, base64 or gzip+base64.", UserConfigurable: true},
		{Key: "guestinfo.metadata", Label: "Metadata", Description: "Instance metadata (network config, instance id), encoded as set in guestinfo.metadata.encoding.", UserConfigurable: true},
		{Key: "guestinfo.metadata.encoding", Label: "Metadata encoding", Description: "Encoding of the metadata: empty for plain text, base64 or gzip+base64.", UserConfigurable: true},
		{Key: "hostname", Label: "Hostname", Description: "Hostname of the node; empty keeps the one from the seed or a generated one.", UserConfigurable: true},
	}
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// Write streams the OVA to dst.
func Write(dst io.Writer, o Options) error {
	if err := o.defaults(); err != nil {
		return err
	}
	if o.VMDKPath == "" {
		return fmt.Errorf("ova: VMDKPath is empty")
	}
	f, err := os.Open(o.VMDKPath)
	if err != nil {
		return fmt.Errorf("ova: opening VMDKPath: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("ova: %s: %w", o.VMDKPath, err)
	}
	if o.DiskCapacity == 0 {
		if o.DiskCapacity, err = vmdkCapacity(f); err != nil {
			return err
		}
	}
	diskName := o.Name + "-disk1.vmdk"
	ovf, err := OVF(o, diskName, st.Size())
	if err != nil {
		return err
	}

	tw := tar.NewWriter(dst)
	var mf bytes.Buffer
	add := func(name string, size int64, r io.Reader) error {
		hdr := &tar.Header{
			Typeflag: tar.TypeReg,
			Name:     name,
			Mode:     0o644,
			Size:     size,
			ModTime:  time.Unix(o.ModTime, 0).UTC(),
			Format:   tar.FormatUSTAR,
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("ova: tar header for %s: %w", name, err)
		}
		h := sha256.New()
		n, err := io.Copy(tw, io.TeeReader(r, h))
		if err != nil {
			return fmt.Errorf("ova: writing %s: %w", name, err)
		}
		if n != size {
			return fmt.Errorf("ova: %s: copied %d bytes, expected %d (file changed?)", name, n, size)
		}
		writeManifestLine(&mf, name, h)
		return nil
	}
	if err := add(o.Name+".ovf", int64(len(ovf)), bytes.NewReader(ovf)); err != nil {
		return err
	}
	if err := add(diskName, st.Size(), io.NewSectionReader(f, 0, st.Size())); err != nil {
		return err
	}
	manifest := mf.Bytes()
	if err := add(o.Name+".mf", int64(len(manifest)), bytes.NewReader(manifest)); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("ova: closing tar: %w", err)
	}
	return nil
}

// writeManifestLine appends the OVF manifest line "SHA256(file)= hex".
func writeManifestLine(b *bytes.Buffer, name string, h hash.Hash) {
	fmt.Fprintf(b, "SHA256(%s)= %s\n", name, hex.EncodeToString(h.Sum(nil)))
}

func (o *Options) defaults() error {
	if !nameRE.MatchString(o.Name) || len(o.Name)+len("-disk1.vmdk") > 100 {
		return fmt.Errorf("ova: Name %q: want letters, digits, '.', '_' or '-', at most 89 characters", o.Name)
	}
	if o.CPUs == 0 {
		o.CPUs = 2
	}
	if o.MemoryMiB == 0 {
		o.MemoryMiB = 2048
	}
	if o.NICs == 0 {
		o.NICs = 1
	}
	if o.CPUs < 0 || o.MemoryMiB < 0 || o.NICs < 0 || o.NICs > 10 {
		return fmt.Errorf("ova: CPUs %d, MemoryMiB %d, NICs %d: want positive counts, at most 10 NICs", o.CPUs, o.MemoryMiB, o.NICs)
	}
	if o.NICType == "" {
		o.NICType = "vmxnet3"
	}
	switch o.NICType {
	case "vmxnet3", "E1000":
	default:
		return fmt.Errorf("ova: NICType %q: want vmxnet3 or E1000", o.NICType)
	}
	if o.Controller == "" {
		o.Controller = "lsilogic"
	}
	switch o.Controller {
	case "lsilogic", "pvscsi", "sata":
	default:
		return fmt.Errorf("ova: Controller %q: want lsilogic, pvscsi or sata", o.Controller)
	}
	if o.Properties == nil {
		o.Properties = DefaultProperties()
	}
	o.Properties = append([]Property(nil), o.Properties...) // defaults below must not touch the caller's slice
	for i, p := range o.Properties {
		if p.Key == "" {
			return fmt.Errorf("ova: Properties[%d] has an empty Key", i)
		}
		if p.Type == "" {
			o.Properties[i].Type = "string"
		}
	}
	if o.OSType == "" {
		o.OSType = "other5xLinux64Guest"
	}
	if o.HardwareVersion == "" {
		o.HardwareVersion = "vmx-13"
	}
	if o.Product == "" {
		o.Product = "kiln"
	}
	return nil
}

// vmdkCapacity reads the capacity from a sparse extent header (sectors at
// offset 12, little endian).
func vmdkCapacity(r io.ReaderAt) (int64, error) {
	var h [20]byte
	if _, err := r.ReadAt(h[:], 0); err != nil {
		return 0, fmt.Errorf("ova: reading VMDK header: %w", err)
	}
	if string(h[:4]) != "KDMV" {
		return 0, fmt.Errorf("ova: VMDKPath is not a sparse VMDK (magic %q); set DiskCapacity", h[:4])
	}
	return int64(binary.LittleEndian.Uint64(h[12:])) * 512, nil
}
