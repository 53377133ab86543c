package debian

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/clearsign"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// needTool fails (never skips) when a tool the tests use as an oracle is missing.
func needTool(t *testing.T, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Fatalf("%s is required by this test (install the Debian package that ships it): %v", name, err)
	}
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// testKey is an OpenPGP key generated per test run (EdDSA: fast to make).
func testKey(t *testing.T) *openpgp.Entity {
	t.Helper()
	e, err := openpgp.NewEntity("kiln test archive", "", "archive@example.invalid", &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func writeKeyring(t *testing.T, e *openpgp.Entity) string {
	t.Helper()
	var buf bytes.Buffer
	if err := e.Serialize(&buf); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "test-keyring.gpg")
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func clearsignText(t *testing.T, e *openpgp.Entity, text string) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := clearsign.Encode(&buf, e.PrivateKey, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte(text)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// testPkg is one package of a fake archive.
type testPkg struct {
	name, version, arch string
	depends, preDepends string
	provides            string
	deb                 []byte // file content served from the pool
}

func (p testPkg) filename() string {
	return fmt.Sprintf("pool/main/%c/%s/%s_%s_%s.deb", p.name[0], p.name, p.name, strings.ReplaceAll(p.version, ":", "%3a"), p.arch)
}

// packagesText renders a Packages file for pkgs.
func packagesText(pkgs []testPkg) string {
	var b strings.Builder
	for _, p := range pkgs {
		arch := p.arch
		if arch == "" {
			arch = "amd64"
		}
		deb := p.deb
		if deb == nil {
			deb = []byte("not really a deb: " + p.name + " " + p.version)
		}
		fmt.Fprintf(&b, "Package: %s\nVersion: %s\nArchitecture: %s\n", p.name, p.version, arch)
		if p.preDepends != "" {
			fmt.Fprintf(&b, "Pre-Depends: %s\n", p.preDepends)
		}
		if p.depends != "" {
			fmt.Fprintf(&b, "Depends: %s\n", p.depends)
		}
		if p.provides != "" {
			fmt.Fprintf(&b, "Provides: %s\n", p.provides)
		}
		fmt.Fprintf(&b, "Filename: %s\nSize: %d\nSHA256: %s\nDescription: test package %s\n multi-line description\n .\n end\n\n",
			p.filename(), len(deb), sum(deb), p.name)
	}
	return b.String()
}

// indexOf builds an Index straight from test packages (no network, no signature).
func indexOf(t *testing.T, pkgs ...testPkg) *Index {
	t.Helper()
	ix := &Index{Arch: "amd64", packages: map[string][]*Package{}, provides: map[string][]provider{}}
	if err := ix.add([]byte(packagesText(pkgs)), "main/binary-amd64/Packages", "test", Suite{URL: "http://archive.invalid/debian", Suite: "test"}, map[string]bool{}); err != nil {
		t.Fatal(err)
	}
	ix.sortAll()
	return ix
}

// fakeArchive is a signed Debian-style archive served on loopback.
type fakeArchive struct {
	t         *testing.T
	key       *openpgp.Entity
	keyring   string
	files     map[string][]byte // URL path (without leading /) -> content
	srv       *httptest.Server
	requests  []string
	suite     string
	extraHead string    // extra InRelease fields (Valid-Until, ...)
	allPkgs   []testPkg // published as a separate binary-all index when set
}

func newFakeArchive(t *testing.T, suite string, pkgs []testPkg) *fakeArchive {
	t.Helper()
	a := &fakeArchive{t: t, key: testKey(t), files: map[string][]byte{}, suite: suite}
	a.keyring = writeKeyring(t, a.key)
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.requests = append(a.requests, r.URL.Path)
		b, ok := a.files[strings.TrimPrefix(r.URL.Path, "/")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write(b)
	}))
	t.Cleanup(a.srv.Close)
	a.publish(pkgs)
	return a
}

// publish writes the pool, a Packages.gz (also by hash) and a signed InRelease.
func (a *fakeArchive) publish(pkgs []testPkg) {
	for _, p := range pkgs {
		deb := p.deb
		if deb == nil {
			deb = []byte("not really a deb: " + p.name + " " + p.version)
		}
		a.files["debian/"+p.filename()] = deb
	}
	dist := "debian/dists/" + a.suite + "/"
	index := func(dir string, pkgs []testPkg) string {
		var gz bytes.Buffer
		zw := gzip.NewWriter(&gz)
		zw.Write([]byte(packagesText(pkgs)))
		zw.Close()
		pk := gz.Bytes()
		a.files[dist+"main/"+dir+"/Packages.gz"] = pk
		a.files[dist+"main/"+dir+"/by-hash/SHA256/"+sum(pk)] = pk
		return fmt.Sprintf(" %s %d main/%s/Packages.gz\n", sum(pk), len(pk), dir)
	}
	sums := index("binary-amd64", pkgs)
	archs := "Architectures: amd64\nNo-Support-for-Architecture-all: Packages\n"
	if a.allPkgs != nil {
		for _, p := range a.allPkgs {
			a.files["debian/"+p.filename()] = p.deb
		}
		sums += index("binary-all", a.allPkgs)
		archs = "Architectures: all amd64\n"
	}
	a.sign(fmt.Sprintf("Origin: Test\nSuite: %s\nCodename: %s\nDate: Sat, 01 Jun 2024 00:00:00 UTC\n%sAcquire-By-Hash: yes\n%sComponents: main\nSHA256:\n%s",
		a.suite, a.suite, a.extraHead, archs, sums))
}

func (a *fakeArchive) sign(release string) {
	a.files["debian/dists/"+a.suite+"/InRelease"] = clearsignText(a.t, a.key, release)
}

func (a *fakeArchive) source(cache string) *Source {
	return &Source{
		Mirrors:    []Suite{{URL: a.srv.URL + "/debian", Suite: a.suite}},
		Keyring:    a.keyring,
		CacheDir:   cache,
		HTTPClient: a.srv.Client(),
		Log:        a.t.Logf,
	}
}
