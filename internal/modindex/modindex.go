// Package modindex fingerprints a kernel module index: the builder records
// the digest of the index it writes into the initramfs and the system
// image, and initd compares the two to know whether devices matched with
// one need matching again with the other.
package modindex

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
)

// Files are the index files the digest covers: together they decide which
// module a device gets. modules.builtin may be absent.
var Files = []string{"modules.dep", "modules.alias", "modules.builtin"}

// Digest is the hex SHA-256 of the index files, each with its name and
// length first, as read gives them (nil for an absent file).
func Digest(read func(name string) ([]byte, error)) (string, error) {
	h := sha256.New()
	for _, name := range Files {
		b, err := read(name)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s %d\n", name, len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
