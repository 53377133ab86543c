package images

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/kilnproject/kiln/builder/fstree"
	"github.com/kilnproject/kiln/builder/sparse"
)

// xattrs holds extended attributes per tree path (name -> raw value).
type xattrs map[string]map[string]string

// writeTar writes t as a layer tar that depends on nothing but the tree:
// entries in path order (every directory before its children), numeric
// owners without names, one modification time, no access or change times.
// The root directory itself is not an entry: an image's root belongs to
// the runtime. PAX records appear only for extended attributes and for
// names too long for USTAR.
func writeTar(w io.Writer, t *fstree.Tree, xa xattrs, mtime time.Time) error {
	tw := tar.NewWriter(w)
	for _, e := range t.Entries() {
		if e.Path == "" {
			continue
		}
		hdr := &tar.Header{
			Name:    e.Path,
			Mode:    tarMode(e),
			Uid:     int(e.UID),
			Gid:     int(e.GID),
			ModTime: mtime,
		}
		switch e.Kind {
		case fstree.Dir:
			hdr.Typeflag, hdr.Name = tar.TypeDir, e.Path+"/"
		case fstree.File:
			hdr.Typeflag, hdr.Size = tar.TypeReg, e.Size()
		case fstree.Symlink:
			hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, e.Target
		case fstree.CharDev, fstree.BlockDev:
			hdr.Typeflag = tar.TypeChar
			if e.Kind == fstree.BlockDev {
				hdr.Typeflag = tar.TypeBlock
			}
			hdr.Devmajor, hdr.Devminor = int64(e.Major), int64(e.Minor)
		case fstree.FIFO:
			hdr.Typeflag = tar.TypeFifo
		default:
			return fmt.Errorf("%s: unsupported entry kind %s", e.Path, e.Kind)
		}
		if attrs := xa[e.Path]; len(attrs) > 0 {
			hdr.Format = tar.FormatPAX
			hdr.PAXRecords = map[string]string{}
			for k, v := range attrs {
				hdr.PAXRecords["SCHILY.xattr."+k] = v
			}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("%s: %w", e.Path, err)
		}
		if e.Kind == fstree.File {
			if err := copyContent(tw, e); err != nil {
				return err
			}
		}
	}
	return tw.Close()
}

// tarMode is the tar header mode: permission bits plus the set-id and
// sticky bits in their c_ISUID/c_ISGID/c_ISVTX positions.
func tarMode(e *fstree.Entry) int64 {
	m := int64(e.Perm.Perm())
	if e.Perm&os.ModeSetuid != 0 {
		m |= 0o4000
	}
	if e.Perm&os.ModeSetgid != 0 {
		m |= 0o2000
	}
	if e.Perm&os.ModeSticky != 0 {
		m |= 0o1000
	}
	return m
}

func copyContent(w io.Writer, e *fstree.Entry) error {
	rc, err := e.Open()
	if err != nil {
		return fmt.Errorf("%s: %w", e.Path, err)
	}
	defer rc.Close()
	n, err := io.Copy(w, rc)
	if err != nil {
		return fmt.Errorf("%s: %w", e.Path, err)
	}
	if n != e.Size() {
		return fmt.Errorf("%s: %s changed size while being read (%d bytes, expected %d)", e.Path, e.Source, n, e.Size())
	}
	return nil
}

// capNetBindService is a security.capability value (struct vfs_cap_data,
// revision 2, little endian) granting cap_net_bind_service (bit 10) in the
// permitted set with the effective flag: what `setcap
// cap_net_bind_service=+ep` writes.
var capNetBindService = func() string {
	const (
		vfsCapRevision2 = 0x02000000
		vfsCapEffective = 0x000001
		capNetBind      = 10
	)
	b := make([]byte, 20)
	binary.LittleEndian.PutUint32(b[0:], vfsCapRevision2|vfsCapEffective)
	binary.LittleEndian.PutUint32(b[4:], 1<<capNetBind) // data[0].permitted
	return string(b)                                    // inheritable and data[1] stay 0
}()

// fileLayer is an uncompressed layer blob already written into the
// layout: its digest is its diff ID.
type fileLayer struct {
	path   string
	digest v1.Hash
	size   int64
}

var _ v1.Layer = (*fileLayer)(nil)

func (l *fileLayer) Digest() (v1.Hash, error)             { return l.digest, nil }
func (l *fileLayer) DiffID() (v1.Hash, error)             { return l.digest, nil }
func (l *fileLayer) Size() (int64, error)                 { return l.size, nil }
func (l *fileLayer) MediaType() (types.MediaType, error)  { return types.OCIUncompressedLayer, nil }
func (l *fileLayer) Compressed() (io.ReadCloser, error)   { return os.Open(l.path) }
func (l *fileLayer) Uncompressed() (io.ReadCloser, error) { return os.Open(l.path) }

// writeLayerBlob writes t as a tar straight into the layout's blob
// directory (temporary file, then renamed to its digest). A layer whose
// bytes are already there (the base layer every image shares) is stored
// once.
func writeLayerBlob(blobDir string, t *fstree.Tree, xa xattrs, mtime time.Time) (*fileLayer, error) {
	f, err := os.CreateTemp(blobDir, ".layer-*")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name()) // no-op after the rename
	h := sha256.New()
	cw := &sparse.CountingWriter{W: io.MultiWriter(f, h)}
	err = writeTar(cw, t, xa, mtime)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	hexSum := hex.EncodeToString(h.Sum(nil))
	final := filepath.Join(blobDir, hexSum)
	if err := os.Rename(f.Name(), final); err != nil {
		return nil, err
	}
	return &fileLayer{path: final, digest: v1.Hash{Algorithm: "sha256", Hex: hexSum}, size: cw.N}, nil
}
