package squashfs

import (
	"bytes"
	"compress/zlib"
	"fmt"

	"github.com/klauspost/compress/zstd"
)

// compressor turns one block (data or metadata) into its compressed form.
type compressor interface {
	id() uint16
	// compress appends the compressed form of src to dst[:0] and returns it.
	compress(dst, src []byte) ([]byte, error)
}

func newCompressor(name string, blockSize int) (compressor, error) {
	switch name {
	case "", "zstd":
		// The kernel's decompressor sizes its window to max(block size, 8 KiB):
		// single-segment frames declare exactly the content size, which never
		// exceeds a block. No checksum, like mksquashfs. "Better" (about zstd
		// level 7) costs ~30% more time than the default for a few % size.
		window := max(blockSize, metaSize)
		e, err := zstd.NewWriter(nil,
			zstd.WithEncoderLevel(zstd.SpeedBetterCompression),
			zstd.WithWindowSize(window),
			zstd.WithSingleSegment(true),
			zstd.WithEncoderCRC(false),
			zstd.WithEncoderConcurrency(1),
			zstd.WithZeroFrames(true))
		if err != nil {
			return nil, fmt.Errorf("squashfs: zstd encoder: %w", err)
		}
		return zstdComp{e}, nil
	case "gzip":
		return &zlibComp{}, nil
	}
	return nil, fmt.Errorf("squashfs: Options.Compression %q: want \"zstd\" or \"gzip\"", name)
}

type zstdComp struct{ e *zstd.Encoder }

func (zstdComp) id() uint16 { return compZstd }

func (z zstdComp) compress(dst, src []byte) ([]byte, error) {
	return z.e.EncodeAll(src, dst[:0]), nil
}

// zlibComp is squashfs "gzip": a zlib stream (RFC 1950). Level 6, not
// mksquashfs's 9: Go's level 9 is several times slower for ~2% size.
type zlibComp struct {
	buf bytes.Buffer
	w   *zlib.Writer
}

func (*zlibComp) id() uint16 { return compGzip }

func (z *zlibComp) compress(dst, src []byte) ([]byte, error) {
	z.buf.Reset()
	if z.w == nil {
		w, err := zlib.NewWriterLevel(&z.buf, zlib.DefaultCompression)
		if err != nil {
			return nil, err
		}
		z.w = w
	} else {
		z.w.Reset(&z.buf)
	}
	if _, err := z.w.Write(src); err != nil {
		return nil, err
	}
	if err := z.w.Close(); err != nil {
		return nil, err
	}
	return append(dst[:0], z.buf.Bytes()...), nil
}
