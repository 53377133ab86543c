package debian

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp/clearsign"
)

var archivePkgs = []testPkg{
	{name: "hello", version: "2.10-3", depends: "libc6 (>= 2.34)", deb: []byte("hello deb bytes")},
	{name: "libc6", version: "2.36-9+deb12u10", deb: []byte("libc6 deb bytes")},
	{name: "libc6", version: "2.36-9", deb: []byte("older libc6 deb bytes")},
}

func TestIndexFetchAndOffline(t *testing.T) {
	a := newFakeArchive(t, "bookworm", archivePkgs)
	cache := t.TempDir()
	ctx := context.Background()
	src := a.source(cache)
	ix, err := src.Index(ctx, "amd64")
	if err != nil {
		t.Fatal(err)
	}
	pkgs, err := ix.Resolve([]string{"hello"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if names(pkgs) != "hello=2.10-3 libc6=2.36-9+deb12u10" {
		t.Fatalf("resolved %s", names(pkgs))
	}
	// The Packages index is fetched by hash (Acquire-By-Hash: yes).
	if !strings.Contains(strings.Join(a.requests, " "), "/by-hash/SHA256/") {
		t.Errorf("Packages not fetched by hash: %v", a.requests)
	}
	var paths []string
	for _, p := range pkgs {
		path, err := src.Fetch(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		if filepath.Base(path) != p.SHA256+".deb" {
			t.Errorf("cache path %s is not named by SHA256", path)
		}
		b, _ := os.ReadFile(path)
		if !bytes.Equal(b, a.files["debian/"+strings.TrimPrefix(p.Filename, "")]) {
			t.Errorf("%s: cached bytes differ from the archive", p.Name)
		}
		paths = append(paths, path)
	}

	// Offline, with the server gone: the same index and files from the cache.
	a.srv.Close()
	off := a.source(cache)
	off.Offline = true
	ix2, err := off.Index(ctx, "amd64")
	if err != nil {
		t.Fatal(err)
	}
	pkgs2, err := ix2.Resolve([]string{"hello"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if names(pkgs2) != names(pkgs) {
		t.Fatalf("offline resolved %s, online %s", names(pkgs2), names(pkgs))
	}
	for i, p := range pkgs2 {
		path, err := off.Fetch(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		if path != paths[i] {
			t.Errorf("offline path %s, online %s", path, paths[i])
		}
	}
	// Offline and not cached: a clear error.
	older, _ := ix2.Lookup("libc6", "2.36-9")
	if _, err := off.Fetch(ctx, older); err == nil || !strings.Contains(err.Error(), "offline") || !strings.Contains(err.Error(), "libc6 2.36-9") {
		t.Errorf("offline fetch of an uncached package: %v", err)
	}
	empty := a.source(t.TempDir())
	empty.Offline = true
	if _, err := empty.Index(ctx, "amd64"); err == nil || !strings.Contains(err.Error(), "offline") || !strings.Contains(err.Error(), "InRelease") {
		t.Errorf("offline index with an empty cache: %v", err)
	}
}

func TestTamperedInRelease(t *testing.T) {
	a := newFakeArchive(t, "bookworm", archivePkgs)
	url := a.srv.URL + "/debian/dists/bookworm/InRelease"
	ir := a.files["debian/dists/bookworm/InRelease"]
	a.files["debian/dists/bookworm/InRelease"] = bytes.Replace(ir, []byte("Origin: Test"), []byte("Origin: Evil"), 1)
	_, err := a.source(t.TempDir()).Index(context.Background(), "amd64")
	if err == nil || !strings.Contains(err.Error(), "bad signature") || !strings.Contains(err.Error(), url) {
		t.Fatalf("tampered InRelease: %v", err)
	}

	// Signed by a key that is not in the keyring.
	plain, _ := clearsign.Decode(ir)
	a.files["debian/dists/bookworm/InRelease"] = clearsignText(t, testKey(t), string(plain.Plaintext))
	if _, err := a.source(t.TempDir()).Index(context.Background(), "amd64"); err == nil || !strings.Contains(err.Error(), "bad signature") {
		t.Fatalf("unknown signer: %v", err)
	}
	// Not signed at all.
	a.files["debian/dists/bookworm/InRelease"] = []byte("Origin: Test\nSuite: bookworm\nSHA256:\n")
	if _, err := a.source(t.TempDir()).Index(context.Background(), "amd64"); err == nil || !strings.Contains(err.Error(), "bad signature") {
		t.Fatalf("unsigned: %v", err)
	}
}

func TestInReleaseOfAnotherSuite(t *testing.T) {
	a := newFakeArchive(t, "bookworm", archivePkgs)
	// A genuine InRelease of another suite served in place of this one.
	b := newFakeArchive(t, "trixie", archivePkgs)
	b.key = a.key
	b.publish(archivePkgs)
	a.files["debian/dists/bookworm/InRelease"] = b.files["debian/dists/trixie/InRelease"]
	if _, err := a.source(t.TempDir()).Index(context.Background(), "amd64"); err == nil || !strings.Contains(err.Error(), `not "bookworm"`) {
		t.Fatalf("wrong suite: %v", err)
	}
}

func TestValidUntil(t *testing.T) {
	a := newFakeArchive(t, "bookworm-security", nil)
	cache := t.TempDir()
	if _, err := a.source(cache).Index(context.Background(), "amd64"); err != nil {
		t.Fatal(err)
	}
	// Expired: refused online, accepted offline from the last verified copy.
	a.extraHead = "Valid-Until: Sun, 02 Jun 2024 00:00:00 UTC\n"
	a.publish(archivePkgs)
	if _, err := a.source(t.TempDir()).Index(context.Background(), "amd64"); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("expired InRelease online: %v", err)
	}
	cache2 := t.TempDir()
	os.MkdirAll(filepath.Join(cache2, "dists"), 0o755)
	src := a.source(cache2)
	p, _ := src.inReleaseCache(src.Mirrors[0])
	os.MkdirAll(filepath.Dir(p), 0o755)
	os.WriteFile(p, a.files["debian/dists/bookworm-security/InRelease"], 0o644)
	// Offline needs the Packages file in the cache too.
	for k, v := range a.files {
		if strings.Contains(k, "/by-hash/SHA256/") {
			os.MkdirAll(filepath.Join(cache2, "indexes"), 0o755)
			os.WriteFile(filepath.Join(cache2, "indexes", filepath.Base(k)), v, 0o644)
		}
	}
	src.Offline = true
	ix, err := src.Index(context.Background(), "amd64")
	if err != nil {
		t.Fatalf("expired InRelease offline: %v", err)
	}
	if _, err := ix.Lookup("hello", ""); err != nil {
		t.Fatal(err)
	}
}

func TestPackagesChecksumMismatch(t *testing.T) {
	a := newFakeArchive(t, "bookworm", archivePkgs)
	for k, v := range a.files {
		if strings.Contains(k, "Packages.gz") || strings.Contains(k, "by-hash") {
			a.files[k] = append(bytes.Clone(v[:len(v)-1]), v[len(v)-1]^0xff)
		}
	}
	_, err := a.source(t.TempDir()).Index(context.Background(), "amd64")
	if err == nil || !strings.Contains(err.Error(), "SHA256 mismatch") || !strings.Contains(err.Error(), "main/binary-amd64/Packages.gz") {
		t.Fatalf("corrupt Packages.gz: %v", err)
	}
}

func TestTamperedDeb(t *testing.T) {
	a := newFakeArchive(t, "bookworm", archivePkgs)
	ctx := context.Background()
	cache := t.TempDir()
	src := a.source(cache)
	ix, err := src.Index(ctx, "amd64")
	if err != nil {
		t.Fatal(err)
	}
	p, _ := ix.Lookup("hello", "")
	key := "debian/" + p.Filename
	good := a.files[key]
	bad := bytes.Clone(good)
	bad[3] ^= 1
	a.files[key] = bad
	_, err = src.Fetch(ctx, p)
	if err == nil || !strings.Contains(err.Error(), "hello 2.10-3") || !strings.Contains(err.Error(), "expected "+p.SHA256) || !strings.Contains(err.Error(), "got "+sum(bad)) {
		t.Fatalf("tampered download: %v", err)
	}
	if _, err := os.Stat(filepath.Join(cache, "debs", p.SHA256+".deb")); err == nil {
		t.Fatal("a bad download was left in the cache")
	}
	// A cached file that was changed after download is caught too.
	a.files[key] = good
	path, err := src.Fetch(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(path, bad, 0o644)
	if _, err := src.Fetch(ctx, p); err == nil || !strings.Contains(err.Error(), "hello 2.10-3") || !strings.Contains(err.Error(), sum(bad)) {
		t.Fatalf("tampered cache: %v", err)
	}
}

func TestMissingPackageNamed(t *testing.T) {
	a := newFakeArchive(t, "bookworm", archivePkgs)
	ix, err := a.source(t.TempDir()).Index(context.Background(), "amd64")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ix.Resolve([]string{"hello", "isolinux"}, nil); err == nil || !strings.Contains(err.Error(), `"isolinux"`) {
		t.Fatalf("missing package: %v", err)
	}
}

func TestByHashFallback(t *testing.T) {
	a := newFakeArchive(t, "bookworm", archivePkgs)
	for k := range a.files {
		if strings.Contains(k, "/by-hash/") {
			delete(a.files, k)
		}
	}
	ix, err := a.source(t.TempDir()).Index(context.Background(), "amd64")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ix.Lookup("hello", ""); err != nil {
		t.Fatal(err)
	}
}

func TestBinaryAll(t *testing.T) {
	a := newFakeArchive(t, "bookworm", archivePkgs)
	a.allPkgs = []testPkg{{name: "docs", version: "1", arch: "all", depends: "hello", deb: []byte("docs deb")}}
	a.publish(archivePkgs)
	ix, err := a.source(t.TempDir()).Index(context.Background(), "amd64")
	if err != nil {
		t.Fatal(err)
	}
	got, err := ix.Resolve([]string{"docs"}, nil)
	if err != nil || names(got) != "docs=1 hello=2.10-3 libc6=2.36-9+deb12u10" {
		t.Fatalf("binary-all package: %s %v", names(got), err)
	}
}
