package strictyaml

import (
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

type inner struct {
	Port  int               `yaml:"port"`
	On    bool              `yaml:"on"`
	Tags  []string          `yaml:"tags"`
	Attrs map[string]string `yaml:"attrs"`
}

type doc struct {
	Name  string     `yaml:"name"`
	In    inner      `yaml:"in"`
	Ptr   *inner     `yaml:"ptr"`
	Raw   *yaml.Node `yaml:"raw"`
	Small uint16     `yaml:"small"`
}

func TestDecode(t *testing.T) {
	var d doc
	lines, err := Decode("t.yaml", []byte("name: x\nin:\n  port: 0x10\n  on: true\n  tags: [a, b]\n  attrs: {k: v}\nptr: {port: 3}\nraw: {anything: [1, 2]}\n"), &d)
	if err != nil {
		t.Fatal(err)
	}
	if d.Name != "x" || d.In.Port != 16 || !d.In.On || len(d.In.Tags) != 2 || d.In.Attrs["k"] != "v" || d.Ptr.Port != 3 {
		t.Errorf("decoded %+v %+v", d, d.Ptr)
	}
	if d.Raw == nil || d.Raw.Kind != yaml.MappingNode || d.Raw.Content[0].Value != "anything" {
		t.Errorf("raw passthrough: %+v", d.Raw)
	}
	if lines["in.port"] != 3 || lines["in.tags[1]"] != 5 || lines.Of("in.nothing") != 2 {
		t.Errorf("lines %v", lines)
	}
}

// Every problem is reported, with field path and line; decoding goes on.
func TestErrors(t *testing.T) {
	var d doc
	_, err := Decode("t.yaml", []byte("name: 5\nin:\n  port: many\n  prot: 1\n  on: yes please\n  tags: a\nin: {}\nsmall: 70000\nptr: [1]\n"), &d)
	want := []string{
		"t.yaml: name: want a string, got a number 5 (quote it) (line 1)",
		"t.yaml: in.port: want an integer, got a string (line 3)",
		"t.yaml: in.prot: unknown field (line 4)",
		"t.yaml: in.on: want a boolean, got a string (line 5)",
		"t.yaml: in.tags: want a list, got a string (line 6)",
		"t.yaml: in: duplicate key (line 7)",
		"t.yaml: small: integer 70000 out of range (line 8)",
		"t.yaml: ptr: want a mapping, got a list (line 9)",
	}
	if err == nil || err.Error() != strings.Join(want, "\n") {
		t.Errorf("got:\n%v\nwant:\n%s", err, strings.Join(want, "\n"))
	}
}

func TestSyntax(t *testing.T) {
	for in, want := range map[string]string{
		"":                     "t.yaml: empty document",
		"a: [1\n":              "t.yaml: line 1: did not find expected ',' or ']'",
		"name: a\n---\nb: 1\n": "t.yaml: more than one YAML document (line 2)",
	} {
		var d doc
		_, err := Decode("t.yaml", []byte(in), &d)
		e, ok := err.(*Errors)
		if !ok || !e.Syntax || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%q: %v (syntax %v), want %q", in, err, ok && e.Syntax, want)
		}
	}
}
