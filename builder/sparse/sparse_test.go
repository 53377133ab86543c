package sparse

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestIsZero(t *testing.T) {
	for _, n := range []int{0, 1, 7, 8, 4095, 4096, 4097, 65536 + 3} {
		b := make([]byte, n)
		if !IsZero(b) {
			t.Errorf("%d zero bytes: IsZero false", n)
		}
		for _, at := range []int{0, n / 2, n - 1} {
			if n == 0 {
				continue
			}
			b[at] = 0x80
			if IsZero(b) {
				t.Errorf("%d bytes with byte %d set: IsZero true", n, at)
			}
			b[at] = 0
		}
	}
}

func TestReadChunk(t *testing.T) {
	src := bytes.NewReader([]byte("abcdefghij")) // a 10-byte disk
	buf := make([]byte, 4)
	for i, want := range []string{"abcd", "efgh", "ij\x00\x00", "\x00\x00\x00\x00"} {
		copy(buf, "XXXX") // stale data must not survive
		if err := ReadChunk(src, 10, int64(i), buf); err != nil || string(buf) != want {
			t.Errorf("chunk %d = %q, %v; want %q", i, buf, err, want)
		}
	}
	// The caller says the disk is 12 bytes; the source has 10.
	err := ReadChunk(src, 12, 2, buf)
	if !errors.Is(err, io.ErrUnexpectedEOF) || !strings.Contains(err.Error(), "offset 8") {
		t.Errorf("short source: err = %v", err)
	}
}

type failWriter struct{ after int }

func (f *failWriter) Write(p []byte) (int, error) {
	if f.after < len(p) {
		return f.after, errors.New("disk full")
	}
	f.after -= len(p)
	return len(p), nil
}

func TestCountingWriter(t *testing.T) {
	var b bytes.Buffer
	w := &CountingWriter{W: &b}
	w.Write([]byte("hdr"))
	w.PadTo(10000)
	w.PadTo(5) // already past: nothing
	if w.N != 10000 || b.Len() != 10000 || !IsZero(b.Bytes()[3:]) || w.Err != nil {
		t.Fatalf("N %d, %d bytes, err %v", w.N, b.Len(), w.Err)
	}
	f := &CountingWriter{W: &failWriter{after: 5}}
	f.Write([]byte("abc"))
	f.Write([]byte("defg"))
	f.Write([]byte("h"))
	if f.N != 5 || f.Err == nil || f.Err.Error() != "disk full" {
		t.Errorf("after a failed write: N %d, err %v", f.N, f.Err)
	}
}
