// Package pki makes and reads the keys and X.509 certificates kiln needs:
// the cluster CAs handed to kubeadm, the node-API CA, its server issuer
// and the certificates they sign. Standard library only (it is linked into
// initd, which issues the node-API server certificate at boot).
package pki

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"time"
)

// KeyType names a key algorithm.
type KeyType string

const (
	ECDSAP256 KeyType = "ecdsa-p256"
	Ed25519   KeyType = "ed25519"
	RSA2048   KeyType = "rsa-2048"
)

// NewKey generates a private key.
func NewKey(t KeyType) (crypto.Signer, error) {
	switch t {
	case ECDSAP256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case Ed25519:
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return k, err
	case RSA2048:
		return rsa.GenerateKey(rand.Reader, 2048)
	}
	return nil, fmt.Errorf("pki: unknown key type %q", t)
}

// Template is what varies between the certificates kiln issues.
type Template struct {
	CommonName   string
	Organization []string
	DNSNames     []string
	IPs          []net.IP
	ExtKeyUsage  []x509.ExtKeyUsage // nil for a CA that may sign anything
	CA           bool
	PathLenZero  bool // a CA that may sign only end-entity certificates
	NotBefore    time.Time
	NotAfter     time.Time
}

// Pair is a certificate and its private key.
type Pair struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

// SelfSigned makes a self-signed CA certificate for key.
func SelfSigned(key crypto.Signer, t Template) (*x509.Certificate, error) {
	t.CA = true
	return sign(t, key.Public(), nil, key)
}

// Issue signs a certificate for pub with the parent CA.
func Issue(parent Pair, pub crypto.PublicKey, t Template) (*x509.Certificate, error) {
	if parent.Cert == nil || parent.Key == nil {
		return nil, errors.New("pki: issuing CA has no certificate or key")
	}
	return sign(t, pub, parent.Cert, parent.Key)
}

func sign(t Template, pub crypto.PublicKey, parent *x509.Certificate, key crypto.Signer) (*x509.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	c := &x509.Certificate{
		SerialNumber:          serial.Add(serial, big.NewInt(1)), // never 0
		Subject:               pkix.Name{CommonName: t.CommonName, Organization: t.Organization},
		NotBefore:             t.NotBefore.UTC(),
		NotAfter:              t.NotAfter.UTC(),
		DNSNames:              t.DNSNames,
		IPAddresses:           t.IPs,
		ExtKeyUsage:           t.ExtKeyUsage,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature,
	}
	if _, ok := pub.(*rsa.PublicKey); ok && !t.CA {
		c.KeyUsage |= x509.KeyUsageKeyEncipherment
	}
	if t.CA {
		c.IsCA = true
		c.KeyUsage |= x509.KeyUsageCertSign | x509.KeyUsageCRLSign
		c.MaxPathLenZero = t.PathLenZero
	}
	if parent == nil {
		parent = c
	}
	der, err := x509.CreateCertificate(rand.Reader, c, parent, pub, key)
	if err != nil {
		return nil, fmt.Errorf("pki: sign %q: %w", t.CommonName, err)
	}
	return x509.ParseCertificate(der)
}

// EncodeCert returns the PEM form of a certificate.
func EncodeCert(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

// EncodeKey returns the PEM form of a private key in the encoding kubeadm
// itself writes: "EC PRIVATE KEY" (SEC 1), "RSA PRIVATE KEY" (PKCS #1);
// Ed25519 has only PKCS #8 ("PRIVATE KEY").
func EncodeKey(k crypto.Signer) ([]byte, error) {
	var b *pem.Block
	switch k := k.(type) {
	case *ecdsa.PrivateKey:
		der, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			return nil, err
		}
		b = &pem.Block{Type: "EC PRIVATE KEY", Bytes: der}
	case *rsa.PrivateKey:
		b = &pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}
	default:
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			return nil, err
		}
		b = &pem.Block{Type: "PRIVATE KEY", Bytes: der}
	}
	return pem.EncodeToMemory(b), nil
}

// EncodePublicKey returns the PEM "PUBLIC KEY" (PKIX) form, as sa.pub.
func EncodePublicKey(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// one returns the single PEM block of data, of one of the given types.
func one(data []byte, types ...string) (*pem.Block, error) {
	b, rest := pem.Decode(data)
	if b == nil {
		return nil, errors.New("no PEM block")
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, errors.New("more than one PEM block")
	}
	for _, t := range types {
		if b.Type == t {
			return b, nil
		}
	}
	return nil, fmt.Errorf("PEM block is %q, want %q", b.Type, types)
}

// ParseCert reads one PEM certificate.
func ParseCert(data []byte) (*x509.Certificate, error) {
	b, err := one(data, "CERTIFICATE")
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(b.Bytes)
}

// ParseKey reads one PEM private key (SEC 1, PKCS #1 or PKCS #8).
func ParseKey(data []byte) (crypto.Signer, error) {
	b, err := one(data, "EC PRIVATE KEY", "RSA PRIVATE KEY", "PRIVATE KEY")
	if err != nil {
		return nil, err
	}
	switch b.Type {
	case "EC PRIVATE KEY":
		return x509.ParseECPrivateKey(b.Bytes)
	case "RSA PRIVATE KEY":
		return x509.ParsePKCS1PrivateKey(b.Bytes)
	}
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		return nil, err
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%T is not a signing key", k)
	}
	return s, nil
}

// ParsePublicKey reads one PEM "PUBLIC KEY".
func ParsePublicKey(data []byte) (crypto.PublicKey, error) {
	b, err := one(data, "PUBLIC KEY")
	if err != nil {
		return nil, err
	}
	return x509.ParsePKIXPublicKey(b.Bytes)
}

// ParsePair reads a certificate and its key and checks that they belong
// together.
func ParsePair(cert, key []byte) (Pair, error) {
	c, err := ParseCert(cert)
	if err != nil {
		return Pair{}, fmt.Errorf("cert: %w", err)
	}
	k, err := ParseKey(key)
	if err != nil {
		return Pair{}, fmt.Errorf("key: %w", err)
	}
	if !SameKey(c.PublicKey, k) {
		return Pair{}, errors.New("key does not match the certificate")
	}
	return Pair{Cert: c, Key: k}, nil
}

// SameKey reports whether pub is key's public half.
func SameKey(pub crypto.PublicKey, key crypto.Signer) bool {
	p, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	return ok && p.Equal(pub)
}

// Algorithm names a key's type for messages ("ECDSA P-256", "RSA 2048").
func Algorithm(k any) string {
	switch k := k.(type) {
	case *ecdsa.PrivateKey:
		return "ECDSA " + k.Curve.Params().Name
	case *ecdsa.PublicKey:
		return "ECDSA " + k.Curve.Params().Name
	case *rsa.PrivateKey:
		return fmt.Sprintf("RSA %d", k.N.BitLen())
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA %d", k.N.BitLen())
	case ed25519.PrivateKey, ed25519.PublicKey:
		return "Ed25519"
	}
	return fmt.Sprintf("%T", k)
}

// KubeadmKey reports whether kubeadm accepts k for a CA or the
// service-account key it is handed: RSA or ECDSA (pkiutil.TryLoadKeyFromDisk).
func KubeadmKey(k crypto.Signer) bool {
	switch k.(type) {
	case *rsa.PrivateKey, *ecdsa.PrivateKey:
		return true
	}
	return false
}
