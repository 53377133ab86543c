package iso9660

import (
	"encoding/binary"
	"fmt"
	"io"
	"time"
)

// seqWriter writes the image front to back, zero-filling every gap so the
// output does not depend on what the WriterAt held before.
type seqWriter struct {
	w   io.WriterAt
	off int64
}

func (s *seqWriter) Write(p []byte) (int, error) {
	n, err := s.w.WriteAt(p, s.off)
	s.off += int64(n)
	return n, err
}

var zeros = make([]byte, 64*1024)

func (s *seqWriter) zeroTo(off int64) error {
	for s.off < off {
		n := min(off-s.off, int64(len(zeros)))
		if _, err := s.Write(zeros[:n]); err != nil {
			return err
		}
	}
	return nil
}

func (s *seqWriter) at(lba uint32) error {
	if int64(lba)*blockSize < s.off {
		return fmt.Errorf("iso9660: internal layout error: block %d already written (at byte %d)", lba, s.off)
	}
	return s.zeroTo(int64(lba) * blockSize)
}

func (l *layout) write(w io.WriterAt, o Options, mt time.Time, cat *node, hy *hybridLayout) (int64, error) {
	s := &seqWriter{w: w}
	wrap := func(err error) (int64, error) { return 0, fmt.Errorf("iso9660: writing image: %w", err) }

	sa := make([]byte, systemArea*blockSize)
	if hy != nil {
		sa = hy.systemArea()
	}
	if _, err := s.Write(sa); err != nil {
		return wrap(err)
	}
	if _, err := s.Write(l.pvd(o.VolumeID, mt)); err != nil {
		return wrap(err)
	}
	if l.hasBoot {
		if _, err := s.Write(bootRecord(cat.lba)); err != nil {
			return wrap(err)
		}
	}
	term := make([]byte, blockSize)
	term[0] = 255
	copy(term[1:], "CD001")
	term[6] = 1
	if _, err := s.Write(term); err != nil {
		return wrap(err)
	}

	for i, lba := range []uint32{l.ptL, l.ptM} {
		if err := s.at(lba); err != nil {
			return wrap(err)
		}
		if _, err := s.Write(l.pathTable(i == 1)); err != nil {
			return wrap(err)
		}
	}
	date := recDate(mt)
	for _, d := range l.dirs {
		if err := s.at(d.lba); err != nil {
			return wrap(err)
		}
		if _, err := s.Write(l.directory(d, date)); err != nil {
			return wrap(err)
		}
	}
	if l.ceBlocks > 0 {
		if err := s.at(l.ceBase); err != nil {
			return wrap(err)
		}
		ce := make([]byte, l.ceBlocks*blockSize)
		for _, a := range l.areas {
			copy(ce[a.blk*blockSize+a.off:], a.bytes(l.ceBase))
		}
		if _, err := s.Write(ce); err != nil {
			return wrap(err)
		}
	}

	buf := make([]byte, 1<<20)
	for _, f := range l.files {
		if err := s.at(f.lba); err != nil {
			return wrap(err)
		}
		if f.content != nil {
			if _, err := s.Write(f.content); err != nil {
				return wrap(err)
			}
			continue
		}
		rc, err := f.e.Open()
		if err != nil {
			return 0, fmt.Errorf("iso9660: %s: %w", f.e.Path, err)
		}
		n, err := io.CopyBuffer(s, io.LimitReader(rc, int64(f.length)+1), buf)
		rc.Close()
		if err != nil {
			return 0, fmt.Errorf("iso9660: %s: %w", f.e.Path, err)
		}
		if n != int64(f.length) {
			return 0, fmt.Errorf("iso9660: %s: content is %d bytes, tree said %d (file changed while writing?)", f.e.Path, n, f.length)
		}
	}

	total := int64(l.totalBlocks) * blockSize
	if hy != nil && hy.espSize > 0 {
		backup := hy.backupGPT()
		if err := s.zeroTo(total - int64(len(backup))); err != nil {
			return wrap(err)
		}
		if _, err := s.Write(backup); err != nil {
			return wrap(err)
		}
	}
	if err := s.zeroTo(total); err != nil {
		return wrap(err)
	}
	return total, nil
}

func (l *layout) pvd(volID string, mt time.Time) []byte {
	b := make([]byte, blockSize)
	b[0] = 1
	copy(b[1:], "CD001")
	b[6] = 1
	padSpaces(b[8:40], "")
	padSpaces(b[40:72], volID)
	put733(b[80:], l.totalBlocks)
	put723(b[120:], 1)
	put723(b[124:], 1)
	put723(b[128:], blockSize)
	put733(b[132:], uint32(l.ptSize))
	binary.LittleEndian.PutUint32(b[140:], l.ptL)
	binary.BigEndian.PutUint32(b[148:], l.ptM)
	copy(b[156:190], record([]byte{0}, l.root.lba, l.root.length, true, recDate(mt), nil))
	padSpaces(b[190:813], "")
	copy(b[813:], vdDate(mt))
	copy(b[830:], vdDate(mt))
	copy(b[847:], noDate())
	copy(b[864:], noDate())
	b[881] = 1
	return b
}

func (l *layout) pathTable(bigEndian bool) []byte {
	var b []byte
	for _, d := range l.dirs {
		id := d.id()
		r := make([]byte, 8+len(id)+len(id)%2)
		r[0] = byte(len(id))
		parent := 1
		if d.parent != nil {
			parent = d.parent.dirNum
		}
		if bigEndian {
			binary.BigEndian.PutUint32(r[2:], d.lba)
			binary.BigEndian.PutUint16(r[6:], uint16(parent))
		} else {
			binary.LittleEndian.PutUint32(r[2:], d.lba)
			binary.LittleEndian.PutUint16(r[6:], uint16(parent))
		}
		copy(r[8:], id)
		b = append(b, r...)
	}
	return b
}

// record encodes one directory record (ECMA-119 9.1); its length is even.
func record(id []byte, lba, length uint32, dir bool, date [7]byte, su []byte) []byte {
	n := recordBase(len(id)) + len(su)
	n += n % 2
	b := make([]byte, n)
	b[0] = byte(n)
	put733(b[2:], lba)
	put733(b[10:], length)
	copy(b[18:25], date[:])
	if dir {
		b[25] = 2
	}
	put723(b[28:], 1)
	b[32] = byte(len(id))
	copy(b[33:], id)
	copy(b[recordBase(len(id)):], su)
	return b
}

func (l *layout) directory(d *node, date [7]byte) []byte {
	b := make([]byte, d.length)
	off := 0
	put := func(r []byte) {
		if off%blockSize+len(r) > blockSize {
			off += blockSize - off%blockSize
		}
		copy(b[off:], r)
		off += len(r)
	}
	parent := d.parent
	if parent == nil {
		parent = d
	}
	put(record([]byte{0}, d.lba, d.length, true, date, d.dot.bytes(l.ceBase)))
	put(record([]byte{1}, parent.lba, parent.length, true, date, d.dotdot.bytes(l.ceBase)))
	for _, k := range d.listed() {
		put(record(k.id(), k.lba, k.length, k.isDir(), date, k.rec.bytes(l.ceBase)))
	}
	return b
}
