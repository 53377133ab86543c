package builder

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// fileSHA256 hashes a file.
func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// updateSums writes SHA256SUMS in dir (sha256sum -c format): the new
// artifacts replace their own lines; lines for other files that still exist
// (another arch built earlier into the same directory) are kept.
func updateSums(dir string, arts []Artifact) error {
	sums := map[string]string{}
	sumsPath := filepath.Join(dir, "SHA256SUMS")
	if f, err := os.Open(sumsPath); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			sum, name, ok := strings.Cut(sc.Text(), "  ")
			if ok {
				if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
					sums[name] = sum
				}
			}
		}
		f.Close()
	}
	for i := range arts {
		if arts[i].SHA256 == "" {
			s, err := fileSHA256(arts[i].Path)
			if err != nil {
				return err
			}
			arts[i].SHA256 = s
		}
		sums[filepath.Base(arts[i].Path)] = arts[i].SHA256
	}
	names := make([]string, 0, len(sums))
	for n := range sums {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		fmt.Fprintf(&b, "%s  %s\n", sums[n], n)
	}
	return writeFileAtomic(sumsPath, []byte(b.String()), 0o644)
}

// writeFileAtomic writes a temp file next to path and renames it.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
