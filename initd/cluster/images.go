package cluster

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// TarLayout writes the OCI image layout in dir to w as a tar stream, the
// form `ctr images import -` reads: oci-layout and index.json first, then
// the blobs, in name order. Nothing is compressed (the layers already are
// what they are) and nothing is buffered: the layout is hundreds of MB.
// With keep, only the images whose reference keep accepts go: index.json
// lists those alone, and only the blobs they reach (manifests, configs,
// layers) follow.
func TarLayout(w io.Writer, dir string, keep func(ref string) bool) error {
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			rel, _ := filepath.Rel(dir, p)
			files = append(files, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		return err
	}
	var index []byte
	if keep != nil {
		var reach map[string]bool
		if index, reach, err = selectImages(dir, keep); err != nil {
			return err
		}
		kept := files[:0]
		for _, f := range files {
			if !strings.HasPrefix(f, "blobs/") || reach[f] {
				kept = append(kept, f)
			}
		}
		files = kept
	}
	rank := func(name string) int {
		switch name {
		case "oci-layout":
			return 0
		case "index.json":
			return 1
		}
		return 2
	}
	sort.Slice(files, func(i, j int) bool {
		if ri, rj := rank(files[i]), rank(files[j]); ri != rj {
			return ri < rj
		}
		return files[i] < files[j]
	})
	tw := tar.NewWriter(w)
	for _, name := range files {
		if name == "index.json" && index != nil {
			h := &tar.Header{Name: name, Mode: 0o644, Size: int64(len(index)), Typeflag: tar.TypeReg, Format: tar.FormatPAX}
			if err := tw.WriteHeader(h); err != nil {
				return err
			}
			if _, err := tw.Write(index); err != nil {
				return err
			}
			continue
		}
		f, err := os.Open(filepath.Join(dir, filepath.FromSlash(name)))
		if err != nil {
			return err
		}
		st, err := f.Stat()
		if err != nil {
			f.Close()
			return err
		}
		h := &tar.Header{Name: name, Mode: 0o644, Size: st.Size(), Typeflag: tar.TypeReg, Format: tar.FormatPAX}
		if err := tw.WriteHeader(h); err != nil {
			f.Close()
			return err
		}
		_, err = io.Copy(tw, f)
		f.Close()
		if err != nil {
			return err
		}
	}
	return tw.Close()
}

// Annotations that name an image in index.json (kiln build writes both).
const (
	annotationRefName    = "org.opencontainers.image.ref.name"
	annotationContainerd = "io.containerd.image.name"
)

// descriptor is an OCI content descriptor, with the fields kept as they
// are (json.RawMessage) where only passing them on matters.
type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// selectImages returns index.json with only the images keep accepts, and
// the blob paths ("blobs/sha256/HEX") those images reach.
func selectImages(dir string, keep func(string) bool) ([]byte, map[string]bool, error) {
	data, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		return nil, nil, err
	}
	var idx map[string]json.RawMessage
	if err := json.Unmarshal(data, &idx); err != nil {
		return nil, nil, fmt.Errorf("index.json: %w", err)
	}
	var all []json.RawMessage
	if err := json.Unmarshal(idx["manifests"], &all); err != nil {
		return nil, nil, fmt.Errorf("index.json: manifests: %w", err)
	}
	reach := map[string]bool{}
	var kept []json.RawMessage
	for _, raw := range all {
		var d descriptor
		if err := json.Unmarshal(raw, &d); err != nil {
			return nil, nil, fmt.Errorf("index.json: %w", err)
		}
		ref := d.Annotations[annotationContainerd]
		if ref == "" {
			ref = d.Annotations[annotationRefName]
		}
		if !keep(ref) {
			continue
		}
		kept = append(kept, raw)
		if err := walkBlobs(dir, d, reach); err != nil {
			return nil, nil, err
		}
	}
	if idx["manifests"], err = json.Marshal(kept); err != nil {
		return nil, nil, err
	}
	out, err := json.Marshal(idx)
	return out, reach, err
}

// walkBlobs adds d's blob and, for a manifest or an index, every blob it
// refers to.
func walkBlobs(dir string, d descriptor, reach map[string]bool) error {
	algo, hexd, ok := strings.Cut(d.Digest, ":")
	if !ok || strings.ContainsAny(hexd, "/.") || algo == "" {
		return fmt.Errorf("index.json: bad digest %q", d.Digest)
	}
	p := "blobs/" + algo + "/" + hexd
	if reach[p] {
		return nil
	}
	reach[p] = true
	if !strings.Contains(d.MediaType, "manifest") && !strings.Contains(d.MediaType, "index") {
		return nil
	}
	data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(p)))
	if err != nil {
		return err
	}
	var m struct {
		Config    *descriptor  `json:"config"`
		Layers    []descriptor `json:"layers"`
		Manifests []descriptor `json:"manifests"`
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	next := append(m.Layers, m.Manifests...)
	if m.Config != nil {
		next = append(next, *m.Config)
	}
	for _, c := range next {
		if err := walkBlobs(dir, c, reach); err != nil {
			return err
		}
	}
	return nil
}

// LayoutDigest identifies a layout by its index.json: the import is done
// again only when it changed (a new image).
func LayoutDigest(dir string) (string, error) {
	data, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}
