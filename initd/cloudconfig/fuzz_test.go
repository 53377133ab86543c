package cloudconfig

import (
	"encoding/base64"
	"testing"
)

func base64Std(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func FuzzCloudConfig(f *testing.F) {
	for _, n := range []string{"cloud-config.yaml", "machine-config.yaml", "multipart.txt"} {
		f.Add(read(f, n))
	}
	f.Add(gz(read(f, "cloud-config.yaml")))
	f.Add([]byte("#cloud-config\nwrite_files:\n- {path: /a/../b, content: x}\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Parse(b)
		if err != nil {
			return
		}
		for _, wf := range c.WriteFiles {
			if _, err := cleanPath(wf.Path); err != nil || wf.Path[0] != '/' {
				t.Fatalf("unsafe path accepted: %q", wf.Path)
			}
		}
	})
}
