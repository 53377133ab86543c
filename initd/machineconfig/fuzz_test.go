package machineconfig

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse: any input gives a config or an error, never a panic, and an
// error-free config survives Marshal and Parse again.
func FuzzParse(f *testing.F) {
	for _, g := range []string{"testdata/bad/*.yaml", "../../docs/examples/*.yaml"} {
		files, _ := filepath.Glob(g)
		for _, p := range files {
			if b, err := os.ReadFile(p); err == nil {
				f.Add(b)
			}
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		mc, err := Parse("fuzz", data)
		if err != nil {
			return
		}
		b, err := Marshal("", mc)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		if _, err := Parse("again", b); err != nil {
			t.Fatalf("a valid config does not parse after Marshal: %v\n%s", err, b)
		}
	})
}
