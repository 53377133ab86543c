package squashfs

import "encoding/binary"

// metaWriter builds a table made of metadata blocks: up to 8 KiB of payload,
// compressed when that helps, each behind a 2-byte length header. The table is
// kept in memory (inodes and directories are small next to file data) and
// copied to the image once its position is known.
type metaWriter struct {
	comp    compressor
	buf     []byte   // payload of the block being filled
	out     []byte   // finished blocks
	starts  []uint64 // offset in out of each finished block
	scratch []byte
	err     error
}

func newMetaWriter(c compressor) *metaWriter {
	return &metaWriter{comp: c, buf: make([]byte, 0, metaSize)}
}

// ref is the position the next byte will land at, as a squashfs reference:
// offset of its block from the table start, and offset inside the payload.
func (m *metaWriter) ref() (block uint64, offset uint16) {
	return uint64(len(m.out)), uint16(len(m.buf))
}

// uncompressedPos counts payload bytes written so far.
func (m *metaWriter) uncompressedPos() uint64 {
	return uint64(len(m.starts))*metaSize + uint64(len(m.buf))
}

func (m *metaWriter) write(p []byte) {
	for len(p) > 0 {
		n := copy(m.buf[len(m.buf):metaSize], p)
		m.buf = m.buf[:len(m.buf)+n]
		p = p[n:]
		if len(m.buf) == metaSize {
			m.flush()
		}
	}
}

func (m *metaWriter) flush() {
	if len(m.buf) == 0 {
		return
	}
	m.starts = append(m.starts, uint64(len(m.out)))
	c, err := m.comp.compress(m.scratch, m.buf)
	if err != nil && m.err == nil {
		m.err = err
	}
	m.scratch = c
	if err == nil && len(c) < len(m.buf) {
		m.out = binary.LittleEndian.AppendUint16(m.out, uint16(len(c)))
		m.out = append(m.out, c...)
	} else {
		m.out = binary.LittleEndian.AppendUint16(m.out, uint16(len(m.buf))|metaRawBit)
		m.out = append(m.out, m.buf...)
	}
	m.buf = m.buf[:0]
}

// finish flushes the last partial block and returns the table bytes.
func (m *metaWriter) finish() ([]byte, error) {
	m.flush()
	return m.out, m.err
}
