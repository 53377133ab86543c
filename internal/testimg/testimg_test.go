package testimg

import (
	"bytes"
	"testing"
)

func TestRaw(t *testing.T) {
	a := Raw(1000, Region{0, 10}, Region{500, 10}, Region{995, 100})
	if !bytes.Equal(a, Raw(1000, Region{0, 10}, Region{500, 10}, Region{995, 100})) {
		t.Fatal("Raw is not deterministic")
	}
	if len(a) != 1000 || bytes.Count(a[10:500], []byte{0}) != 490 || bytes.Count(a[510:995], []byte{0}) != 485 {
		t.Fatal("bytes outside the regions are not zero")
	}
	if bytes.Count(a[0:10], []byte{0}) == 10 || bytes.Count(a[995:], []byte{0}) == 5 {
		t.Fatal("regions hold no data")
	}
}

func TestStriped(t *testing.T) {
	b := Striped(10, 3, 16)
	for i, x := range b {
		if data := i/3%2 == 0; !data && x != 0 || x >= 16 {
			t.Fatalf("byte %d = %d in % x", i, x, b)
		}
	}
	if bytes.Count(b[0:3], []byte{0}) == 3 {
		t.Fatal("first chunk holds no data")
	}
}
