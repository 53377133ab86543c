package squashfs

import "encoding/binary"

// On-disk constants of squashfs 4.0 (little-endian throughout).
const (
	magic        = 0x73717368 // "hsqs"
	superSize    = 96
	metaSize     = 8192 // uncompressed size of a metadata block
	metaRawBit   = 1 << 15
	dataRawBit   = 1 << 24
	noFragment   = 0xFFFFFFFF
	noXattr      = 0xFFFFFFFF
	invalidTable = ^uint64(0)
	maxNameLen   = 256 // SQUASHFS_NAME_LEN
	maxDirCount  = 256 // entries per directory header
	imagePadding = 4096

	compGzip = 1
	compZstd = 6

	flagNoXattrs     = 0x0200
	flagAlwaysFrags  = 0x0020
	flagExportable   = 0x0080
	fragEntrySize    = 16
	exportEntrySize  = 8
	idEntrySize      = 4
	dirHeaderSize    = 12
	dirEntryBaseSize = 8
	dirIndexBaseSize = 12
)

// Inode types. Directory entries always carry the basic type.
const (
	typeDir     = 1
	typeFile    = 2
	typeSymlink = 3
	typeBlkDev  = 4
	typeChrDev  = 5
	typeFIFO    = 6
	typeLDir    = 8
	typeLFile   = 9
)

// superblock mirrors struct squashfs_super_block.
type superblock struct {
	inodes        uint32
	mkfsTime      uint32
	blockSize     uint32
	fragments     uint32
	compression   uint16
	blockLog      uint16
	flags         uint16
	noIDs         uint16
	rootInode     uint64
	bytesUsed     uint64
	idTable       uint64
	xattrTable    uint64
	inodeTable    uint64
	dirTable      uint64
	fragmentTable uint64
	exportTable   uint64
}

func (s *superblock) marshal() []byte {
	b := make([]byte, superSize)
	le := binary.LittleEndian
	le.PutUint32(b[0:], magic)
	le.PutUint32(b[4:], s.inodes)
	le.PutUint32(b[8:], s.mkfsTime)
	le.PutUint32(b[12:], s.blockSize)
	le.PutUint32(b[16:], s.fragments)
	le.PutUint16(b[20:], s.compression)
	le.PutUint16(b[22:], s.blockLog)
	le.PutUint16(b[24:], s.flags)
	le.PutUint16(b[26:], s.noIDs)
	le.PutUint16(b[28:], 4) // major
	le.PutUint16(b[30:], 0) // minor
	le.PutUint64(b[32:], s.rootInode)
	le.PutUint64(b[40:], s.bytesUsed)
	le.PutUint64(b[48:], s.idTable)
	le.PutUint64(b[56:], s.xattrTable)
	le.PutUint64(b[64:], s.inodeTable)
	le.PutUint64(b[72:], s.dirTable)
	le.PutUint64(b[80:], s.fragmentTable)
	le.PutUint64(b[88:], s.exportTable)
	return b
}

// enc appends little-endian fields to a byte slice.
type enc []byte

func (e enc) u16(v uint16) enc { return binary.LittleEndian.AppendUint16(e, v) }
func (e enc) u32(v uint32) enc { return binary.LittleEndian.AppendUint32(e, v) }
func (e enc) u64(v uint64) enc { return binary.LittleEndian.AppendUint64(e, v) }

// inodeHeader is the 16-byte part every inode starts with.
func inodeHeader(typ, mode, uid, gid uint16, mtime, ino uint32) enc {
	return enc(make([]byte, 0, 64)).u16(typ).u16(mode).u16(uid).u16(gid).u32(mtime).u32(ino)
}

// encodeDev packs a device number the way the kernel's new_encode_dev does,
// which is what squashfs stores in rdev.
func encodeDev(major, minor uint32) uint32 {
	return (minor & 0xff) | (major << 8) | ((minor &^ 0xff) << 12)
}
