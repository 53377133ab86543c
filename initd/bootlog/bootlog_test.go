package bootlog

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func TestConsoleMemoryFile(t *testing.T) {
	var con bytes.Buffer
	l := New(&con)
	l.Printf("one %d", 1)
	l.Debugf("hidden")
	l.SetDebug(true)
	l.Debugf("shown\nsecond")
	want := "kiln: one 1\nkiln: shown\nkiln: second\n"
	if con.String() != want || l.Memory() != want {
		t.Fatalf("console %q memory %q, want %q", con.String(), l.Memory(), want)
	}
	p := filepath.Join(t.TempDir(), "var/log/kiln/initd.log")
	if err := l.FlushTo(p); err != nil {
		t.Fatal(err)
	}
	l.Printf("after")
	l.Close()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != want+"kiln: after\n" || l.Memory() != "" {
		t.Fatalf("file %q memory %q", b, l.Memory())
	}
}
