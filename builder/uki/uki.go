// Package uki assembles a Unified Kernel Image: the systemd EFI stub with the
// kernel, initramfs, command line and os-release appended as PE sections, so
// UEFI firmware boots one signed-able file with no bootloader config.
//
// Layout follows what systemd's ukify does: each new section goes after the
// stub's last section at the next SectionAlignment boundary, its raw data at
// the end of the file padded to FileAlignment, in the order .osrel, .cmdline,
// .uname, .initrd, .linux. The output depends only on the inputs.
package uki

import (
	"bytes"
	"compress/gzip"
	"debug/pe"
	"fmt"
	"io"
)

// Options are the payloads of the UKI. Empty optional payloads get no section.
type Options struct {
	Kernel    []byte // PE kernel image (bzImage on amd64, Image on arm64; gzip-compressed is accepted)
	Initrd    []byte // initramfs (cpio, possibly compressed)
	Cmdline   string // kernel command line
	OSRelease string // contents of os-release, shown by boot menus
	Uname     string // kernel release (uname -r)
	Arch      string // amd64 or arm64: must match the stub and the kernel
}

var machines = map[string]uint16{"amd64": machineAMD64, "arm64": machineARM64}

// Build returns stub with the payloads of o appended as sections.
func Build(stub []byte, o Options) ([]byte, error) {
	want, ok := machines[o.Arch]
	if !ok {
		return nil, fmt.Errorf("uki: Options.Arch %q: want amd64 or arm64", o.Arch)
	}
	buf := bytes.Clone(stub)
	p, err := parsePE(buf)
	if err != nil {
		return nil, fmt.Errorf("uki: stub: %w", err)
	}
	if p.machine != want {
		return nil, fmt.Errorf("uki: stub is for PE machine 0x%x, Options.Arch %s needs 0x%x", p.machine, o.Arch, want)
	}
	if err := p.dropSignature(); err != nil {
		return nil, fmt.Errorf("uki: stub: %w", err)
	}
	buf = p.buf
	kernel, err := kernelImage(o.Kernel, want)
	if err != nil {
		return nil, err
	}

	type payload struct {
		name string
		data []byte
	}
	var add []payload
	for _, s := range []payload{
		{".osrel", []byte(o.OSRelease)},
		{".cmdline", []byte(o.Cmdline)},
		{".uname", []byte(o.Uname)},
		{".initrd", o.Initrd},
		{".linux", kernel},
	} {
		if len(s.data) > 0 {
			add = append(add, s)
		}
	}

	// The stub's own sections: find where the image ends and where raw data starts.
	var vEnd uint32
	firstRaw := p.sizeHeader
	for i := 0; i < p.nSections; i++ {
		s := p.section(i)
		for _, a := range add {
			if s.Name == a.name {
				return nil, fmt.Errorf("uki: stub already has a %s section (is it a UKI already?)", s.Name)
			}
		}
		size := s.VirtualSize
		if size == 0 {
			size = s.SizeOfRawData
		}
		vEnd = max(vEnd, s.VirtualAddress+size)
		if s.SizeOfRawData > 0 && s.PointerToRawData < firstRaw {
			firstRaw = s.PointerToRawData
		}
	}
	// Room for the new section headers must already exist between the section
	// table and the first section's data; moving sections would break the stub.
	tableEnd := p.sectTable + p.nSections*sectionHeaderLen
	need := tableEnd + len(add)*sectionHeaderLen
	if need > int(firstRaw) {
		return nil, fmt.Errorf("uki: stub headers have room for %d more section headers, need %d (SizeOfHeaders 0x%x, section table ends at 0x%x)",
			(int(firstRaw)-tableEnd)/sectionHeaderLen, len(add), p.sizeHeader, tableEnd)
	}
	// The space may hold linker fill (the arm64 stub pads with NOPs); it is
	// only in use if a data directory points into it.
	for i := 0; i < 16; i++ {
		d := p.dataDir(i)
		if d < 0 || i == dirSecurity {
			continue
		}
		rva, size := le.Uint32(buf[d:]), le.Uint32(buf[d+4:])
		if size != 0 && rva < uint32(need) && rva+size > uint32(tableEnd) {
			return nil, fmt.Errorf("uki: stub header space after the section table (0x%x-0x%x) is used by data directory %d", tableEnd, need, i)
		}
	}

	va := max(alignUp(vEnd, p.sectAlign), le.Uint32(buf[p.opt+optSizeOfImage:]))
	initData := le.Uint32(buf[p.opt+optSizeOfInitializedData:])
	for i, a := range add {
		if uint64(len(a.data))+uint64(len(buf))+uint64(va) > 1<<32-1<<20 {
			return nil, fmt.Errorf("uki: %s section (%d bytes) does not fit a 32-bit PE image", a.name, len(a.data))
		}
		va = alignUp(va, p.sectAlign)
		size := uint32(len(a.data))
		raw := alignUp(uint32(len(buf)), p.fileAlign)
		s := sectionHeader{
			Name:             a.name,
			VirtualSize:      size,
			VirtualAddress:   va,
			SizeOfRawData:    alignUp(size, p.fileAlign),
			PointerToRawData: raw,
			Characteristics:  scnCntInitializedData | scnMemRead,
		}
		buf = append(buf, make([]byte, int(raw)-len(buf))...)
		buf = append(buf, a.data...)
		buf = append(buf, make([]byte, int(s.SizeOfRawData-size))...)
		s.put(buf[tableEnd+i*sectionHeaderLen:])
		initData += size
		va += size
	}
	p.buf = buf
	le.PutUint16(buf[p.coff+2:], uint16(p.nSections+len(add)))
	le.PutUint32(buf[p.opt+optSizeOfInitializedData:], initData)
	le.PutUint32(buf[p.opt+optSizeOfImage:], alignUp(va, p.sectAlign))
	p.setChecksum()
	return buf, nil
}

// dropSignature removes an Authenticode certificate table: appending
// sections invalidates it, and the UKI is signed as a whole afterwards.
func (p *peImage) dropSignature() error {
	d := p.dataDir(dirSecurity)
	if d < 0 {
		return nil
	}
	off, size := le.Uint32(p.buf[d:]), le.Uint32(p.buf[d+4:])
	if size == 0 {
		return nil
	}
	if uint64(off)+uint64(size) != uint64(len(p.buf)) {
		return fmt.Errorf("certificate table at 0x%x+0x%x is not at the end of the file", off, size)
	}
	p.buf = p.buf[:off]
	clear(p.buf[d : d+8])
	return nil
}

// kernelImage returns the kernel as the PE image the stub loads, inflating a
// gzip-compressed one (Debian's arm64 vmlinuz is a gzipped Image).
func kernelImage(k []byte, machine uint16) ([]byte, error) {
	if len(k) == 0 {
		return nil, fmt.Errorf("uki: Options.Kernel is empty")
	}
	if len(k) > 2 && k[0] == 0x1f && k[1] == 0x8b {
		zr, err := gzip.NewReader(bytes.NewReader(k))
		if err != nil {
			return nil, fmt.Errorf("uki: kernel: gzip: %w", err)
		}
		if k, err = io.ReadAll(zr); err != nil {
			return nil, fmt.Errorf("uki: kernel: gzip: %w", err)
		}
	}
	kp, err := parsePE(k)
	if err != nil {
		return nil, fmt.Errorf("uki: kernel is not an EFI-stub kernel (the stub needs a PE image): %w", err)
	}
	if kp.machine != machine {
		return nil, fmt.Errorf("uki: kernel is for PE machine 0x%x, stub is 0x%x", kp.machine, machine)
	}
	return k, nil
}

// Sections returns the content of every section of a PE file (a UKI or a
// stub), trimmed to its VirtualSize so appended payloads round-trip exactly.
func Sections(uki []byte) (map[string][]byte, error) {
	f, err := pe.NewFile(bytes.NewReader(uki))
	if err != nil {
		return nil, fmt.Errorf("uki: %w", err)
	}
	defer f.Close()
	out := make(map[string][]byte, len(f.Sections))
	for _, s := range f.Sections {
		if _, dup := out[s.Name]; dup {
			return nil, fmt.Errorf("uki: section %s appears twice", s.Name)
		}
		data, err := s.Data()
		if err != nil {
			return nil, fmt.Errorf("uki: section %s: %w", s.Name, err)
		}
		if s.VirtualSize != 0 && int(s.VirtualSize) < len(data) {
			data = data[:s.VirtualSize]
		}
		out[s.Name] = data
	}
	return out, nil
}
