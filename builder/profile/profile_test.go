package profile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRepoProfilesLoad(t *testing.T) {
	files, _ := filepath.Glob("../../profiles/*.yaml")
	if len(files) == 0 {
		t.Fatal("no profiles found in profiles/")
	}
	for _, f := range files {
		if _, err := Load(f); err != nil {
			t.Errorf("%v", err)
		}
	}
}

func TestParseErrorsNameFileLineField(t *testing.T) {
	base := `name: demo
version: 1.0.0
arches: [amd64]
kernel:
  packages:
    amd64: {name: linux-image-amd64, version: "1"}
`
	cases := []struct{ name, yaml, want string }{
		{"unknown field", base + "colour: red\n", `p.yaml:7: unknown field "colour"`},
		{"unknown format", base + "formats: [iso, floppy]\n", `p.yaml:7: formats.1: unknown format "floppy"`},
		{"unknown arch", strings.Replace(base, "[amd64]", "[amd64, s390x]", 1), `p.yaml:3: arches.1: unknown architecture "s390x"`},
		{"bad size", base + "disk:\n  esp: lots\n", `p.yaml:8: "lots" is not a size`},
		{"esp too small", base + "disk:\n  esp: 1MiB\n", `p.yaml:8: disk.esp: 1MiB is too small`},
		{"disk too small", base + "disk:\n  size: 100MiB\n  sys: 64MiB\n", `p.yaml:8: disk.size: 100MiB is smaller than its partitions`},
		{"missing kernel", strings.Replace(base, "[amd64]", "[amd64, arm64]", 1), `kernel.packages: no kernel package for arch arm64`},
		{"unpinned kernel", strings.Replace(base, `, version: "1"`, "", 1), `kernel.packages.amd64.version: required`},
		{"bad name", strings.Replace(base, "demo", "Demo!", 1), `p.yaml:1: name: "Demo!"`},
		{"wrong type", base + "vm:\n  cpus: many\n", `p.yaml:8:`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("p.yaml", []byte(c.yaml))
			if err == nil {
				t.Fatalf("no error, want %q", c.want)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q does not contain %q", err, c.want)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	p, err := Parse("p.yaml", []byte("name: demo\nversion: 1.0.0\narches: [arm64]\nkernel: {packages: {arm64: {name: k, version: '1'}}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if p.VolumeLabel != "KILN-DEMO" || p.Disk.ESP != 64*MiB || len(p.Formats) != 1 || p.Formats[0] != "iso" {
		t.Fatalf("defaults not applied: %+v", p)
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"512": 512, "4KiB": 4096, "64MiB": 64 << 20, "2GiB": 2 << 30} {
		got, err := ParseSize(in)
		if err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "1.5GiB", "-1", "2GB", "99999999999TiB"} {
		if _, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) succeeded", in)
		}
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	if err == nil || !strings.Contains(err.Error(), "nope.yaml") {
		t.Fatalf("err = %v", err)
	}
	_ = os.Remove
}
