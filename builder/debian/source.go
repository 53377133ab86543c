// Package debian fetches Debian binary packages without apt, dpkg or root:
// it verifies a suite's signed InRelease against an OpenPGP keyring, checks
// and parses the Packages index it names, resolves dependencies, downloads
// .deb files into a content-addressed cache and extracts their data.tar.
//
// Everything downloaded is cached under CacheDir by its SHA256, and the last
// verified InRelease of each suite is kept, so a build can be repeated with
// Offline set and gives the same packages without touching the network.
//
// Cache layout (all writes go through a temporary file and a rename):
//
//	CacheDir/dists/<suite>-<hash of URL>/InRelease   last verified InRelease
//	CacheDir/indexes/<sha256>                         Packages.{xz,gz} as served
//	CacheDir/debs/<sha256>.deb                        package files
//	CacheDir/extracted/<sha256>/                      their data.tar contents
package debian

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
)

// Source says where packages come from and where they are cached.
type Source struct {
	Mirrors    []Suite      // suites to read, in order of preference for equal versions
	Keyring    string       // OpenPGP keyring (binary or armored) for InRelease; "" = embedded Debian bookworm keys
	CacheDir   string       // e.g. filepath.Join(os.UserCacheDir(), "kiln")
	Offline    bool         // never touch the network: everything comes from CacheDir or fails
	HTTPClient *http.Client // nil = http.DefaultClient
	Log        func(format string, args ...any)
}

// Suite is one "deb URL suite components..." line.
type Suite struct {
	URL        string   // archive root, e.g. ".../debian" (no trailing slash needed)
	Suite      string   // e.g. "bookworm", "bookworm-security"
	Components []string // nil = ["main"]
}

func (su Suite) components() []string {
	if len(su.Components) == 0 {
		return []string{"main"}
	}
	return su.Components
}

func (su Suite) base() string { return strings.TrimRight(su.URL, "/") }

// distURL is the URL of a file under dists/<suite>/.
func (su Suite) distURL(rel string) string {
	return su.base() + "/dists/" + su.Suite + "/" + rel
}

func (s *Source) logf(format string, args ...any) {
	if s.Log != nil {
		s.Log(format, args...)
	}
}

func (s *Source) client() *http.Client {
	if s.HTTPClient != nil {
		return s.HTTPClient
	}
	return http.DefaultClient
}

func (s *Source) cachePath(parts ...string) (string, error) {
	if s.CacheDir == "" {
		return "", fmt.Errorf("debian: Source.CacheDir is empty")
	}
	return filepath.Join(append([]string{s.CacheDir}, parts...)...), nil
}

// get opens url for reading; the caller closes the body.
func (s *Source) get(ctx context.Context, url string) (io.ReadCloser, error) {
	if s.Offline {
		return nil, fmt.Errorf("debian: offline: refusing to fetch %s", url)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("debian: %s: %w", url, err)
	}
	resp, err := s.client().Do(req)
	if err != nil {
		return nil, fmt.Errorf("debian: fetch %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("debian: fetch %s: HTTP %s", url, resp.Status)
	}
	return resp.Body, nil
}

// getBytes fetches a small file (InRelease) whole, refusing more than limit bytes.
func (s *Source) getBytes(ctx context.Context, url string, limit int64) ([]byte, error) {
	body, err := s.get(ctx, url)
	if err != nil {
		return nil, err
	}
	defer body.Close()
	b, err := io.ReadAll(io.LimitReader(body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("debian: fetch %s: %w", url, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("debian: fetch %s: larger than %d bytes", url, limit)
	}
	return b, nil
}

// download streams url into path (temp file + rename) and checks its size
// and SHA256; what names the thing in errors.
func (s *Source) download(ctx context.Context, url, path string, size int64, sum, what string) error {
	body, err := s.get(ctx, url)
	if err != nil {
		return err
	}
	defer body.Close()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("debian: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return fmt.Errorf("debian: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), io.LimitReader(body, size+1))
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("debian: fetch %s: %w", url, err)
	}
	if n != size {
		return fmt.Errorf("debian: %s (%s): size mismatch: expected %d bytes, got %d", what, url, size, n)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != sum {
		return fmt.Errorf("debian: %s (%s): SHA256 mismatch: expected %s, got %s", what, url, sum, got)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("debian: %w", err)
	}
	return nil
}

// verifyFile checks a cached file's size and SHA256.
func verifyFile(path string, size int64, sum, what string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("debian: %s: %w", what, err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return fmt.Errorf("debian: %s: read %s: %w", what, path, err)
	}
	got := hex.EncodeToString(h.Sum(nil))
	if n != size || got != sum {
		return fmt.Errorf("debian: %s: cached file %s does not match the index: expected %d bytes SHA256 %s, got %d bytes SHA256 %s (remove it to fetch again)",
			what, path, size, sum, n, got)
	}
	return nil
}

// writeFileAtomic writes data to path via a temporary file and a rename.
func writeFileAtomic(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func isHexSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

func sha256Hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}
