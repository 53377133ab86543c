package iso9660

import (
	"io/fs"
	"time"

	"github.com/kilnproject/kiln/builder/fstree"
)

// System Use Sharing Protocol (SUSP 1.12) and Rock Ridge (RRIP 1.12) entries.
// Each entry is at most 255 bytes; longer names and link targets are split
// into several NM / SL entries with the CONTINUE flag.

const (
	ceLen      = 28
	maxEntry   = 255
	rrID       = "IEEE_1282"
	rrDesc     = "THE IEEE 1282 PROTOCOL PROVIDES SUPPORT FOR POSIX FILE SYSTEM SEMANTICS."
	rrSource   = "PLEASE CONTACT THE IEEE STANDARDS DEPARTMENT, PISCATAWAY, NJ, USA FOR THE 1282 SPECIFICATION."
	posixIFREG = 0o100000
	posixIFDIR = 0o040000
	posixIFLNK = 0o120000
	posixIFCHR = 0o020000
	posixIFBLK = 0o060000
	posixIFIFO = 0o010000
)

func suEntry(sig string, payload []byte) []byte {
	b := make([]byte, 4, 4+len(payload))
	b[0], b[1], b[2], b[3] = sig[0], sig[1], byte(4+len(payload)), 1
	return append(b, payload...)
}

// spEntry marks the root "." record as using SUSP (no bytes skipped).
func spEntry() []byte { return suEntry("SP", []byte{0xBE, 0xEF, 0}) }

// erEntry names the Rock Ridge extension (RRIP 1.12).
func erEntry() []byte {
	p := []byte{byte(len(rrID)), byte(len(rrDesc)), byte(len(rrSource)), 1}
	p = append(p, rrID...)
	p = append(p, rrDesc...)
	p = append(p, rrSource...)
	return suEntry("ER", p)
}

func ceEntry(lba, off, length uint32) []byte {
	p := make([]byte, 24)
	put733(p, lba)
	put733(p[8:], off)
	put733(p[16:], length)
	return suEntry("CE", p)
}

// posixMode converts an entry's kind and permissions to st_mode bits.
func posixMode(e *fstree.Entry) uint32 {
	m := uint32(e.Perm.Perm())
	if e.Perm&fs.ModeSetuid != 0 {
		m |= 0o4000
	}
	if e.Perm&fs.ModeSetgid != 0 {
		m |= 0o2000
	}
	if e.Perm&fs.ModeSticky != 0 {
		m |= 0o1000
	}
	switch e.Kind {
	case fstree.Dir:
		m |= posixIFDIR
	case fstree.Symlink:
		m |= posixIFLNK
	case fstree.CharDev:
		m |= posixIFCHR
	case fstree.BlockDev:
		m |= posixIFBLK
	case fstree.FIFO:
		m |= posixIFIFO
	default:
		m |= posixIFREG
	}
	return m
}

// pxEntry is RRIP 1.12 PX (44 bytes, with the file serial number).
func pxEntry(mode, nlink, uid, gid, serial uint32) []byte {
	p := make([]byte, 40)
	put733(p, mode)
	put733(p[8:], nlink)
	put733(p[16:], uid)
	put733(p[24:], gid)
	put733(p[32:], serial)
	return suEntry("PX", p)
}

// tfEntry records modify, access and attribute-change times (short form).
func tfEntry(t time.Time) []byte {
	d := recDate(t)
	p := []byte{0x0E}
	for i := 0; i < 3; i++ {
		p = append(p, d[:]...)
	}
	return suEntry("TF", p)
}

// pnEntry records a device number as high = major, low = minor, which is
// what Linux's Rock Ridge reader turns back into MKDEV(high, low).
// (xorriso reads the pair as one 64-bit dev_t and lists odd numbers.)
func pnEntry(major, minor uint32) []byte {
	p := make([]byte, 16)
	put733(p, major)
	put733(p[8:], minor)
	return suEntry("PN", p)
}

// nmEntries carries the real file name, split into CONTINUE pieces.
func nmEntries(name string) [][]byte {
	const room = maxEntry - 5
	var out [][]byte
	for {
		chunk, flags := name, byte(0)
		if len(chunk) > room {
			chunk, flags = name[:room], 1
		}
		out = append(out, suEntry("NM", append([]byte{flags}, chunk...)))
		name = name[len(chunk):]
		if name == "" {
			return out
		}
	}
}

// slEntries carries a symlink target as component records packed into SL entries.
func slEntries(target string) [][]byte {
	type comp struct {
		flags byte
		data  string
	}
	var comps []comp
	rest := target
	if len(rest) > 0 && rest[0] == '/' {
		comps = append(comps, comp{flags: 0x08})
	}
	const compRoom = maxEntry - 5 - 2
	for _, part := range splitSlash(rest) {
		switch part {
		case ".":
			comps = append(comps, comp{flags: 0x02})
		case "..":
			comps = append(comps, comp{flags: 0x04})
		default:
			for len(part) > compRoom {
				comps = append(comps, comp{flags: 0x01, data: part[:compRoom]})
				part = part[compRoom:]
			}
			comps = append(comps, comp{data: part})
		}
	}
	var out [][]byte
	var cur []byte
	flush := func(more bool) {
		f := byte(0)
		if more {
			f = 1
		}
		out = append(out, suEntry("SL", append([]byte{f}, cur...)))
		cur = nil
	}
	for _, c := range comps {
		rec := append([]byte{c.flags, byte(len(c.data))}, c.data...)
		if 5+len(cur)+len(rec) > maxEntry {
			flush(true)
		}
		cur = append(cur, rec...)
	}
	flush(false)
	return out
}

func splitSlash(s string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == '/' {
			if i > start {
				out = append(out, s[start:i])
			}
			start = i + 1
		}
	}
	return out
}

// suArea is one continuation area (SUSP CE target). Areas never cross a
// block boundary (Linux rejects those) and chain through a trailing CE.
type suArea struct {
	entries [][]byte
	next    *suArea
	blk     int // block index inside the continuation blocks
	off     int
}

func (a *suArea) size() int {
	n := 0
	for _, e := range a.entries {
		n += len(e)
	}
	if a.next != nil {
		n += ceLen
	}
	return n
}

// suPlan is the system use field of one directory record.
type suPlan struct {
	inline [][]byte
	cont   *suArea
}

func entriesLen(es [][]byte) int {
	n := 0
	for _, e := range es {
		n += len(e)
	}
	return n
}

// planSU keeps as many entries inline as fit in avail bytes and moves the
// rest to continuation areas.
func planSU(entries [][]byte, avail int) suPlan {
	if entriesLen(entries) <= avail {
		return suPlan{inline: entries}
	}
	i, used := 0, 0
	for i < len(entries) && used+len(entries[i])+ceLen <= avail {
		used += len(entries[i])
		i++
	}
	return suPlan{inline: entries[:i], cont: chainAreas(entries[i:])}
}

func chainAreas(entries [][]byte) *suArea {
	first := &suArea{}
	cur, used := first, 0
	for k, e := range entries {
		need := len(e)
		if k < len(entries)-1 {
			need += ceLen
		}
		if used+need > blockSize && len(cur.entries) > 0 {
			n := &suArea{}
			cur.next, cur, used = n, n, 0
		}
		cur.entries = append(cur.entries, e)
		used += len(e)
	}
	return first
}

func (p suPlan) inlineLen() int {
	n := entriesLen(p.inline)
	if p.cont != nil {
		n += ceLen
	}
	return n
}

// bytes encodes the inline part; ceBase is the LBA of the first continuation block.
func (p suPlan) bytes(ceBase uint32) []byte {
	var b []byte
	for _, e := range p.inline {
		b = append(b, e...)
	}
	if p.cont != nil {
		b = append(b, p.cont.ce(ceBase)...)
	}
	return b
}

func (a *suArea) ce(ceBase uint32) []byte {
	return ceEntry(ceBase+uint32(a.blk), uint32(a.off), uint32(a.size()))
}

func (a *suArea) bytes(ceBase uint32) []byte {
	var b []byte
	for _, e := range a.entries {
		b = append(b, e...)
	}
	if a.next != nil {
		b = append(b, a.next.ce(ceBase)...)
	}
	return b
}
