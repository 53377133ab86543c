package cmdline

import (
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	c := Parse(`BOOT_IMAGE=/vmlinuz console=tty0 console=ttyS0,115200 kiln.label=KILN-1 kiln.debug quiet foo="a b" "bar=c d" kiln.timeout=2.5` + "\n")
	want := map[string]string{
		"BOOT_IMAGE": "/vmlinuz", "console": "ttyS0,115200", "kiln.label": "KILN-1",
		"kiln.debug": "", "quiet": "", "foo": "a b", "bar": "c d", "kiln.timeout": "2.5",
	}
	if len(c) != len(want) {
		t.Fatalf("got %d keys %v, want %d", len(c), c, len(want))
	}
	for k, v := range want {
		if got, ok := c[k]; !ok || got != v {
			t.Errorf("%s = %q (present %v), want %q", k, got, ok, v)
		}
	}
	if !c.Debug() || c.Label() != "KILN-1" {
		t.Errorf("Debug %v Label %q", c.Debug(), c.Label())
	}
	if d, err := c.Timeout(); err != nil || d != 2500*time.Millisecond {
		t.Errorf("Timeout = %v, %v", d, err)
	}
	if s, err := c.Slot(); err != nil || s != "A" {
		t.Errorf("default slot = %q, %v", s, err)
	}
}

func TestInvalid(t *testing.T) {
	c := Parse("kiln.slot=c kiln.timeout=abc kiln.debug=0")
	if _, err := c.Slot(); err == nil {
		t.Error("kiln.slot=c accepted")
	}
	if d, err := c.Timeout(); err == nil || d != DefaultTimeout {
		t.Errorf("kiln.timeout=abc: %v, %v", d, err)
	}
	if c.Debug() {
		t.Error("kiln.debug=0 means off")
	}
	if s, _ := Parse("kiln.slot=b").Slot(); s != "B" {
		t.Errorf("slot b -> %q", s)
	}
}
