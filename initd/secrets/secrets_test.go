package secrets

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kilnproject/kiln/initd/machineconfig"
	"github.com/kilnproject/kiln/initd/pki"
)

var tokenRe = regexp.MustCompile(`^[a-z0-9]{6}\.[a-z0-9]{16}$`)

func TestTokenAndCertificateKey(t *testing.T) {
	seen := map[string]bool{}
	chars := map[rune]bool{}
	for i := 0; i < 200; i++ {
		tok, err := NewBootstrapToken()
		if err != nil {
			t.Fatal(err)
		}
		if !tokenRe.MatchString(tok) || !machineconfig.BootstrapTokenRe.MatchString(tok) {
			t.Fatalf("token %q is not in kubeadm's format", tok)
		}
		if seen[tok] {
			t.Fatalf("token %q twice", tok)
		}
		seen[tok] = true
		for _, c := range strings.ReplaceAll(tok, ".", "") {
			chars[c] = true
		}
	}
	if len(chars) != 36 { // 4400 draws from 36 symbols: every one shows up
		t.Errorf("tokens use %d of the 36 characters", len(chars))
	}
	k, err := NewCertificateKey()
	if err != nil {
		t.Fatal(err)
	}
	if b, err := hex.DecodeString(k); err != nil || len(b) != 32 || len(k) != 64 {
		t.Errorf("certificate key %q: want 32 bytes as 64 hex digits", k)
	}
}

func TestGenerate(t *testing.T) {
	now := time.Now()
	b, err := Generate("demo", now)
	if err != nil {
		t.Fatal(err)
	}
	data, err := machineconfig.Marshal("", b)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := machineconfig.ParseBundle("secrets.yaml", data); err != nil {
		t.Fatalf("generated bundle does not pass its own checks: %v", err)
	}
	s := b.Secrets
	for name, ck := range map[string]*machineconfig.CertKey{"ca": s.CA, "frontProxyCA": s.FrontProxyCA, "etcdCA": s.EtcdCA} {
		p, err := pki.ParsePair([]byte(ck.Cert), []byte(ck.Key))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		// kubeadm reads ca.key as RSA or ECDSA only.
		if _, ok := p.Key.(*ecdsa.PrivateKey); !ok {
			t.Errorf("%s key is %T", name, p.Key)
		}
		if !p.Cert.IsCA || p.Cert.NotAfter.Sub(p.Cert.NotBefore) < 9*365*24*time.Hour {
			t.Errorf("%s: CA %v, valid %v", name, p.Cert.IsCA, p.Cert.NotAfter.Sub(p.Cert.NotBefore))
		}
		if p.Cert.CheckSignatureFrom(p.Cert) != nil {
			t.Errorf("%s is not self-signed", name)
		}
	}
	if s.CA.Cert == s.EtcdCA.Cert || s.CA.Key == s.FrontProxyCA.Key {
		t.Error("CAs share material")
	}

	ca, err := pki.ParsePair([]byte(s.NodeAPI.CA.Cert), []byte(s.NodeAPI.CA.Key))
	if err != nil {
		t.Fatal(err)
	}
	iss, err := pki.ParsePair([]byte(s.NodeAPI.Issuer.Cert), []byte(s.NodeAPI.Issuer.Key))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := ca.Key.(ed25519.PrivateKey); !ok {
		t.Errorf("node-API CA key is %T", ca.Key)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	if _, err := iss.Cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		t.Errorf("issuer does not verify against the node-API CA: %v", err)
	}

	cert, key, err := IssueClient(b, "kiln", now)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := pki.ParsePair(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("client certificate does not verify: %v", err)
	}
	// A client certificate minted with the issuer (as a node could) does
	// not verify as a client: the issuer is limited to server certificates.
	k, _ := pki.NewKey(pki.Ed25519)
	forged, err := pki.Issue(iss, k.Public(), pki.Template{CommonName: "forged", ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	inter := x509.NewCertPool()
	inter.AddCert(iss.Cert)
	if _, err := forged.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err == nil {
		t.Error("a client certificate from the server issuer verifies")
	}

	sa, err := pki.ParseKey([]byte(s.ServiceAccount.Key))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := pki.ParsePublicKey([]byte(s.ServiceAccount.Pub))
	if err != nil || !pki.SameKey(pub, sa) {
		t.Errorf("sa.pub does not match sa.key: %v", err)
	}
}

// openssl is the oracle: it must read every key and verify every
// certificate against its CA, as kubeadm and curl would.
func TestOpenSSLAgrees(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not installed")
	}
	now := time.Now()
	b, err := Generate("demo", now)
	if err != nil {
		t.Fatal(err)
	}
	cert, key, err := IssueClient(b, "kiln", now)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	w := func(name, data string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	s := b.Secrets
	run := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("openssl", args...).CombinedOutput()
		if err != nil {
			t.Errorf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	for name, ck := range map[string]*machineconfig.CertKey{"ca": s.CA, "front-proxy-ca": s.FrontProxyCA, "etcd-ca": s.EtcdCA, "node-api-ca": s.NodeAPI.CA} {
		c := w(name+".crt", ck.Cert)
		run("verify", "-CAfile", c, c)
		run("pkey", "-in", w(name+".key", ck.Key), "-noout")
	}
	run("pkey", "-in", w("sa.key", s.ServiceAccount.Key), "-noout")
	run("pkey", "-pubin", "-in", w("sa.pub", s.ServiceAccount.Pub), "-noout")
	ca := filepath.Join(dir, "node-api-ca.crt")
	iss := w("issuer.crt", s.NodeAPI.Issuer.Cert)
	run("verify", "-CAfile", ca, "-purpose", "sslserver", iss)
	run("verify", "-CAfile", ca, "-purpose", "sslclient", w("client.crt", string(cert)))
	run("pkey", "-in", w("client.key", string(key)), "-noout")
	if out := run("x509", "-in", iss, "-noout", "-ext", "extendedKeyUsage,basicConstraints"); !strings.Contains(out, "TLS Web Server Authentication") || strings.Contains(out, "Client") || !strings.Contains(out, "pathlen:0") {
		t.Errorf("issuer extensions:\n%s", out)
	}
}
