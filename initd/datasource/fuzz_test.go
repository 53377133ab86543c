package datasource

import (
	"os"
	"testing"
)

func FuzzOVFEnv(f *testing.F) {
	b, err := os.ReadFile("testdata/ovf-env.xml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte(`<Environment><PropertySection><Property key="guestinfo.userdata" value="eA=="/><Property key="guestinfo.userdata.encoding" value="base64"/></PropertySection></Environment>`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseOVFEnv("ovf:fuzz", b)
		if err == nil && (len(s.UserData) > MaxUserData || len(s.NetworkConfig) > MaxDocument) {
			t.Fatal("limits exceeded")
		}
	})
}
