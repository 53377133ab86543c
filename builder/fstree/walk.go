package fstree

import (
	"os"
	"path/filepath"
)

// fsWalk calls fn for every entry below root (not root itself) with its
// slash-separated relative path, in lexical order.
func fsWalk(root string, fn func(rel string, fi os.FileInfo, host string) error) error {
	return filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil || rel == "." {
			return err
		}
		return fn(filepath.ToSlash(rel), fi, p)
	})
}
