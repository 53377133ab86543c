package debian

import (
	"strings"
	"testing"
)

func names(pkgs []*Package) string {
	var s []string
	for _, p := range pkgs {
		s = append(s, p.Name+"="+p.Version)
	}
	return strings.Join(s, " ")
}

func TestLookup(t *testing.T) {
	ix := indexOf(t,
		testPkg{name: "libc6", version: "2.36-9+deb12u4"},
		testPkg{name: "libc6", version: "2.36-9+deb12u10"},
		testPkg{name: "libc6", version: "2.36-9"},
		testPkg{name: "mawk", version: "1.3.4", provides: "awk"},
	)
	p, err := ix.Lookup("libc6", "")
	if err != nil || p.Version != "2.36-9+deb12u10" {
		t.Fatalf("highest libc6 = %v, %v; want 2.36-9+deb12u10", p, err)
	}
	if p, err := ix.Lookup("libc6", "2.36-9"); err != nil || p.Version != "2.36-9" {
		t.Fatalf("pinned libc6 = %v, %v", p, err)
	}
	if _, err := ix.Lookup("libc6", "9.9"); err == nil || !strings.Contains(err.Error(), `"libc6" version "9.9"`) || !strings.Contains(err.Error(), "2.36-9+deb12u4") {
		t.Fatalf("missing version: %v", err)
	}
	if _, err := ix.Lookup("no-such-package", ""); err == nil || !strings.Contains(err.Error(), `"no-such-package" not found`) {
		t.Fatalf("missing package: %v", err)
	}
	if _, err := ix.Lookup("awk", ""); err == nil || !strings.Contains(err.Error(), "virtual package provided by mawk") {
		t.Fatalf("virtual package: %v", err)
	}
}

func TestResolve(t *testing.T) {
	ix := indexOf(t,
		testPkg{name: "app", version: "1.0", preDepends: "libc6 (>= 2.34)", depends: "libssl3 (>= 3.0.9) | libssl1.1, awk, mail-transport-agent, python3:any (>= 3.11~), helper"},
		testPkg{name: "libc6", version: "2.36-9", depends: "libgcc-s1"},
		testPkg{name: "libc6", version: "2.31-13"},
		testPkg{name: "libgcc-s1", version: "12.2.0-14", depends: "libc6 (>= 2.35)"}, // cycle with libc6
		testPkg{name: "libssl3", version: "3.0.8"},                                   // too old: the alternative is taken
		testPkg{name: "libssl1.1", version: "1.1.1n"},
		testPkg{name: "mawk", version: "1.3.4", provides: "awk"},
		testPkg{name: "gawk", version: "5.2", provides: "awk"},
		testPkg{name: "postfix", version: "3.7", provides: "mail-transport-agent", depends: "debconf (>= 0.5) | debconf-2.0"},
		testPkg{name: "exim4", version: "4.96", provides: "mail-transport-agent"},
		testPkg{name: "python3", version: "3.11.2-1"},
		testPkg{name: "helper", version: "2:1.0", depends: "app"}, // cycle back to the root
		testPkg{name: "unrelated", version: "1"},
	)
	got, err := ix.Resolve([]string{"app"}, []string{"debconf"})
	if err != nil {
		t.Fatal(err)
	}
	// awk -> gawk (first provider by name), MTA -> exim4, debconf excluded.
	want := "app=1.0 exim4=4.96 gawk=5.2 helper=2:1.0 libc6=2.36-9 libgcc-s1=12.2.0-14 libssl1.1=1.1.1n python3=3.11.2-1"
	if names(got) != want {
		t.Fatalf("Resolve(app):\n got %s\nwant %s", names(got), want)
	}

	// An alternative or provider already chosen wins over the first one.
	got, err = ix.Resolve([]string{"mawk", "libssl3", "postfix", "app"}, []string{"debconf"})
	if err != nil {
		t.Fatal(err)
	}
	// libssl3 3.0.8 is too old for app, so libssl1.1 comes in beside it.
	want = "app=1.0 helper=2:1.0 libc6=2.36-9 libgcc-s1=12.2.0-14 libssl1.1=1.1.1n libssl3=3.0.8 mawk=1.3.4 postfix=3.7 python3=3.11.2-1"
	if names(got) != want {
		t.Fatalf("Resolve with choices made:\n got %s\nwant %s", names(got), want)
	}
}

func TestResolveVersionedProvides(t *testing.T) {
	ix := indexOf(t,
		testPkg{name: "a", version: "1", depends: "virt (>= 2)"},
		testPkg{name: "old", version: "1", provides: "virt (= 1)"},
		testPkg{name: "plain", version: "1", provides: "virt"}, // unversioned: cannot meet (>= 2)
		testPkg{name: "new", version: "1", provides: "virt (= 2.5)"},
	)
	got, err := ix.Resolve([]string{"a"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if names(got) != "a=1 new=1" {
		t.Fatalf("got %s, want a=1 new=1", names(got))
	}
}

func TestResolvePinsAndConstraints(t *testing.T) {
	ix := indexOf(t,
		testPkg{name: "tool", version: "2.0", depends: "lib (= 2.0)"},
		testPkg{name: "tool", version: "1.0", depends: "lib (<< 2)"},
		testPkg{name: "lib", version: "2.0"},
		testPkg{name: "lib", version: "1.5"},
		testPkg{name: "lib", version: "1.0"},
	)
	got, err := ix.Resolve([]string{"tool=1.0"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if names(got) != "lib=1.5 tool=1.0" {
		t.Fatalf("pinned: got %s, want lib=1.5 tool=1.0", names(got))
	}
	// Conflicting needs on one name: an error naming the package and the dependency.
	_, err = ix.Resolve([]string{"lib=1.0", "tool"}, nil)
	if err == nil || !strings.Contains(err.Error(), "tool 2.0") || !strings.Contains(err.Error(), "lib (= 2.0)") || !strings.Contains(err.Error(), "already chosen at version 1.0") {
		t.Fatalf("conflict: %v", err)
	}
}

func TestResolveMissing(t *testing.T) {
	ix := indexOf(t,
		testPkg{name: "a", version: "1", depends: "b"},
		testPkg{name: "b", version: "1", depends: "c (>= 3) | d"},
		testPkg{name: "c", version: "2"},
	)
	_, err := ix.Resolve([]string{"a"}, nil)
	if err == nil {
		t.Fatal("want an error")
	}
	for _, s := range []string{"b 1", `"c (>= 3) | d"`, "c has only version 2", "d is not in the amd64 index"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not mention %q", err, s)
		}
	}
	if _, err := ix.Resolve([]string{"nope"}, nil); err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("missing root: %v", err)
	}
	// Excluding the missing dependency makes it resolvable.
	got, err := ix.Resolve([]string{"a"}, []string{"d"})
	if err != nil || names(got) != "a=1 b=1" {
		t.Errorf("with d excluded: %s, %v", names(got), err)
	}
}

func TestParseRelations(t *testing.T) {
	groups, err := parseRelations("libc6 (>= 2.34), libfoo:any | bar (<< 1:2~) , baz [amd64], old (> 1), python3:native")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, g := range groups {
		got = append(got, g.String())
	}
	want := "libc6 (>= 2.34)/libfoo:any | bar (<< 1:2~)/baz/old (>= 1)/python3:native"
	if strings.Join(got, "/") != want {
		t.Fatalf("got %s\nwant %s", strings.Join(got, "/"), want)
	}
	for _, bad := range []string{"a (>= 1", "a (~ 1)", "a b", "a (>=)"} {
		if _, err := parseRelations(bad); err == nil {
			t.Errorf("parseRelations(%q): want an error", bad)
		}
	}
}
