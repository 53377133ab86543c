package modindex

import (
	"errors"
	"testing"
)

func TestDigest(t *testing.T) {
	files := map[string][]byte{"modules.dep": []byte("a.ko:\n"), "modules.alias": []byte("alias x a\n")}
	read := func(name string) ([]byte, error) { return files[name], nil }
	d1, err := Digest(read)
	if err != nil || len(d1) != 64 {
		t.Fatalf("Digest = %q, %v", d1, err)
	}
	// A byte moved from one file to the next changes it: names and
	// lengths are part of what is hashed.
	files["modules.dep"], files["modules.alias"] = []byte("a.ko:"), []byte("\nalias x a\n")
	if d2, _ := Digest(read); d2 == d1 {
		t.Error("moving a byte between files kept the digest")
	}
	if _, err := Digest(func(string) ([]byte, error) { return nil, errors.New("boom") }); err == nil {
		t.Error("a read error gave a digest")
	}
}
