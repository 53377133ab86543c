package pki

import (
	"crypto/x509"
	"strings"
	"testing"
	"time"
)

func TestKeysRoundTrip(t *testing.T) {
	for _, kt := range []KeyType{ECDSAP256, Ed25519, RSA2048} {
		k, err := NewKey(kt)
		if err != nil {
			t.Fatal(err)
		}
		p, err := EncodeKey(k)
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseKey(p)
		if err != nil || !SameKey(k.Public(), back) {
			t.Errorf("%s: key does not round-trip: %v", kt, err)
		}
		want := map[KeyType]string{ECDSAP256: "EC PRIVATE KEY", Ed25519: "PRIVATE KEY", RSA2048: "RSA PRIVATE KEY"}[kt]
		if !strings.HasPrefix(string(p), "-----BEGIN "+want+"-----") {
			t.Errorf("%s encoded as %q", kt, strings.SplitN(string(p), "\n", 2)[0])
		}
		if KubeadmKey(k) == (kt == Ed25519) {
			t.Errorf("%s: kubeadm accepts = %v", kt, KubeadmKey(k))
		}
		pub, _ := EncodePublicKey(k.Public())
		if pk, err := ParsePublicKey(pub); err != nil || !SameKey(pk, k) {
			t.Errorf("%s: public key: %v", kt, err)
		}
	}
	if _, err := NewKey("dsa"); err == nil {
		t.Error("unknown key type accepted")
	}
}

func TestCertificates(t *testing.T) {
	now := time.Now()
	caKey, _ := NewKey(ECDSAP256)
	ca, err := SelfSigned(caKey, Template{CommonName: "ca", NotBefore: now, NotAfter: now.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if !ca.IsCA || ca.KeyUsage&x509.KeyUsageCertSign == 0 || ca.CheckSignatureFrom(ca) != nil {
		t.Errorf("CA: IsCA %v usage %v", ca.IsCA, ca.KeyUsage)
	}
	leafKey, _ := NewKey(Ed25519)
	leaf, err := Issue(Pair{ca, caKey}, leafKey.Public(), Template{CommonName: "leaf", DNSNames: []string{"n1"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, NotBefore: now, NotAfter: now.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if leaf.IsCA || leaf.CheckSignatureFrom(ca) != nil || leaf.SerialNumber.Cmp(ca.SerialNumber) == 0 {
		t.Error("leaf")
	}
	kp, _ := EncodeKey(leafKey)
	if _, err := ParsePair(EncodeCert(leaf), kp); err != nil {
		t.Error(err)
	}
	ckp, _ := EncodeKey(caKey)
	if _, err := ParsePair(EncodeCert(leaf), ckp); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Errorf("mismatched pair: %v", err)
	}
	two := append(EncodeCert(ca), EncodeCert(leaf)...)
	for in, want := range map[string]string{"": "no PEM block", string(two): "more than one PEM block", string(kp): `PEM block is "PRIVATE KEY"`} {
		if _, err := ParseCert([]byte(in)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseCert: %v, want %q", err, want)
		}
	}
}
