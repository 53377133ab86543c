package debian

import (
	"fmt"
	"strings"
	"testing"
)

func suitesString(ss []Suite) string {
	var out []string
	for _, s := range ss {
		out = append(out, fmt.Sprintf("%s %s %s", s.URL, s.Suite, strings.Join(s.Components, ",")))
	}
	return strings.Join(out, "\n")
}

func TestHostSuites(t *testing.T) {
	got, err := hostSuites("testdata/apt", "")
	if err != nil {
		t.Fatal(err)
	}
	want := `http://mirror.example/debian bookworm main,contrib,non-free-firmware
http://mirror.example/debian-security bookworm-security main
http://mirror.example/debian bookworm-updates main`
	if suitesString(got) != want {
		t.Fatalf("got\n%s\nwant\n%s", suitesString(got), want)
	}
}

func TestHostSuitesOverride(t *testing.T) {
	got, err := hostSuites("testdata/apt", "http://local.example/debian/")
	if err != nil {
		t.Fatal(err)
	}
	want := `http://local.example/debian bookworm main
http://local.example/debian bookworm-updates main
http://mirror.example/debian-security bookworm-security main`
	if suitesString(got) != want {
		t.Fatalf("URL only: got\n%s\nwant\n%s", suitesString(got), want)
	}
	got, err = hostSuites("testdata/apt", "http://m.example/debian bookworm; http://m.example/debian-security bookworm-security")
	if err != nil {
		t.Fatal(err)
	}
	want = `http://m.example/debian bookworm main
http://m.example/debian-security bookworm-security main`
	if suitesString(got) != want {
		t.Fatalf("explicit: got\n%s\nwant\n%s", suitesString(got), want)
	}
	got, err = hostSuites(t.TempDir(), "http://m.example/debian")
	if err != nil || suitesString(got) != "http://m.example/debian bookworm main\nhttp://m.example/debian bookworm-updates main" {
		t.Fatalf("no host suites: %s %v", suitesString(got), err)
	}
	if _, err := hostSuites("testdata/apt", "not-a-url"); err == nil || !strings.Contains(err.Error(), MirrorEnv) {
		t.Fatalf("bad override: %v", err)
	}
	if _, err := hostSuites(t.TempDir(), ""); err == nil || !strings.Contains(err.Error(), MirrorEnv) {
		t.Fatalf("no suites at all: %v", err)
	}
}
