// Package cpio writes an fstree.Tree as a deterministic "newc" (SVR4, magic
// 070701) cpio archive: the format the Linux kernel unpacks as initramfs.
//
// Determinism: entries come in fstree order (parents first), inode numbers
// are assigned sequentially from 1, every entry carries the one mtime given
// by the caller, and the "check" and device-of-archive fields are zero.
package cpio

import (
	"bufio"
	"fmt"
	"io"
	"io/fs"
	"math"

	"github.com/kilnproject/kiln/builder/fstree"
)

// Mode type bits of the newc header (from <sys/stat.h>, fixed by the format).
const (
	modeFIFO = 0o010000
	modeChr  = 0o020000
	modeDir  = 0o040000
	modeBlk  = 0o060000
	modeReg  = 0o100000
	modeLnk  = 0o120000

	modeSetuid = 0o4000
	modeSetgid = 0o2000
	modeSticky = 0o1000
)

const (
	magic     = "070701"
	headerLen = 110
	trailer   = "TRAILER!!!"
)

// header is one newc header; field order is the on-disk order.
type header struct {
	ino, mode, uid, gid, nlink, mtime, filesize uint32
	devmajor, devminor, rdevmajor, rdevminor    uint32
	namesize, check                             uint32
}

// Write writes every entry of t (the root as ".") followed by the trailer.
// mtime is stamped on every entry (seconds since the epoch, SOURCE_DATE_EPOCH).
func Write(w io.Writer, t *fstree.Tree, mtime int64) error {
	if mtime < 0 || mtime > math.MaxUint32 {
		return fmt.Errorf("cpio: mtime %d does not fit the newc 32-bit field", mtime)
	}
	bw := bufio.NewWriterSize(w, 1<<16)
	cw := &countWriter{w: bw}
	var ino uint32
	for _, e := range t.Entries() {
		ino++
		if err := writeEntry(cw, e, ino, uint32(mtime)); err != nil {
			return err
		}
	}
	if err := writeHeader(cw, header{nlink: 1}, trailer); err != nil {
		return err
	}
	return bw.Flush()
}

func writeEntry(cw *countWriter, e *fstree.Entry, ino, mtime uint32) error {
	name := e.Path
	if name == "" {
		name = "."
	}
	h := header{ino: ino, uid: e.UID, gid: e.GID, nlink: 1, mtime: mtime}
	h.mode = permBits(e.Perm)
	var body []byte
	var size int64
	switch e.Kind {
	case fstree.File:
		h.mode |= modeReg
		size = e.Size()
	case fstree.Dir:
		h.mode |= modeDir
		h.nlink = 2
	case fstree.Symlink:
		h.mode |= modeLnk
		if e.Target == "" {
			return fmt.Errorf("cpio: %s: symlink has an empty target", name)
		}
		body = []byte(e.Target)
		size = int64(len(body))
	case fstree.CharDev:
		h.mode |= modeChr
		h.rdevmajor, h.rdevminor = e.Major, e.Minor
	case fstree.BlockDev:
		h.mode |= modeBlk
		h.rdevmajor, h.rdevminor = e.Major, e.Minor
	case fstree.FIFO:
		h.mode |= modeFIFO
	default:
		return fmt.Errorf("cpio: %s: unsupported entry kind %v", name, e.Kind)
	}
	if size > math.MaxUint32 {
		return fmt.Errorf("cpio: %s: size %d exceeds the newc 4 GiB limit", name, size)
	}
	h.filesize = uint32(size)
	if err := writeHeader(cw, h, name); err != nil {
		return err
	}
	switch {
	case body != nil:
		if _, err := cw.Write(body); err != nil {
			return err
		}
	case e.Kind == fstree.File && size > 0:
		rc, err := e.Open()
		if err != nil {
			return fmt.Errorf("cpio: %s: %w", name, err)
		}
		n, err := io.Copy(cw, io.LimitReader(rc, size))
		rc.Close()
		if err != nil {
			return fmt.Errorf("cpio: %s: %w", name, err)
		}
		if n != size {
			// The source shrank after it was added: the archive would be corrupt.
			return fmt.Errorf("cpio: %s: read %d bytes, expected %d (source changed?)", name, n, size)
		}
	}
	return cw.pad()
}

func permBits(p fs.FileMode) uint32 {
	m := uint32(p.Perm())
	if p&fs.ModeSetuid != 0 {
		m |= modeSetuid
	}
	if p&fs.ModeSetgid != 0 {
		m |= modeSetgid
	}
	if p&fs.ModeSticky != 0 {
		m |= modeSticky
	}
	return m
}

func writeHeader(cw *countWriter, h header, name string) error {
	h.namesize = uint32(len(name) + 1)
	fields := [...]uint32{h.ino, h.mode, h.uid, h.gid, h.nlink, h.mtime, h.filesize,
		h.devmajor, h.devminor, h.rdevmajor, h.rdevminor, h.namesize, h.check}
	buf := make([]byte, 0, headerLen+len(name)+4)
	buf = append(buf, magic...)
	for _, f := range fields {
		buf = fmt.Appendf(buf, "%08X", f)
	}
	buf = append(buf, name...)
	buf = append(buf, 0)
	if _, err := cw.Write(buf); err != nil {
		return err
	}
	// Header plus name is padded so the data starts on a 4-byte boundary.
	return cw.pad()
}

// countWriter tracks the archive offset for 4-byte padding.
type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

var zeros [4]byte

func (c *countWriter) pad() error {
	if r := c.n % 4; r != 0 {
		_, err := c.Write(zeros[:4-r])
		return err
	}
	return nil
}
