package debian

import (
	"archive/tar"
	"bufio"
	"compress/bzip2"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
	"github.com/ulikunitz/xz/lzma"
)

// Extract unpacks the data.tar member of the .deb at debPath into dir, which
// must not exist yet. It needs no root: regular files, directories, symlinks
// and hard links are created with their permission bits (owners are not
// kept); device nodes and FIFOs are skipped and logged through logf (may be
// nil). Paths that would land outside dir ("..", writing through a symlink)
// are rejected. The tree is built in a temporary sibling directory and
// renamed into place, so an interrupted extraction leaves nothing at dir.
func Extract(debPath, dir string, logf func(format string, args ...any)) error {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	if _, err := os.Lstat(dir); err == nil {
		return fmt.Errorf("extract %s: %s already exists", debPath, dir)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".tmp-extract-*")
	if err != nil {
		return fmt.Errorf("extract %s: %w", debPath, err)
	}
	defer os.RemoveAll(tmp) // no-op after the rename
	err = withDataTar(debPath, func(tr *tar.Reader) error {
		return untar(tr, tmp, func(format string, args ...any) {
			logf("debian: %s: "+format, append([]any{filepath.Base(debPath)}, args...)...)
		})
	})
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, dir); err != nil {
		return fmt.Errorf("extract %s: %w", debPath, err)
	}
	return nil
}

// withDataTar opens the data.tar member of a .deb and hands its tar reader
// to fn; errors name the file and member.
func withDataTar(debPath string, fn func(*tar.Reader) error) error {
	f, err := os.Open(debPath)
	if err != nil {
		return fmt.Errorf("extract: %w", err)
	}
	defer f.Close()
	data, name, err := findDataTar(bufio.NewReader(f))
	if err != nil {
		return fmt.Errorf("extract %s: %w", debPath, err)
	}
	r, closeR, err := decompressor(name, data)
	if err != nil {
		return fmt.Errorf("extract %s: %s: %w", debPath, name, err)
	}
	defer closeR()
	if err := fn(tar.NewReader(r)); err != nil {
		return fmt.Errorf("extract %s: %s: %w", debPath, name, err)
	}
	return nil
}

// findDataTar walks the ar archive of a .deb (deb(5): "!<arch>\n", then
// 60-byte member headers, members padded to even length) and returns a
// reader positioned at the data.tar member and that member's name.
func findDataTar(r *bufio.Reader) (io.Reader, string, error) {
	magic := make([]byte, 8)
	if _, err := io.ReadFull(r, magic); err != nil || string(magic) != "!<arch>\n" {
		return nil, "", fmt.Errorf("not an ar archive (no !<arch> magic)")
	}
	for i := 0; ; i++ {
		var hdr [60]byte
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			if errors.Is(err, io.EOF) {
				return nil, "", fmt.Errorf("no data.tar member")
			}
			return nil, "", fmt.Errorf("ar member %d: truncated header", i)
		}
		if string(hdr[58:60]) != "`\n" {
			return nil, "", fmt.Errorf("ar member %d: bad header terminator", i)
		}
		name := strings.TrimSuffix(strings.TrimRight(string(hdr[0:16]), " "), "/")
		size, err := strconv.ParseInt(strings.TrimSpace(string(hdr[48:58])), 10, 64)
		if err != nil || size < 0 {
			return nil, "", fmt.Errorf("ar member %q: bad size %q", name, hdr[48:58])
		}
		if i == 0 {
			if name != "debian-binary" {
				return nil, "", fmt.Errorf("first ar member is %q, not debian-binary", name)
			}
			if size > 64 {
				return nil, "", fmt.Errorf("debian-binary is %d bytes", size)
			}
			v := make([]byte, size)
			if _, err := io.ReadFull(r, v); err != nil {
				return nil, "", fmt.Errorf("debian-binary: %w", err)
			}
			if !strings.HasPrefix(string(v), "2.") {
				return nil, "", fmt.Errorf("unsupported deb format version %q", strings.TrimSpace(string(v)))
			}
		} else if name == "data.tar" || strings.HasPrefix(name, "data.tar.") {
			return io.LimitReader(r, size), name, nil
		} else if _, err := r.Discard(int(size)); err != nil {
			return nil, "", fmt.Errorf("ar member %q: truncated", name)
		}
		if size%2 == 1 {
			if _, err := r.Discard(1); err != nil {
				return nil, "", fmt.Errorf("ar member %q: truncated padding", name)
			}
		}
	}
}

// decompressor picks the decoder from the data.tar member's extension.
func decompressor(name string, r io.Reader) (io.Reader, func(), error) {
	none := func() {}
	switch path.Ext(name) {
	case ".tar":
		return r, none, nil
	case ".gz":
		z, err := gzip.NewReader(r)
		return z, none, err
	case ".xz":
		z, err := xz.NewReader(r)
		return z, none, err
	case ".zst":
		z, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, none, err
		}
		return z, z.Close, nil
	case ".bz2":
		return bzip2.NewReader(r), none, nil
	case ".lzma":
		z, err := lzma.NewReader(r)
		return z, none, err
	}
	return nil, none, fmt.Errorf("unsupported compression %q", path.Ext(name))
}

// untar extracts tr below dir through an os.Root, so no operation can
// leave dir even if a check below were wrong.
func untar(tr *tar.Reader, dir string, logf func(string, ...any)) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	dirModes := map[string]fs.FileMode{"": 0o755}
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		rel, err := cleanMember(hdr.Name)
		if err != nil {
			return err
		}
		mode := hdr.FileInfo().Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
		if rel == "" {
			if hdr.Typeflag != tar.TypeDir {
				return fmt.Errorf("%q: the root is not a directory", hdr.Name)
			}
			dirModes[""] = mode
			continue
		}
		if err := ensureParents(root, rel); err != nil {
			return err
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			fi, err := root.Lstat(rel)
			switch {
			case err == nil && !fi.IsDir():
				return fmt.Errorf("%s: directory entry over an existing %s", rel, describe(fi.Mode()))
			case err != nil:
				// Owner-writable while extracting; the real mode is set at the end.
				if err := root.Mkdir(rel, 0o700); err != nil {
					return err
				}
			}
			dirModes[rel] = mode
		case tar.TypeReg, tar.TypeRegA:
			if err := removeNonDir(root, rel); err != nil {
				return err
			}
			f, err := root.OpenFile(rel, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil {
				return err
			}
			_, err = io.Copy(f, tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return fmt.Errorf("%s: %w", rel, err)
			}
			if err := root.Chmod(rel, mode); err != nil {
				return err
			}
		case tar.TypeSymlink:
			// The target is stored as is (absolute targets are normal in a
			// rootfs); it is never followed while extracting.
			if err := removeNonDir(root, rel); err != nil {
				return err
			}
			if err := root.Symlink(hdr.Linkname, rel); err != nil {
				return err
			}
		case tar.TypeLink:
			target, err := cleanMember(hdr.Linkname)
			if err != nil {
				return fmt.Errorf("%s: hard link: %w", rel, err)
			}
			fi, err := root.Lstat(target)
			if err != nil || !fi.Mode().IsRegular() {
				return fmt.Errorf("%s: hard link to %q, which is not a regular file extracted before it", rel, hdr.Linkname)
			}
			if err := removeNonDir(root, rel); err != nil {
				return err
			}
			if err := root.Link(target, rel); err != nil {
				return err
			}
		case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
			logf("skipped %s %s (device nodes and FIFOs need root)", map[byte]string{tar.TypeChar: "char device", tar.TypeBlock: "block device", tar.TypeFifo: "fifo"}[hdr.Typeflag], rel)
		default:
			return fmt.Errorf("%s: unsupported tar entry type %q", rel, hdr.Typeflag)
		}
	}
	// Deepest first, so a read-only directory does not block its children.
	dirs := make([]string, 0, len(dirModes))
	for d := range dirModes {
		dirs = append(dirs, d)
	}
	sort.Slice(dirs, func(i, j int) bool { return dirs[i] > dirs[j] })
	for _, d := range dirs {
		name := d
		if name == "" {
			name = "."
		}
		if err := root.Chmod(name, dirModes[d]); err != nil {
			return err
		}
	}
	return nil
}

// cleanMember turns a tar member name ("./usr/bin/x") into a path relative
// to the extraction root, refusing any ".." component.
func cleanMember(name string) (string, error) {
	for _, part := range strings.Split(name, "/") {
		if part == ".." {
			return "", fmt.Errorf("%q escapes the extraction directory", name)
		}
	}
	return strings.TrimPrefix(path.Clean("/"+name), "/"), nil
}

// ensureParents checks that every parent of rel is a real directory (not a
// symlink, which could redirect the write), creating missing ones.
func ensureParents(root *os.Root, rel string) error {
	parts := strings.Split(rel, "/")
	for i := 1; i < len(parts); i++ {
		p := strings.Join(parts[:i], "/")
		fi, err := root.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			if err := root.Mkdir(p, 0o755); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		if !fi.IsDir() {
			return fmt.Errorf("%s: parent %s is a %s, not a directory (refusing to write through it)", rel, p, describe(fi.Mode()))
		}
	}
	return nil
}

// removeNonDir makes room for a new entry, as tar does when a later member
// replaces an earlier one; a directory is never replaced.
func removeNonDir(root *os.Root, rel string) error {
	fi, err := root.Lstat(rel)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return fmt.Errorf("%s: refusing to replace a directory", rel)
	}
	return root.Remove(rel)
}

func describe(m fs.FileMode) string {
	switch {
	case m&fs.ModeSymlink != 0:
		return "symlink"
	case m.IsRegular():
		return "regular file"
	}
	return m.Type().String()
}
