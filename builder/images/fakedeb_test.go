package images

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

	"github.com/kilnproject/kiln/builder/debian"
)

// fakePkg is a package of the fake archive: files maps a path to its
// content ("-> target" makes a symlink).
type fakePkg struct {
	name, depends string
	files         map[string]string
}

// fakeUserspace stands in for iptables, nftables and ipset with the shapes
// that matter to the layer: files in /sbin and /lib (usr-merge), symlinks
// for the alternatives to point at, and documentation, locales, iconv
// modules and systemd units that must stay out. nftables depends on an
// excluded package that is not in the archive at all.
func fakeUserspace(triplet string) []fakePkg {
	lib := "usr/lib/" + triplet
	return []fakePkg{
		{name: "iptables", depends: "libc6, libxtables12 (>= 1.0)", files: map[string]string{
			"usr/sbin/xtables-nft-multi":       "#!/bin/sh\necho xtables\n",
			"usr/sbin/iptables-nft":            "-> xtables-nft-multi",
			"usr/sbin/iptables-nft-save":       "-> xtables-nft-multi",
			"usr/sbin/iptables-nft-restore":    "-> xtables-nft-multi",
			"usr/sbin/ip6tables-nft":           "-> xtables-nft-multi",
			"usr/sbin/ip6tables-nft-save":      "-> xtables-nft-multi",
			"usr/sbin/ip6tables-nft-restore":   "-> xtables-nft-multi",
			lib + "/xtables/libxt_comment.so":  "fake extension",
			"usr/share/man/man8/iptables.8":    "manual",
			"usr/share/iptables/iptables.xslt": "xslt",
		}},
		{name: "nftables", depends: "libc6, init-system-helpers", files: map[string]string{
			"usr/sbin/nft":                        "#!/bin/sh\necho nft\n",
			"etc/nftables.conf":                   "flush ruleset\n",
			"lib/systemd/system/nftables.service": "[Unit]\n",
			"usr/share/doc/nftables/copyright":    "copyright",
		}},
		{name: "ipset", depends: "libc6", files: map[string]string{
			"sbin/ipset": "#!/bin/sh\necho ipset\n",
		}},
		{name: "libc6", files: map[string]string{
			"lib/" + triplet + "/libc.so.6":           "fake libc",
			"lib64/ld-fake.so.2":                      "-> /lib/" + triplet + "/libc.so.6",
			lib + "/gconv/UTF-16.so":                  "iconv module",
			"usr/share/locale/de/LC_MESSAGES/libc.mo": "locale",
			"usr/libexec/getconf/POSIX_V7_LP64_OFF64": "getconf",
		}},
		{name: "libxtables12", depends: "libc6", files: map[string]string{
			lib + "/libxtables.so.12": "fake libxtables",
		}},
		{name: "unrelated", files: map[string]string{"usr/bin/unrelated": "not in the closure"}},
	}
}

// buildDeb makes a real .deb with dpkg-deb (root:root owners).
func buildDeb(t *testing.T, p fakePkg, arch string) []byte {
	t.Helper()
	if _, err := exec.LookPath("dpkg-deb"); err != nil {
		t.Fatalf("dpkg-deb is required by this test (apt-get install dpkg): %v", err)
	}
	root := filepath.Join(t.TempDir(), p.name)
	for path, content := range p.files {
		full := filepath.Join(root, path)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if target, ok := strings.CutPrefix(content, "-> "); ok {
			if err := os.Symlink(target, full); err != nil {
				t.Fatal(err)
			}
			continue
		}
		mode := os.FileMode(0o644)
		if strings.HasPrefix(content, "#!") {
			mode = 0o755
		}
		if err := os.WriteFile(full, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
	control := fmt.Sprintf("Package: %s\nVersion: 1.0-1\nArchitecture: %s\nMaintainer: test <test@example.invalid>\nDescription: fake %s\n", p.name, arch, p.name)
	if p.depends != "" {
		control += "Depends: " + p.depends + "\n"
	}
	if err := os.MkdirAll(filepath.Join(root, "DEBIAN"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "DEBIAN/control"), []byte(control), 0o644); err != nil {
		t.Fatal(err)
	}
	out := root + ".deb"
	if b, err := exec.Command("dpkg-deb", "--root-owner-group", "-Zgzip", "--build", root, out).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb: %v\n%s", err, b)
	}
	deb, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return deb
}

// fakeArchive serves pkgs as a signed one-suite archive on loopback and
// returns a Source for it, caching into a fresh directory.
func fakeArchive(t *testing.T, arch string, pkgs []fakePkg) *debian.Source {
	t.Helper()
	key, err := openpgp.NewEntity("kiln images test archive", "", "archive@example.invalid", &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA})
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	var index strings.Builder
	for _, p := range pkgs {
		deb := buildDeb(t, p, arch)
		fn := fmt.Sprintf("pool/main/%s_1.0-1_%s.deb", p.name, arch)
		files[fn] = deb
		fmt.Fprintf(&index, "Package: %s\nVersion: 1.0-1\nArchitecture: %s\n", p.name, arch)
		if p.depends != "" {
			fmt.Fprintf(&index, "Depends: %s\n", p.depends)
		}
		fmt.Fprintf(&index, "Filename: %s\nSize: %d\nSHA256: %s\nDescription: fake\n\n", fn, len(deb), sha256Hex(deb))
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(index.String()))
	zw.Close()
	pk := gz.Bytes()
	files["dists/test/main/binary-"+arch+"/Packages.gz"] = pk
	release := fmt.Sprintf("Origin: Test\nSuite: test\nCodename: test\nDate: Sat, 01 Jun 2024 00:00:00 UTC\nArchitectures: %s\nNo-Support-for-Architecture-all: Packages\nComponents: main\nSHA256:\n %s %d main/binary-%s/Packages.gz\n",
		arch, sha256Hex(pk), len(pk), arch)
	var signed bytes.Buffer
	w, err := clearsign.Encode(&signed, key.PrivateKey, nil)
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte(release))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	files["dists/test/InRelease"] = signed.Bytes()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, ok := files[strings.TrimPrefix(r.URL.Path, "/")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write(b)
	}))
	t.Cleanup(srv.Close)
	var kr bytes.Buffer
	if err := key.Serialize(&kr); err != nil {
		t.Fatal(err)
	}
	keyring := filepath.Join(t.TempDir(), "keyring.gpg")
	if err := os.WriteFile(keyring, kr.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return &debian.Source{
		Mirrors:    []debian.Suite{{URL: srv.URL, Suite: "test"}},
		Keyring:    keyring,
		CacheDir:   t.TempDir(),
		HTTPClient: srv.Client(),
	}
}

func sha256Hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}
