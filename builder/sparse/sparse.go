// Package sparse holds what the writers of sparse disk image formats (qcow2,
// VMDK, VHD) share: reading the raw disk in fixed-size chunks, telling the
// all-zero chunks they leave out from the rest, and counting output bytes.
package sparse

import (
	"bytes"
	"errors"
	"fmt"
	"io"
)

// zeroBlock is what IsZero compares against; bytes.Equal is vectorised, so
// this beats a loop over words.
var zeroBlock [4096]byte

// IsZero reports whether b holds only zero bytes.
func IsZero(b []byte) bool {
	for len(b) > 0 {
		n := min(len(b), len(zeroBlock))
		if !bytes.Equal(b[:n], zeroBlock[:n]) {
			return false
		}
		b = b[n:]
	}
	return true
}

// ReadChunk fills buf with chunk i of a raw disk of size bytes read from
// src, chunks being len(buf) bytes long. Bytes past size read as zeros: the
// last chunk is usually short, and formats round the disk up. A source that
// ends before size is an error that names the offset.
func ReadChunk(src io.ReaderAt, size, i int64, buf []byte) error {
	off := i * int64(len(buf))
	n := min(int64(len(buf)), max(size-off, 0))
	clear(buf[n:])
	if n == 0 {
		return nil
	}
	got, err := src.ReadAt(buf[:n], off)
	if got < int(n) {
		if err == nil || errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return fmt.Errorf("reading source at offset %d: %w", off, err)
	}
	return nil
}

// CountingWriter tracks the output offset, which the formats record in
// their tables as they stream, and keeps the first error so that a run of
// writes needs one check at the end.
type CountingWriter struct {
	W   io.Writer
	N   int64 // bytes written so far
	Err error // the first error; later writes do nothing
}

func (c *CountingWriter) Write(p []byte) (int, error) {
	if c.Err != nil {
		return 0, c.Err
	}
	n, err := c.W.Write(p)
	c.N += int64(n)
	c.Err = err
	return n, err
}

// PadTo writes zeros up to offset off.
func (c *CountingWriter) PadTo(off int64) {
	for c.N < off && c.Err == nil {
		c.Write(zeroBlock[:min(off-c.N, int64(len(zeroBlock)))])
	}
}
