// Package fstree is the in-memory description of a filesystem tree that the
// builder assembles (rootfs, initramfs, ESP, ISO contents) and that every
// filesystem writer (squashfs, cpio, fat, iso9660) consumes.
//
// It holds metadata and a way to read each file's bytes, never timestamps:
// writers stamp one fixed time (SOURCE_DATE_EPOCH) so output is reproducible.
package fstree

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"
)

// Kind is the type of an entry.
type Kind uint8

const (
	File Kind = iota
	Dir
	Symlink
	CharDev
	BlockDev
	FIFO
)

func (k Kind) String() string {
	return [...]string{"file", "dir", "symlink", "chardev", "blockdev", "fifo"}[k]
}

// Entry is one node of the tree.
type Entry struct {
	Path   string      // slash-separated, relative to the root, no leading "/" ("" is the root)
	Kind   Kind        //
	Perm   fs.FileMode // permission bits plus setuid/setgid/sticky (fs.ModeSetuid ...), no type bits
	UID    uint32      //
	GID    uint32      //
	Target string      // symlink target
	Major  uint32      // device numbers for CharDev/BlockDev
	Minor  uint32      //
	Data   []byte      // file content when held in memory
	Source string      // host path to read file content from when Data is nil
	size   int64
}

// Size is the length of a file's content.
func (e *Entry) Size() int64 {
	if e.Kind != File {
		return 0
	}
	if e.Data != nil {
		return int64(len(e.Data))
	}
	return e.size
}

// Open returns the content of a file entry.
func (e *Entry) Open() (io.ReadCloser, error) {
	if e.Kind != File {
		return nil, fmt.Errorf("fstree: %s is a %s, not a file", e.Path, e.Kind)
	}
	if e.Data != nil || e.Source == "" {
		return io.NopCloser(bytes.NewReader(e.Data)), nil
	}
	f, err := os.Open(e.Source)
	if err != nil {
		return nil, err
	}
	return f, nil
}

// ReadAll returns the whole content of a file entry.
func (e *Entry) ReadAll() ([]byte, error) {
	if e.Data != nil {
		return e.Data, nil
	}
	rc, err := e.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

// Mode returns the entry as an fs.FileMode with type bits set.
func (e *Entry) Mode() fs.FileMode {
	m := e.Perm
	switch e.Kind {
	case Dir:
		m |= fs.ModeDir
	case Symlink:
		m |= fs.ModeSymlink
	case CharDev:
		m |= fs.ModeDevice | fs.ModeCharDevice
	case BlockDev:
		m |= fs.ModeDevice
	case FIFO:
		m |= fs.ModeNamedPipe
	}
	return m
}

// Tree is a set of entries keyed by path. Parent directories are created on
// demand with mode 0755 root:root.
type Tree struct {
	entries map[string]*Entry
}

// New returns a tree holding only the root directory.
func New() *Tree {
	t := &Tree{entries: map[string]*Entry{}}
	t.entries[""] = &Entry{Path: "", Kind: Dir, Perm: 0o755}
	return t
}

// Clean normalises p to the tree's path form.
func Clean(p string) string {
	p = path.Clean("/" + p)
	return strings.TrimPrefix(p, "/")
}

// Add inserts or replaces e (after cleaning its path) and creates missing parents.
// Replacing a directory with a non-directory is an error, as is adding below a non-directory.
func (t *Tree) Add(e *Entry) error {
	e.Path = Clean(e.Path)
	if old, ok := t.entries[e.Path]; ok && old.Kind == Dir && e.Kind != Dir {
		return fmt.Errorf("fstree: %s: cannot replace a directory with a %s", e.Path, e.Kind)
	}
	if e.Path != "" {
		if err := t.mkdirAll(path.Dir(e.Path)); err != nil {
			return err
		}
	}
	if e.Kind == File && e.Data == nil && e.Source != "" {
		st, err := os.Stat(e.Source)
		if err != nil {
			return fmt.Errorf("fstree: %s: %w", e.Path, err)
		}
		e.size = st.Size()
	}
	t.entries[e.Path] = e
	return nil
}

func (t *Tree) mkdirAll(p string) error {
	p = Clean(p)
	if p == "." {
		p = ""
	}
	if e, ok := t.entries[p]; ok {
		if e.Kind != Dir {
			return fmt.Errorf("fstree: %s: not a directory", p)
		}
		return nil
	}
	if err := t.mkdirAll(path.Dir(p)); err != nil {
		return err
	}
	t.entries[p] = &Entry{Path: p, Kind: Dir, Perm: 0o755}
	return nil
}

// Mkdir adds a directory with the given permissions (parents get 0755).
func (t *Tree) Mkdir(p string, perm fs.FileMode) error {
	return t.Add(&Entry{Path: p, Kind: Dir, Perm: perm})
}

// AddFile adds a regular file with in-memory content.
func (t *Tree) AddFile(p string, perm fs.FileMode, data []byte) error {
	if data == nil {
		data = []byte{}
	}
	return t.Add(&Entry{Path: p, Kind: File, Perm: perm, Data: data})
}

// AddHostFile adds a regular file whose content is read from a host path when written.
func (t *Tree) AddHostFile(p string, perm fs.FileMode, hostPath string) error {
	return t.Add(&Entry{Path: p, Kind: File, Perm: perm, Source: hostPath})
}

// Symlink adds a symbolic link.
func (t *Tree) Symlink(p, target string) error {
	return t.Add(&Entry{Path: p, Kind: Symlink, Perm: 0o777, Target: target})
}

// Get returns the entry at p, or nil.
func (t *Tree) Get(p string) *Entry {
	p = Clean(p)
	if p == "." {
		p = ""
	}
	return t.entries[p]
}

// Remove deletes p and everything below it.
func (t *Tree) Remove(p string) {
	p = Clean(p)
	for k := range t.entries {
		if k == p || strings.HasPrefix(k, p+"/") {
			delete(t.entries, k)
		}
	}
}

// Len is the number of entries including the root.
func (t *Tree) Len() int { return len(t.entries) }

// Entries returns all entries sorted by path (byte order), root first.
// Sorting by path puts every directory before its children.
func (t *Tree) Entries() []*Entry {
	out := make([]*Entry, 0, len(t.entries))
	for _, e := range t.entries {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// Children returns the direct children of directory p sorted by name (byte order).
func (t *Tree) Children(p string) []*Entry {
	p = Clean(p)
	if p == "." {
		p = ""
	}
	var out []*Entry
	for k, e := range t.entries {
		if k == "" {
			continue
		}
		if path.Dir("/"+k) == "/"+p || (p == "" && !strings.Contains(k, "/")) {
			out = append(out, e)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// Name returns the last element of the entry's path.
func (e *Entry) Name() string { return path.Base("/" + e.Path) }

// Merge copies every entry of o into t (o wins on conflicts).
func (t *Tree) Merge(o *Tree) error {
	for _, e := range o.Entries() {
		if e.Path == "" {
			continue
		}
		c := *e
		if err := t.Add(&c); err != nil {
			return err
		}
	}
	return nil
}

// AddHostDir copies a host directory into the tree under prefix. Ownership is
// reset to root:root and permissions are kept; times are dropped.
func (t *Tree) AddHostDir(hostDir, prefix string) error {
	return fsWalk(hostDir, func(rel string, fi os.FileInfo, host string) error {
		p := path.Join(prefix, rel)
		perm := fi.Mode().Perm() | (fi.Mode() & (fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky))
		switch {
		case fi.IsDir():
			return t.Mkdir(p, perm)
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(host)
			if err != nil {
				return err
			}
			return t.Symlink(p, target)
		case fi.Mode().IsRegular():
			return t.AddHostFile(p, perm, host)
		default:
			return fmt.Errorf("fstree: %s: unsupported file type %v", host, fi.Mode().Type())
		}
	})
}
