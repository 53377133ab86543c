package uki

import (
	"encoding/binary"
	"fmt"
)

// PE/COFF layout constants (Microsoft PE/COFF specification).
const (
	coffHeaderLen    = 20
	sectionHeaderLen = 40

	magicPE32     = 0x10b
	magicPE32Plus = 0x20b

	machineAMD64 = 0x8664
	machineARM64 = 0xaa64

	// Offsets inside the optional header; identical for PE32 and PE32+ up to CheckSum.
	optSizeOfInitializedData = 8
	optSectionAlignment      = 32
	optFileAlignment         = 36
	optSizeOfImage           = 56
	optSizeOfHeaders         = 60
	optCheckSum              = 64

	dirSecurity = 4 // data directory index of the Authenticode certificate table

	scnCntInitializedData = 0x00000040
	scnMemRead            = 0x40000000
)

var le = binary.LittleEndian

// peImage is the parsed header view of a PE file held in buf. Offsets are
// file offsets into buf so fields can be rewritten in place.
type peImage struct {
	buf        []byte
	coff       int // file offset of the COFF file header (after "PE\0\0")
	opt        int // file offset of the optional header
	optSize    int
	sectTable  int // file offset of the first section header
	nSections  int
	machine    uint16
	magic      uint16
	sectAlign  uint32
	fileAlign  uint32
	sizeHeader uint32
}

type sectionHeader struct {
	Name             string
	VirtualSize      uint32
	VirtualAddress   uint32
	SizeOfRawData    uint32
	PointerToRawData uint32
	Characteristics  uint32
}

func parsePE(buf []byte) (*peImage, error) {
	if len(buf) < 0x40 || buf[0] != 'M' || buf[1] != 'Z' {
		return nil, fmt.Errorf("not a PE file: no MZ signature")
	}
	lfanew := int(le.Uint32(buf[0x3c:]))
	if lfanew < 0x40 || lfanew+4+coffHeaderLen > len(buf) || string(buf[lfanew:lfanew+4]) != "PE\x00\x00" {
		return nil, fmt.Errorf("not a PE file: no PE signature at e_lfanew 0x%x", lfanew)
	}
	p := &peImage{buf: buf, coff: lfanew + 4}
	p.machine = le.Uint16(buf[p.coff:])
	p.nSections = int(le.Uint16(buf[p.coff+2:]))
	p.optSize = int(le.Uint16(buf[p.coff+16:]))
	p.opt = p.coff + coffHeaderLen
	if p.optSize < optCheckSum+4 || p.opt+p.optSize > len(buf) {
		return nil, fmt.Errorf("PE optional header too short (%d bytes)", p.optSize)
	}
	p.magic = le.Uint16(buf[p.opt:])
	if p.magic != magicPE32 && p.magic != magicPE32Plus {
		return nil, fmt.Errorf("PE optional header magic 0x%x is neither PE32 nor PE32+", p.magic)
	}
	p.sectAlign = le.Uint32(buf[p.opt+optSectionAlignment:])
	p.fileAlign = le.Uint32(buf[p.opt+optFileAlignment:])
	p.sizeHeader = le.Uint32(buf[p.opt+optSizeOfHeaders:])
	if !pow2(p.sectAlign) || !pow2(p.fileAlign) {
		return nil, fmt.Errorf("PE SectionAlignment 0x%x / FileAlignment 0x%x not a power of two", p.sectAlign, p.fileAlign)
	}
	p.sectTable = p.opt + p.optSize
	if p.sectTable+p.nSections*sectionHeaderLen > len(buf) {
		return nil, fmt.Errorf("PE section table (%d sections) runs past the end of the file", p.nSections)
	}
	return p, nil
}

func pow2(v uint32) bool { return v != 0 && v&(v-1) == 0 }

func (p *peImage) section(i int) sectionHeader {
	b := p.buf[p.sectTable+i*sectionHeaderLen:]
	name := b[:8]
	for j, c := range name {
		if c == 0 {
			name = name[:j]
			break
		}
	}
	return sectionHeader{
		Name:             string(name),
		VirtualSize:      le.Uint32(b[8:]),
		VirtualAddress:   le.Uint32(b[12:]),
		SizeOfRawData:    le.Uint32(b[16:]),
		PointerToRawData: le.Uint32(b[20:]),
		Characteristics:  le.Uint32(b[36:]),
	}
}

func (s sectionHeader) put(b []byte) {
	clear(b[:sectionHeaderLen])
	copy(b[:8], s.Name)
	le.PutUint32(b[8:], s.VirtualSize)
	le.PutUint32(b[12:], s.VirtualAddress)
	le.PutUint32(b[16:], s.SizeOfRawData)
	le.PutUint32(b[20:], s.PointerToRawData)
	le.PutUint32(b[36:], s.Characteristics)
}

// dataDir returns the file offset of data directory entry i, or -1 if absent.
func (p *peImage) dataDir(i int) int {
	countOff, dirOff := 92, 96
	if p.magic == magicPE32Plus {
		countOff, dirOff = 108, 112
	}
	if p.optSize < dirOff || i >= int(le.Uint32(p.buf[p.opt+countOff:])) || dirOff+(i+1)*8 > p.optSize {
		return -1
	}
	return p.opt + dirOff + i*8
}

// setChecksum stores the PE image checksum (the algorithm of imagehlp's
// CheckSumMappedFile): the file summed as little-endian 16-bit words with the
// carry folded back in, with the CheckSum field counted as zero, plus the
// file length.
func (p *peImage) setChecksum() {
	off := p.opt + optCheckSum
	le.PutUint32(p.buf[off:], 0)
	le.PutUint32(p.buf[off:], checksum(p.buf))
}

func checksum(buf []byte) uint32 {
	var sum uint64
	for i := 0; i < len(buf); i += 2 {
		w := uint64(buf[i])
		if i+1 < len(buf) {
			w |= uint64(buf[i+1]) << 8
		}
		sum += w
		sum = (sum & 0xffff) + (sum >> 16)
	}
	sum = (sum & 0xffff) + (sum >> 16)
	return uint32(sum) + uint32(len(buf))
}

func alignUp(v, a uint32) uint32 { return (v + a - 1) &^ (a - 1) }
