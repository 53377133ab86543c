package debian

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"

	"github.com/kilnproject/kiln/builder/fstree"
)

// AddToTree adds the contents of a .deb to t with the metadata a rootless
// extraction loses: owner and group IDs from the archive, device nodes and
// FIFOs. File contents are read from extractedDir (Extract's output for the
// same .deb); a hard link becomes a second file with the same content.
// Later packages replace earlier ones' files, as dpkg would on overwrite.
func AddToTree(t *fstree.Tree, debPath, extractedDir string) error {
	return withDataTar(debPath, func(tr *tar.Reader) error {
		for {
			hdr, err := tr.Next()
			if err != nil {
				if err == io.EOF {
					return nil
				}
				return err
			}
			rel, err := cleanMember(hdr.Name)
			if err != nil {
				return err
			}
			e := &fstree.Entry{
				Path: rel,
				Perm: hdr.FileInfo().Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky),
				UID:  uint32(hdr.Uid),
				GID:  uint32(hdr.Gid),
			}
			switch hdr.Typeflag {
			case tar.TypeDir:
				e.Kind = fstree.Dir
			case tar.TypeReg, tar.TypeRegA:
				e.Kind, e.Source = fstree.File, filepath.Join(extractedDir, filepath.FromSlash(rel))
			case tar.TypeLink:
				target, err := cleanMember(hdr.Linkname)
				if err != nil {
					return fmt.Errorf("%s: hard link: %w", rel, err)
				}
				e.Kind, e.Source = fstree.File, filepath.Join(extractedDir, filepath.FromSlash(target))
			case tar.TypeSymlink:
				e.Kind, e.Target = fstree.Symlink, hdr.Linkname
			case tar.TypeChar:
				e.Kind, e.Major, e.Minor = fstree.CharDev, uint32(hdr.Devmajor), uint32(hdr.Devminor)
			case tar.TypeBlock:
				e.Kind, e.Major, e.Minor = fstree.BlockDev, uint32(hdr.Devmajor), uint32(hdr.Devminor)
			case tar.TypeFifo:
				e.Kind = fstree.FIFO
			default:
				return fmt.Errorf("%s: unsupported tar entry type %q", rel, hdr.Typeflag)
			}
			if rel == "" {
				continue // the tree's root keeps its own metadata
			}
			if err := t.Add(e); err != nil {
				return fmt.Errorf("%s: %w", rel, err)
			}
		}
	})
}

// AddToTree fetches and extracts p (through the cache) and adds it to t;
// see the package-level AddToTree.
func (s *Source) AddToTree(ctx context.Context, t *fstree.Tree, p *Package) error {
	dir, err := s.ExtractCached(ctx, p)
	if err != nil {
		return err
	}
	deb, err := s.Fetch(ctx, p)
	if err != nil {
		return err
	}
	if err := AddToTree(t, deb, dir); err != nil {
		return fmt.Errorf("debian: %s: %w", p, err)
	}
	return nil
}
