package debian

import (
	"bytes"
	"context"
	_ "embed"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/clearsign"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// debianBookwormKeys holds the public keys from Debian's
// debian-archive-keyring package that sign bookworm, bookworm-updates and
// bookworm-security (archive automatic, security automatic, stable release).
//
//go:embed keyring/debian-archive-bookworm.gpg
var debianBookwormKeys []byte

// DefaultKeyring returns the embedded Debian bookworm archive keys.
func DefaultKeyring() []byte { return bytes.Clone(debianBookwormKeys) }

// release is the verified content of a suite's InRelease.
type release struct {
	suite      Suite
	url        string
	suiteField string // Suite: (e.g. oldstable)
	codename   string // Codename: (e.g. bookworm)
	date       time.Time
	validUntil time.Time
	byHash     bool
	allInArch  bool                 // arch:all packages are listed in binary-<arch>: no binary-all to read
	files      map[string]indexFile // path under dists/<suite>/ -> checksum
}

type indexFile struct {
	size   int64
	sha256 string
}

func (s *Source) keyring() (openpgp.EntityList, error) {
	data, name := debianBookwormKeys, "embedded Debian bookworm keyring"
	if s.Keyring != "" {
		b, err := os.ReadFile(s.Keyring)
		if err != nil {
			return nil, fmt.Errorf("debian: keyring: %w", err)
		}
		data, name = b, s.Keyring
	}
	var (
		el  openpgp.EntityList
		err error
	)
	if bytes.Contains(data, []byte("-----BEGIN PGP PUBLIC KEY BLOCK-----")) {
		el, err = openpgp.ReadArmoredKeyRing(bytes.NewReader(data))
	} else {
		el, err = openpgp.ReadKeyRing(bytes.NewReader(data))
	}
	if err != nil {
		return nil, fmt.Errorf("debian: keyring %s: %w", name, err)
	}
	if len(el) == 0 {
		return nil, fmt.Errorf("debian: keyring %s holds no keys", name)
	}
	return el, nil
}

// inReleaseCache is where the last verified InRelease of a suite is kept.
// The URL is hashed so that the cache path names no host.
func (s *Source) inReleaseCache(su Suite) (string, error) {
	key := su.Suite + "-" + sha256Hex([]byte(su.base()))[:16]
	return s.cachePath("dists", key, "InRelease")
}

// release fetches (or, offline, reads from the cache) and verifies the
// InRelease of su.
//
// Valid-Until is enforced only when fetching: an offline build deliberately
// reuses the last verified InRelease, however old, so that a pinned build can
// be repeated years later. For the same reason, offline, keys are checked as
// of the time the signature was made rather than the clock (an archive key
// that has expired since still verified the cached file then).
func (s *Source) release(ctx context.Context, su Suite, keys openpgp.EntityList) (*release, error) {
	url := su.distURL("InRelease")
	cache, err := s.inReleaseCache(su)
	if err != nil {
		return nil, err
	}
	var data []byte
	if s.Offline {
		data, err = os.ReadFile(cache)
		if err != nil {
			return nil, fmt.Errorf("debian: offline and %s is not cached (%w); run once with network access", url, err)
		}
	} else {
		data, err = s.getBytes(ctx, url, 64<<20)
		if err != nil {
			return nil, err
		}
	}
	rel, err := verifyInRelease(data, url, keys, s.Offline)
	if err != nil {
		return nil, err
	}
	rel.suite = su
	// A validly signed InRelease of another suite must not stand in for this one.
	if (rel.suiteField != "" || rel.codename != "") && !rel.isSuite(su.Suite) {
		return nil, fmt.Errorf("debian: %s: InRelease is for suite %q (codename %q), not %q", url, rel.suiteField, rel.codename, su.Suite)
	}
	if !s.Offline {
		if !rel.validUntil.IsZero() && time.Now().After(rel.validUntil) {
			return nil, fmt.Errorf("debian: %s: expired (Valid-Until %s)", url, rel.validUntil.Format(time.RFC1123))
		}
		if old, err := os.ReadFile(cache); err != nil || !bytes.Equal(old, data) {
			if err := writeFileAtomic(cache, data); err != nil {
				return nil, fmt.Errorf("debian: cache %s: %w", url, err)
			}
		}
	}
	return rel, nil
}

func (r *release) isSuite(want string) bool {
	return r.suiteField == want || r.codename == want
}

// verifyInRelease checks the clearsigned InRelease and parses its signed
// text only. atSigTime checks keys and signature as of the time the
// signature was made instead of now.
func verifyInRelease(data []byte, url string, keys openpgp.EntityList, atSigTime bool) (*release, error) {
	block, _ := clearsign.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("debian: %s: bad signature: not a clearsigned OpenPGP message", url)
	}
	rel, err := parseRelease(block.Plaintext, url)
	if err != nil {
		return nil, err
	}
	cfg := &packet.Config{}
	if atSigTime {
		if t := signatureTime(data); !t.IsZero() {
			cfg.Time = func() time.Time { return t }
		}
	}
	if _, err := block.VerifySignature(keys, cfg); err != nil {
		return nil, fmt.Errorf("debian: %s: bad signature: %w", url, err)
	}
	return rel, nil
}

// signatureTime is the newest creation time among the signatures of a
// clearsigned message (zero if none can be read). It only picks the clock
// for the check; the check itself still verifies every byte.
func signatureTime(data []byte) time.Time {
	block, _ := clearsign.Decode(data)
	if block == nil {
		return time.Time{}
	}
	var newest time.Time
	r := packet.NewReader(block.ArmoredSignature.Body)
	for {
		p, err := r.Next()
		if err != nil {
			return newest
		}
		if sig, ok := p.(*packet.Signature); ok && sig.CreationTime.After(newest) {
			newest = sig.CreationTime
		}
	}
}

func parseRelease(text []byte, url string) (*release, error) {
	var st stanza
	err := readStanzas(bytes.NewReader(text), func(p stanza, _ int) error {
		if st == nil {
			st = p
		}
		return nil
	})
	if err != nil || st == nil {
		return nil, fmt.Errorf("debian: %s: malformed InRelease: %v", url, err)
	}
	rel := &release{
		url:        url,
		suiteField: st["suite"],
		codename:   st["codename"],
		byHash:     strings.EqualFold(st["acquire-by-hash"], "yes"),
		files:      map[string]indexFile{},
	}
	// As apt does: binary-all is a separate index only when the archive
	// lists "all" among its Architectures and does not say it merged them.
	rel.allInArch = !contains(strings.Fields(st["architectures"]), "all") ||
		strings.Contains(st["no-support-for-architecture-all"], "Packages")
	if v := st["date"]; v != "" {
		if rel.date, err = parseReleaseTime(v); err != nil {
			return nil, fmt.Errorf("debian: %s: Date: %w", url, err)
		}
	}
	if v := st["valid-until"]; v != "" {
		if rel.validUntil, err = parseReleaseTime(v); err != nil {
			return nil, fmt.Errorf("debian: %s: Valid-Until: %w", url, err)
		}
	}
	sums, ok := st["sha256"]
	if !ok {
		return nil, fmt.Errorf("debian: %s: InRelease has no SHA256 field", url)
	}
	for _, line := range strings.Split(sums, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) != 3 || !isHexSHA256(f[0]) {
			return nil, fmt.Errorf("debian: %s: malformed SHA256 line %q", url, line)
		}
		size, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil || size < 0 {
			return nil, fmt.Errorf("debian: %s: malformed size in SHA256 line %q", url, line)
		}
		rel.files[f[2]] = indexFile{size: size, sha256: f[0]}
	}
	return rel, nil
}

func parseReleaseTime(v string) (time.Time, error) {
	for _, layout := range []string{time.RFC1123, time.RFC1123Z, "Mon, 2 Jan 2006 15:04:05 MST", "Mon, 2 Jan 2006 15:04:05 -0700"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("unrecognised time %q", v)
}

// packagesFile picks the Packages index for a component and architecture
// directory (binary-amd64, binary-all), preferring xz, then gzip.
func (r *release) packagesFile(component, archDir string) (path string, f indexFile, ok bool) {
	for _, ext := range []string{".xz", ".gz"} {
		p := component + "/" + archDir + "/Packages" + ext
		if f, ok := r.files[p]; ok {
			return p, f, true
		}
	}
	return "", indexFile{}, false
}

// indexURL is where to download a file listed in the InRelease: by hash when
// the archive supports it, so a mirror update mid-build cannot mix versions.
func (r *release) indexURL(path string, f indexFile) string {
	if r.byHash {
		return r.suite.distURL(filepath.ToSlash(filepath.Join(filepath.Dir(path), "by-hash", "SHA256", f.sha256)))
	}
	return r.suite.distURL(path)
}
