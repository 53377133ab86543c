package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kilnproject/kiln/initd/machineconfig"
	"github.com/kilnproject/kiln/initd/nodeapi"
)

var privateKeyRe = regexp.MustCompile(`-----BEGIN [A-Z ]*PRIVATE KEY-----`)

func readAll(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, n := range []string{"secrets.yaml", "init.yaml", "controlplane.yaml", "worker.yaml", "kilnconfig"} {
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			t.Fatal(err)
		}
		out[n] = b
	}
	return out
}

func TestGenConfig(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cluster")
	o := genOptions{ClusterName: "demo", Endpoint: "https://10.0.2.15:6443", Dir: dir}
	written, err := genConfig(o, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(written) != 5 {
		t.Errorf("wrote %v", written)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 5 {
		t.Errorf("%d entries in the output directory (temporary files left?)", len(ents))
	}
	for _, e := range ents {
		st, _ := os.Stat(filepath.Join(dir, e.Name()))
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", e.Name(), st.Mode().Perm())
		}
	}
	files := readAll(t, dir)
	b, err := machineconfig.ParseBundle("secrets.yaml", files["secrets.yaml"])
	if err != nil {
		t.Fatal(err)
	}
	for _, rf := range roleFiles {
		mc, err := machineconfig.Parse(rf.file, files[rf.file])
		if err != nil {
			t.Fatal(err)
		}
		c := mc.Spec.Cluster
		if mc.Spec.Role != rf.role || c.ClusterName != "demo" || c.ControlPlaneEndpoint != "10.0.2.15:6443" || c.Networking.PodSubnet != "10.244.0.0/16" {
			t.Errorf("%s: %+v", rf.file, mc.Spec)
		}
		if mc.Spec.Secrets.BootstrapToken.Token != b.Secrets.BootstrapToken.Token {
			t.Errorf("%s: token differs from secrets.yaml", rf.file)
		}
		keys := len(privateKeyRe.FindAll(files[rf.file], -1))
		want := map[string]int{"init": 5, "control-plane": 5, "worker": 1}[rf.role] // worker: only the node-API server issuer's
		if keys != want {
			t.Errorf("%s carries %d private keys, want %d", rf.file, keys, want)
		}
		if bytes.Contains(files[rf.file], []byte(b.Secrets.NodeAPI.CA.Key)) {
			t.Errorf("%s carries the node-API CA key", rf.file)
		}
	}
	kc, err := nodeapi.ParseClientConfig("kilnconfig", files["kilnconfig"])
	if err != nil {
		t.Fatal(err)
	}
	if kc.Endpoints[0] != "10.0.2.15" || kc.CA != b.Secrets.NodeAPI.CA.Cert || kc.Cluster != "demo" {
		t.Errorf("kilnconfig %+v", kc)
	}
	if _, err := kc.TLS(); err != nil {
		t.Error(err)
	}
}

// Existing secrets are never overwritten without --force; --from-secrets
// regenerates the same machine configs from them.
func TestGenConfigRefusesOverwrite(t *testing.T) {
	dir := t.TempDir()
	o := genOptions{ClusterName: "demo", Endpoint: "https://10.0.2.15:6443", Dir: dir}
	if _, err := genConfig(o, time.Now()); err != nil {
		t.Fatal(err)
	}
	first := readAll(t, dir)

	_, err := genConfig(o, time.Now())
	if err == nil || !strings.Contains(err.Error(), "refusing to overwrite cluster secrets") {
		t.Fatalf("second run: %v", err)
	}
	if now := readAll(t, dir); !bytes.Equal(now["secrets.yaml"], first["secrets.yaml"]) || !bytes.Equal(now["kilnconfig"], first["kilnconfig"]) {
		t.Fatal("a refused run changed files")
	}

	// Only a lone machine config left behind also counts.
	lone := t.TempDir()
	os.WriteFile(filepath.Join(lone, "worker.yaml"), []byte("x"), 0o600)
	if _, err := genConfig(genOptions{ClusterName: "demo", Endpoint: "https://10.0.2.15:6443", Dir: lone}, time.Now()); err == nil {
		t.Error("overwrote an existing worker.yaml")
	}

	from := o
	from.FromSecrets = filepath.Join(dir, "secrets.yaml")
	if _, err := genConfig(from, time.Now()); err != nil {
		t.Fatalf("--from-secrets: %v", err)
	}
	again := readAll(t, dir)
	for _, n := range []string{"secrets.yaml", "init.yaml", "controlplane.yaml", "worker.yaml"} {
		if !bytes.Equal(again[n], first[n]) {
			t.Errorf("--from-secrets changed %s", n)
		}
	}
	if bytes.Equal(again["kilnconfig"], first["kilnconfig"]) {
		t.Error("--from-secrets did not issue a new client certificate")
	}

	// --from-secrets of another cluster into this directory: refused.
	otherDir := t.TempDir()
	if _, err := genConfig(genOptions{ClusterName: "other", Endpoint: "https://10.0.3.15", Dir: otherDir}, time.Now()); err != nil {
		t.Fatal(err)
	}
	foreign := o
	foreign.FromSecrets = filepath.Join(otherDir, "secrets.yaml")
	if _, err := genConfig(foreign, time.Now()); err == nil || !strings.Contains(err.Error(), "holds other secrets") {
		t.Errorf("foreign --from-secrets: %v", err)
	}
	foreign.Force = true
	if _, err := genConfig(foreign, time.Now()); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, dir); !bytes.Equal(got["secrets.yaml"], readAll(t, otherDir)["secrets.yaml"]) {
		t.Error("--force did not replace secrets.yaml")
	}

	o.Force = true
	if _, err := genConfig(o, time.Now()); err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(readAll(t, dir)["secrets.yaml"], first["secrets.yaml"]) {
		t.Error("--force kept the old secrets")
	}
}

func TestGenConfigBadInput(t *testing.T) {
	for _, c := range []struct{ name, endpoint, want string }{
		{"demo", "10.0.2.15:6443", "want https://HOST:PORT"},
		{"demo", "http://10.0.2.15:6443", "want https://HOST:PORT"},
		{"demo", "https://10.0.2.15:6443/api", "want https://HOST:PORT"},
		{"Demo!", "https://10.0.2.15:6443", `spec.cluster.clusterName: "Demo!" is not a DNS name`},
	} {
		dir := t.TempDir()
		_, err := genConfig(genOptions{ClusterName: c.name, Endpoint: c.endpoint, Dir: dir}, time.Now())
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s %s: %v, want %q", c.name, c.endpoint, err, c.want)
		}
		if ents, _ := os.ReadDir(dir); len(ents) != 0 {
			t.Errorf("%s %s: wrote files after an error", c.name, c.endpoint)
		}
	}
	if _, hp, _ := parseEndpoint("https://cp.example.internal"); hp != "cp.example.internal:6443" {
		t.Errorf("default port: %s", hp)
	}
	if _, hp, _ := parseEndpoint("https://[fd00::10]:443"); hp != "[fd00::10]:443" {
		t.Errorf("IPv6: %s", hp)
	}
}
