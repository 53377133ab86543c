package squashfs

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/kilnproject/kiln/builder/fstree"
)

// writeFile streams a file's content into data blocks, one block in memory at
// a time, packs its tail into the fragment buffer, and returns its inode.
// Full all-zero blocks are stored as holes (size 0), as mksquashfs does.
func (iw *imageWriter) writeFile(e *fstree.Entry) ([]byte, error) {
	rc, err := e.Open()
	if err != nil {
		return nil, fmt.Errorf("squashfs: %s: %w", e.Path, err)
	}
	defer rc.Close()

	start := uint64(iw.pos)
	var (
		sizes  []uint32
		total  uint64
		sparse uint64
		frag   uint32 = noFragment
		fragAt uint32
	)
	for {
		n, err := io.ReadFull(rc, iw.readBuf)
		if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("squashfs: reading %s: %w", e.Path, err)
		}
		total += uint64(n)
		if n == len(iw.readBuf) {
			size, err := iw.writeBlock(iw.readBuf, e.Path)
			if err != nil {
				return nil, err
			}
			if size == 0 {
				sparse += uint64(n)
			}
			sizes = append(sizes, size)
			continue
		}
		if n > 0 {
			if frag, fragAt, err = iw.addTail(iw.readBuf[:n]); err != nil {
				return nil, err
			}
		}
		break
	}
	if len(sizes) == 0 {
		start = 0
	}

	var b enc
	if total > 0xFFFFFFFF || start > 0xFFFFFFFF || sparse > 0 {
		b = iw.header(e, typeLFile).u64(start).u64(total).u64(sparse).u32(1).u32(frag).u32(fragAt).u32(noXattr)
	} else {
		b = iw.header(e, typeFile).u32(uint32(start)).u32(frag).u32(fragAt).u32(uint32(total))
	}
	for _, s := range sizes {
		b = b.u32(s)
	}
	return b, nil
}

// writeBlock writes one full data block and returns its block-list word.
func (iw *imageWriter) writeBlock(p []byte, name string) (uint32, error) {
	if bytes.Equal(p, iw.zeros) { // vectorised compare
		return 0, nil
	}
	return iw.writeCompressed(p, name)
}

// writeCompressed writes p compressed, or as is when compression does not
// shrink it, and returns the on-disk size word.
func (iw *imageWriter) writeCompressed(p []byte, name string) (uint32, error) {
	c, err := iw.comp.compress(iw.scratch, p)
	if err != nil {
		return 0, fmt.Errorf("squashfs: compressing %s: %w", name, err)
	}
	iw.scratch = c
	if len(c) < len(p) {
		return uint32(len(c)), iw.emit(c, name)
	}
	return uint32(len(p)) | dataRawBit, iw.emit(p, name)
}

// addTail appends a file tail to the current fragment block, starting a new
// one when it does not fit, and returns the fragment index and offset.
func (iw *imageWriter) addTail(p []byte) (uint32, uint32, error) {
	if len(iw.fragBuf)+len(p) > iw.blockSize {
		if err := iw.flushFragment(); err != nil {
			return 0, 0, err
		}
	}
	off := uint32(len(iw.fragBuf))
	iw.fragBuf = append(iw.fragBuf, p...)
	return uint32(len(iw.frags)), off, nil
}

func (iw *imageWriter) flushFragment() error {
	if len(iw.fragBuf) == 0 {
		return nil
	}
	start := uint64(iw.pos)
	size, err := iw.writeCompressed(iw.fragBuf, fmt.Sprintf("fragment %d", len(iw.frags)))
	if err != nil {
		return err
	}
	iw.frags = append(iw.frags, fragEntry{start: start, size: size})
	iw.fragBuf = iw.fragBuf[:0]
	return nil
}
