package debian

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestRealMirror reads the host's Debian suites (or KILN_DEBIAN_MIRROR),
// verifies them with the embedded bookworm keys, resolves and fetches
// isolinux, extracts it, then repeats everything offline from the cache.
func TestRealMirror(t *testing.T) {
	if testing.Short() || os.Getenv("KILN_OFFLINE") == "1" {
		t.Skip("needs the Debian mirror (skipped by -short or KILN_OFFLINE=1)")
	}
	suites, err := HostSuites()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cache := t.TempDir()
	src := &Source{Mirrors: suites, CacheDir: cache, Log: t.Logf}
	run := func(src *Source) (pkgs []*Package, deb, dir string) {
		t.Helper()
		ix, err := src.Index(ctx, "amd64")
		if err != nil {
			t.Fatal(err)
		}
		// A real closure, to exercise the resolver on the archive's own data.
		if _, err := ix.Resolve([]string{"e2fsprogs", "iptables", "systemd-boot-efi"}, nil); err != nil {
			t.Fatal(err)
		}
		pkgs, err = ix.Resolve([]string{"isolinux"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		var iso *Package
		for _, p := range pkgs {
			if p.Name == "isolinux" {
				iso = p
			}
		}
		if iso == nil {
			t.Fatalf("isolinux not in its own closure: %v", pkgs)
		}
		if deb, err = src.Fetch(ctx, iso); err != nil {
			t.Fatal(err)
		}
		if dir, err = src.ExtractCached(ctx, iso); err != nil {
			t.Fatal(err)
		}
		if fi, err := os.Stat(filepath.Join(dir, "usr/lib/ISOLINUX/isolinux.bin")); err != nil || fi.Size() == 0 {
			t.Fatalf("isolinux.bin missing from %s: %v", dir, err)
		}
		return pkgs, deb, dir
	}
	pkgs, deb, dir := run(src)
	src.Offline = true
	pkgs2, deb2, dir2 := run(src)
	if names(pkgs) != names(pkgs2) || deb != deb2 || dir != dir2 {
		t.Fatalf("offline run differs:\n online  %s %s %s\n offline %s %s %s", names(pkgs), deb, dir, names(pkgs2), deb2, dir2)
	}
	t.Logf("isolinux closure: %s", names(pkgs))
}
