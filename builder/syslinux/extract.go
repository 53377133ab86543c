// Package syslinux installs the SYSLINUX BIOS boot loader onto a FAT volume
// image without mounting it or running syslinux: it writes ldlinux.sys,
// ldlinux.c32 and syslinux.cfg into the ESP tree, then patches ldlinux.sys
// with its own sector list and merges syslinux's boot sector code into the
// FAT's boot sector, as syslinux's libinstaller (syslxmod.c, setadv.c,
// syslinux_make_bootsect) does.
//
// Debian ships ldlinux.sys and the FAT boot sector (ldlinux.bss) only as
// byte arrays linked into the installer /usr/bin/syslinux. Extract finds them
// there by their own signatures and cross-checks their lengths against the
// installer's length constants; nothing is executed.
package syslinux

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
)

var le = binary.LittleEndian

const (
	sectorSize   = 512
	ldlinuxMagic = 0x3eb202fe // LDLINUX_MAGIC: patch area of ldlinux.sys, bsMagic of the boot sector
	advSectors   = 2          // ldlinux.sys ends with two copies of the ADV
	banner       = "\r\nSYSLINUX "

	// The installer's patch-target placeholders in ldlinux.bss: the 64-bit
	// LBA of ldlinux.sys's first sector is loaded with two mov imm32.
	sect1Placeholder0 = 0xdeadbeef
	sect1Placeholder1 = 0xfeedface
)

// Offsets inside struct patch_area (syslxint.h).
const (
	paMagic       = 0
	paInstance    = 4
	paDataSectors = 8
	paAdvSectors  = 10
	paDwords      = 12
	paChecksum    = 16
	paMaxTransfer = 20
	paEPAOffset   = 22
	paSize        = 24
)

// extPatchArea is struct ext_patch_area (syslxint.h): offsets into
// ldlinux.sys, except sect1ptr0/1 and raidpatch which point into the boot sector.
type extPatchArea struct {
	advPtrOffset uint16
	dirOffset    uint16
	dirLen       uint16
	subvolOffset uint16
	subvolLen    uint16
	secPtrOffset uint16
	secPtrCnt    uint16
	sect1Ptr0    uint16
	sect1Ptr1    uint16
	raidPatch    uint16
}

const extentSize = 10 // struct syslinux_extent: u64 lba, u16 len (packed)

// Loader is SYSLINUX for BIOS, taken apart from a Debian installer binary.
type Loader struct {
	// WriteBackupBootSector also writes the merged boot sector over the
	// FAT32 backup boot sector, which syslinux itself leaves alone.
	WriteBackupBootSector bool

	bootSector []byte // ldlinux.bss, 512 bytes, unpatched
	image      []byte // ldlinux.sys without the ADV, a whole number of sectors, unpatched
	c32        []byte // ldlinux.c32 to install next to ldlinux.sys
	pa         int    // offset of the patch area in image
	epa        extPatchArea
	version    string
}

// Extract finds ldlinux.bss and ldlinux.sys inside installer (the bytes of
// Debian's /usr/bin/syslinux) and pairs them with ldlinuxC32 (Debian's
// /usr/lib/syslinux/modules/bios/ldlinux.c32). The installer also embeds the
// ldlinux.c32 built with its ldlinux.sys: ldlinuxC32 must import no symbol
// that copy does not (the core resolves them by name when it loads the
// module), and a nil ldlinuxC32 means "use the embedded copy".
func Extract(installer []byte, ldlinuxC32 []byte) (*Loader, error) {
	bs, err := findBootSector(installer)
	if err != nil {
		return nil, err
	}
	img, imgEnd, err := findImage(installer)
	if err != nil {
		return nil, err
	}
	l := &Loader{bootSector: bs, image: img}
	if err := l.parse(); err != nil {
		return nil, err
	}
	embedded, err := findELF(installer, imgEnd)
	if err != nil {
		return nil, fmt.Errorf("syslinux: installer: embedded ldlinux.c32: %w", err)
	}
	if ldlinuxC32 == nil {
		l.c32 = embedded
	} else {
		if err := compatible(ldlinuxC32, embedded); err != nil {
			return nil, fmt.Errorf("syslinux: ldlinux.c32 does not match the installer's ldlinux.sys %s: %w", l.version, err)
		}
		l.c32 = slices.Clone(ldlinuxC32)
	}
	return l, nil
}

// Version is the SYSLINUX version from ldlinux.sys's banner, e.g. "6.04".
func (l *Loader) Version() string { return l.version }

// findBootSector looks for ldlinux.bss: a short jump over the BPB, NOP,
// LDLINUX_MAGIC in bsMagic (offset 504) and 0x55AA at 510.
func findBootSector(b []byte) ([]byte, error) {
	var found []byte
	for i := 0; i+sectorSize <= len(b); i++ {
		if b[i] != 0xEB || b[i+2] != 0x90 || b[i+510] != 0x55 || b[i+511] != 0xAA ||
			le.Uint32(b[i+504:]) != ldlinuxMagic {
			continue
		}
		s := b[i : i+sectorSize]
		if found != nil && !bytes.Equal(found, s) {
			return nil, errors.New("syslinux: installer holds two different FAT boot sectors (ldlinux.bss)")
		}
		found = s
	}
	if found == nil {
		return nil, errors.New("syslinux: installer: no FAT boot sector (ldlinux.bss: EB xx 90 jump, LDLINUX_MAGIC at 504, 55AA at 510) found; is this syslinux's /usr/bin/syslinux?")
	}
	return slices.Clone(found), nil
}

// findImage looks for ldlinux.sys: it starts with the "\r\nSYSLINUX "
// banner and holds LDLINUX_MAGIC (the patch area) in its first sector. Its
// length is not recorded in the image, so the candidates are the installer's
// 32-bit constants (syslinux_ldlinux_len sits in .rodata) that are a whole
// number of sectors and end the image right after the LZO end-of-stream
// marker (11 00 00) of its compressed core plus less than a sector of zero
// padding. Exactly one must fit.
func findImage(b []byte) ([]byte, int, error) {
	start := -1
	for i := 0; ; {
		j := bytes.Index(b[i:], []byte(banner))
		if j < 0 {
			break
		}
		s := i + j
		if end := min(len(b), s+sectorSize); bytes.Contains(b[s:end], le.AppendUint32(nil, ldlinuxMagic)) {
			if start >= 0 {
				return nil, 0, errors.New("syslinux: installer holds more than one ldlinux.sys image")
			}
			start = s
		}
		i = s + 1
	}
	if start < 0 {
		return nil, 0, errors.New("syslinux: installer: no ldlinux.sys image (\"\\r\\nSYSLINUX \" banner with LDLINUX_MAGIC in its first sector) found")
	}
	var lens []int
	seen := map[int]bool{}
	for i := 0; i+4 <= len(b); i += 4 {
		n := int(le.Uint32(b[i:]))
		if n < 4*sectorSize || n%sectorSize != 0 || start+n > len(b) || seen[n] {
			continue
		}
		seen[n] = true
		if lzoTail(b[start : start+n]) {
			lens = append(lens, n)
		}
	}
	switch len(lens) {
	case 0:
		return nil, 0, fmt.Errorf("syslinux: installer: ldlinux.sys found at offset %#x, but no length constant ends it after its compressed core", start)
	case 1:
	default:
		return nil, 0, fmt.Errorf("syslinux: installer: ldlinux.sys at offset %#x: ambiguous lengths %v", start, lens)
	}
	return slices.Clone(b[start : start+lens[0]]), start + lens[0], nil
}

// lzoTail reports whether img ends with an LZO end-of-stream marker followed
// by less than one sector of zero padding.
func lzoTail(img []byte) bool {
	last := len(img) - 1
	for last >= 0 && img[last] == 0 {
		last--
	}
	// The marker is 11 00 00: the last non-zero byte is its 0x11.
	return last >= 0 && img[last] == 0x11 && len(img)-last >= 3 && len(img)-last-3 < sectorSize
}

// parse reads and checks the patch areas of the image and the boot sector.
func (l *Loader) parse() error {
	img := l.image
	pa := bytes.Index(img[:sectorSize], le.AppendUint32(nil, ldlinuxMagic))
	if pa < 0 || pa+paSize > sectorSize {
		return errors.New("syslinux: ldlinux.sys: patch area is not in the first sector")
	}
	l.pa = pa
	rest := strings.TrimPrefix(string(img[:pa]), banner)
	l.version, _, _ = strings.Cut(rest, " ")
	if l.version == "" || strings.ContainsAny(l.version, "\x00\r\n") {
		return fmt.Errorf("syslinux: ldlinux.sys: no version in banner %q", img[:pa])
	}
	off := int(le.Uint16(img[pa+paEPAOffset:]))
	if off+20 > len(img) {
		return fmt.Errorf("syslinux: ldlinux.sys: extended patch area offset %#x is past the image (%d bytes)", off, len(img))
	}
	f := make([]uint16, 10)
	for i := range f {
		f[i] = le.Uint16(img[off+2*i:])
	}
	l.epa = extPatchArea{f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7], f[8], f[9]}
	e := l.epa
	for _, r := range []struct {
		what     string
		off, len int
		limit    int
	}{
		{"ADV pointers", int(e.advPtrOffset), 16, len(img)},
		{"directory field", int(e.dirOffset), int(e.dirLen), len(img)},
		{"subvolume field", int(e.subvolOffset), int(e.subvolLen), len(img)},
		{"sector extents", int(e.secPtrOffset), int(e.secPtrCnt) * extentSize, len(img)},
		{"boot sector sect1ptr0", int(e.sect1Ptr0), 4, 504},
		{"boot sector sect1ptr1", int(e.sect1Ptr1), 4, 504},
		{"boot sector raidpatch", int(e.raidPatch), 2, 504},
	} {
		if r.off+r.len > r.limit {
			return fmt.Errorf("syslinux: ldlinux.sys: extended patch area: %s at %#x+%d is outside its %d-byte target", r.what, r.off, r.len, r.limit)
		}
	}
	if e.secPtrCnt == 0 {
		return errors.New("syslinux: ldlinux.sys: extended patch area has no room for sector extents")
	}
	// The boot sector and ldlinux.sys must come from one build: the
	// offsets ldlinux.sys gives must land on ldlinux.bss's placeholders.
	if le.Uint32(l.bootSector[e.sect1Ptr0:]) != sect1Placeholder0 || le.Uint32(l.bootSector[e.sect1Ptr1:]) != sect1Placeholder1 {
		return fmt.Errorf("syslinux: ldlinux.bss has no %#x/%#x placeholders at sect1ptr %#x/%#x given by ldlinux.sys: boot sector and ldlinux.sys do not match",
			sect1Placeholder0, sect1Placeholder1, e.sect1Ptr0, e.sect1Ptr1)
	}
	return nil
}

// findELF returns the first 32-bit x86 ELF object at or after from, sized by
// its section header table (which ld puts last).
func findELF(b []byte, from int) ([]byte, error) {
	i := bytes.Index(b[from:], []byte("\x7fELF\x01\x01\x01"))
	if i < 0 {
		return nil, errors.New("no 32-bit ELF object after ldlinux.sys")
	}
	s := b[from+i:]
	if len(s) < 52 {
		return nil, errors.New("truncated ELF header")
	}
	n := int(le.Uint32(s[32:])) + int(le.Uint16(s[46:]))*int(le.Uint16(s[48:]))
	if n > len(s) || n < 52 {
		return nil, fmt.Errorf("ELF object at %#x claims %d bytes", from+i, n)
	}
	return slices.Clone(s[:n]), nil
}

// compatible checks that c32 is an i386 ELF module importing only symbols
// that the reference module (built with the core) imports too.
func compatible(c32, ref []byte) error {
	want, err := imports(ref)
	if err != nil {
		return fmt.Errorf("installer's copy: %w", err)
	}
	got, err := imports(c32)
	if err != nil {
		return err
	}
	var missing []string
	for s := range got {
		if !want[s] {
			missing = append(missing, s)
		}
	}
	slices.Sort(missing)
	if len(missing) > 0 {
		return fmt.Errorf("it imports %d symbol(s) the core may not export: %s", len(missing), strings.Join(missing[:min(5, len(missing))], ", "))
	}
	return nil
}

func imports(b []byte) (map[string]bool, error) {
	f, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	if f.Class != elf.ELFCLASS32 || f.Machine != elf.EM_386 || f.Type != elf.ET_DYN {
		return nil, fmt.Errorf("not an i386 ELF shared module (%v %v %v)", f.Class, f.Machine, f.Type)
	}
	syms, err := f.DynamicSymbols()
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, s := range syms {
		if s.Section == elf.SHN_UNDEF && s.Name != "" {
			out[s.Name] = true
		}
	}
	return out, nil
}
