package debian

import (
	"strings"
	"testing"
)

func TestEmbeddedKeyring(t *testing.T) {
	keys, err := (&Source{}).keyring()
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, e := range keys {
		for name := range e.Identities {
			ids = append(ids, name)
		}
	}
	all := strings.Join(ids, "\n")
	for _, want := range []string{"Archive Automatic Signing Key (12/bookworm)", "Security Archive Automatic Signing Key (12/bookworm)", "Stable Release Key (12/bookworm)"} {
		if !strings.Contains(all, want) {
			t.Errorf("embedded keyring lacks %q; has:\n%s", want, all)
		}
	}
	if _, err := (&Source{Keyring: "testdata/does-not-exist.gpg"}).keyring(); err == nil || !strings.Contains(err.Error(), "does-not-exist.gpg") {
		t.Errorf("missing keyring file: %v", err)
	}
}
