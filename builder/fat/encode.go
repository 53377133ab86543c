package fat

import "time"

// dosStamp is a FAT date and time.
type dosStamp struct {
	date, time uint16
	tenth      byte // creation time 10 ms units: the odd second the time field cannot hold
}

// dosTime converts Unix seconds (UTC) to a FAT timestamp, clamped to the
// range FAT can store (1980-01-01 to 2107-12-31).
func dosTime(unix int64) dosStamp {
	t := time.Unix(unix, 0).UTC()
	if t.Year() < 1980 {
		t = time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	if t.Year() > 2107 {
		t = time.Date(2107, 12, 31, 23, 59, 59, 0, time.UTC)
	}
	return dosStamp{
		date:  uint16(t.Year()-1980)<<9 | uint16(t.Month())<<5 | uint16(t.Day()),
		time:  uint16(t.Hour())<<11 | uint16(t.Minute())<<5 | uint16(t.Second()/2),
		tenth: byte(t.Second()%2) * 100,
	}
}

// shortEntry encodes one 32-byte 8.3 directory entry.
func shortEntry(name [11]byte, attr, ntCase byte, cluster, size uint32, ts dosStamp) []byte {
	b := make([]byte, 32)
	copy(b, name[:])
	if b[0] == 0xE5 {
		b[0] = 0x05 // 0xE5 marks a deleted entry
	}
	b[11] = attr
	b[12] = ntCase
	b[13] = ts.tenth
	le.PutUint16(b[14:], ts.time)
	le.PutUint16(b[16:], ts.date)
	le.PutUint16(b[18:], ts.date)
	le.PutUint16(b[20:], uint16(cluster>>16))
	le.PutUint16(b[22:], ts.time)
	le.PutUint16(b[24:], ts.date)
	le.PutUint16(b[26:], uint16(cluster))
	le.PutUint32(b[28:], size)
	return b
}

// lfnEntries encodes the long-name entries that precede a short entry: last
// part first, each holding 13 UTF-16 units, NUL-terminated and 0xFFFF-padded.
func lfnEntries(long []uint16, short [11]byte) []byte {
	sum := lfnChecksum(short)
	slots := lfnSlots(len(long))
	padded := make([]uint16, slots*13)
	for i := range padded {
		switch {
		case i < len(long):
			padded[i] = long[i]
		case i == len(long):
			padded[i] = 0
		default:
			padded[i] = 0xFFFF
		}
	}
	out := make([]byte, 0, slots*32)
	for s := slots; s >= 1; s-- {
		b := make([]byte, 32)
		b[0] = byte(s)
		if s == slots {
			b[0] |= 0x40
		}
		b[11] = attrLFN
		b[13] = sum
		part := padded[(s-1)*13 : s*13]
		for i, u := range part {
			var off int
			switch {
			case i < 5:
				off = 1 + 2*i
			case i < 11:
				off = 14 + 2*(i-5)
			default:
				off = 28 + 2*(i-11)
			}
			le.PutUint16(b[off:], u)
		}
		out = append(out, b...)
	}
	return out
}

var (
	dotName    = [11]byte{'.', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '}
	dotDotName = [11]byte{'.', '.', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '}
)

// encodeDir returns the entries of a directory: "." and ".." (or the volume
// label in the root), then the children in name order.
func encodeDir(dir *node, isRoot bool, label string, ts dosStamp) []byte {
	var b []byte
	if isRoot {
		if label != "" {
			var l [11]byte
			copy(l[:], label)
			b = append(b, shortEntry(l, AttrVolumeID, 0, 0, 0, ts)...)
		}
	} else {
		b = append(b, shortEntry(dotName, AttrDirectory, 0, dir.cluster, 0, ts)...)
		var up uint32
		if dir.parent.e.Path != "" {
			up = dir.parent.cluster // ".." of a top-level directory is 0, even on FAT32
		}
		b = append(b, shortEntry(dotDotName, AttrDirectory, 0, up, 0, ts)...)
	}
	for _, c := range dir.children {
		if c.long != nil {
			b = append(b, lfnEntries(c.long, c.short)...)
		}
		size := uint32(c.e.Size()) // 0 for directories
		b = append(b, shortEntry(c.short, c.attr, c.ntCase, c.cluster, size, ts)...)
	}
	return b
}

// encodeFAT returns one copy of the FAT: the two reserved entries, then each
// node's cluster run chained to the next cluster and ended with end-of-chain.
func encodeFAT(g *geometry, nodes []*node) []byte {
	b := make([]byte, int64(g.fatSectors)*sectorSize)
	var eoc uint32
	switch g.fatType {
	case 12:
		eoc = 0xFFF
	case 16:
		eoc = 0xFFFF
	default:
		eoc = 0x0FFFFFFF
	}
	put := func(c, v uint32) {
		switch g.fatType {
		case 12:
			off := c + c/2
			if c%2 == 0 {
				b[off] = byte(v)
				b[off+1] = b[off+1]&0xF0 | byte(v>>8)&0x0F
			} else {
				b[off] = b[off]&0x0F | byte(v<<4)
				b[off+1] = byte(v >> 4)
			}
		case 16:
			le.PutUint16(b[2*c:], uint16(v))
		default:
			le.PutUint32(b[4*c:], v)
		}
	}
	put(0, eoc&^0xFF|mediaByte)
	put(1, eoc)
	for _, n := range nodes {
		for i := uint32(0); i < n.nclusters; i++ {
			c := n.cluster + i
			if i == n.nclusters-1 {
				put(c, eoc)
			} else {
				put(c, c+1)
			}
		}
	}
	return b
}

const mediaByte = 0xF8 // fixed disk

// bootRegion returns the reserved sectors: the boot sector and, on FAT32,
// the FSInfo sector and their backups at sectors 6 and 7.
func bootRegion(g *geometry, o Options, label string, nodes []*node) []byte {
	b := make([]byte, int64(g.reserved)*sectorSize)
	bs := b[:sectorSize]
	copy(bs[3:], "MSWIN4.1") // the OEM name most drivers expect
	le.PutUint16(bs[11:], sectorSize)
	bs[13] = byte(g.secPerClus)
	le.PutUint16(bs[14:], uint16(g.reserved))
	bs[16] = byte(g.numFATs)
	le.PutUint16(bs[17:], uint16(g.rootEntries))
	if g.fatType != 32 && g.totalSectors < 0x10000 {
		le.PutUint16(bs[19:], uint16(g.totalSectors))
	} else {
		le.PutUint32(bs[32:], g.totalSectors)
	}
	bs[21] = mediaByte
	if g.fatType != 32 {
		le.PutUint16(bs[22:], uint16(g.fatSectors))
	}
	le.PutUint16(bs[24:], 63)  // sectors per track: a common LBA-era geometry
	le.PutUint16(bs[26:], 255) // heads
	le.PutUint32(bs[28:], o.HiddenSectors)
	if label == "" {
		label = "NO NAME    "
	}
	ext := 36 // extended BPB of FAT12/16
	fsType := "FAT12   "
	if g.fatType == 16 {
		fsType = "FAT16   "
	}
	if g.fatType == 32 {
		ext = 64
		fsType = "FAT32   "
		le.PutUint32(bs[36:], g.fatSectors)
		le.PutUint32(bs[44:], 2) // root directory cluster
		le.PutUint16(bs[48:], 1) // FSInfo sector
		le.PutUint16(bs[50:], 6) // backup boot sector
	}
	bs[ext] = 0x80 // drive number
	bs[ext+2] = 0x29
	le.PutUint32(bs[ext+3:], o.VolumeID)
	copy(bs[ext+7:ext+18], label)
	copy(bs[ext+18:ext+26], fsType)
	// Jump over the BPB to a stub that hands control back to the BIOS
	// (INT 18h: "boot failed, try the next device") and halts.
	code := ext + 26
	bs[0], bs[1], bs[2] = 0xEB, byte(code-2), 0x90
	copy(bs[code:], []byte{0xCD, 0x18, 0xF4, 0xEB, 0xFD})
	bs[510], bs[511] = 0x55, 0xAA

	if g.fatType == 32 {
		var used uint32
		for _, n := range nodes {
			used += n.nclusters
		}
		fi := b[sectorSize : 2*sectorSize]
		le.PutUint32(fi[0:], 0x41615252)
		le.PutUint32(fi[484:], 0x61417272)
		le.PutUint32(fi[488:], g.clusters-used)
		if used < g.clusters {
			le.PutUint32(fi[492:], used+2)
		} else {
			le.PutUint32(fi[492:], 0xFFFFFFFF)
		}
		le.PutUint32(fi[508:], 0xAA550000)
		copy(b[6*sectorSize:8*sectorSize], b[0:2*sectorSize])
	}
	return b
}
