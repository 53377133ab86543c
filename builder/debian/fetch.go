package debian

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
)

// Fetch returns the path of p's .deb in CacheDir/debs/<sha256>.deb,
// downloading it if needed. The file is checked against the index's size and
// SHA256 every time, cached or not; a mismatch is an error naming the
// package, the expected and the actual digest.
func (s *Source) Fetch(ctx context.Context, p *Package) (string, error) {
	if !isHexSHA256(p.SHA256) {
		return "", fmt.Errorf("debian: %s: bad SHA256 %q", p, p.SHA256)
	}
	path, err := s.cachePath("debs", p.SHA256+".deb")
	if err != nil {
		return "", err
	}
	what := "package " + p.String()
	if _, err := os.Stat(path); err == nil {
		if err := verifyFile(path, p.Size, p.SHA256, what); err != nil {
			return "", err
		}
		return path, nil
	}
	if s.Offline {
		return "", fmt.Errorf("debian: offline and %s is not cached at %s; run once with network access", what, path)
	}
	s.logf("debian: fetch %s (%d bytes)", p, p.Size)
	if err := s.download(ctx, p.URL(), path, p.Size, p.SHA256, what); err != nil {
		return "", err
	}
	return path, nil
}

// ExtractCached fetches p and returns CacheDir/extracted/<sha256>/ holding
// its data.tar contents, extracting it the first time.
func (s *Source) ExtractCached(ctx context.Context, p *Package) (string, error) {
	deb, err := s.Fetch(ctx, p)
	if err != nil {
		return "", err
	}
	dir, err := s.cachePath("extracted", p.SHA256)
	if err != nil {
		return "", err
	}
	// Extract renames a complete tree into place, so an existing directory
	// is a finished extraction of a verified file with this digest.
	if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
		return dir, nil
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return "", fmt.Errorf("debian: %w", err)
	}
	if err := Extract(deb, dir, s.Log); err != nil {
		// Another process may have won the race to the same result.
		if fi, serr := os.Stat(dir); serr == nil && fi.IsDir() {
			return dir, nil
		}
		return "", fmt.Errorf("debian: %s: %w", p, err)
	}
	return dir, nil
}
