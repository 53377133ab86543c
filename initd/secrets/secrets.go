// Package secrets generates a cluster's secrets bundle (secrets.yaml) for
// `kiln gen config`: the Kubernetes CAs kubeadm is handed, the
// service-account key pair, a bootstrap token and certificate key in
// kubeadm's formats, and the node-API CA with its server issuer; and it
// issues kiln's client certificate for the node API.
package secrets

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"math/big"
	"time"

	"github.com/kilnproject/kiln/initd/machineconfig"
	"github.com/kilnproject/kiln/initd/pki"
)

// Validity periods: the CAs as kubeadm's default (ten years), kiln's
// client certificate one year (regenerate it with gen config --from-secrets).
const (
	CAValidity     = 10 * 365 * 24 * time.Hour
	ClientValidity = 365 * 24 * time.Hour
	// Backdate absorbs clocks that are a little behind the machine that
	// generated the secrets.
	Backdate = time.Hour
)

// Kubernetes CAs and the service-account key are ECDSA P-256 (kubeadm
// loads RSA or ECDSA); the node API uses Ed25519 throughout.
const (
	KubernetesKey = pki.ECDSAP256
	NodeAPIKey    = pki.Ed25519
)

// Generate makes a new bundle. now is the generating machine's clock.
func Generate(clusterName string, now time.Time) (*machineconfig.SecretsBundle, error) {
	nb, na := now.Add(-Backdate).Truncate(time.Second), now.Add(CAValidity).Truncate(time.Second)
	var s machineconfig.Secrets
	var err error
	// kubeadm's own common names for its CAs.
	if s.CA, _, err = newCA(KubernetesKey, pki.Template{CommonName: "kubernetes", NotBefore: nb, NotAfter: na}); err != nil {
		return nil, err
	}
	if s.FrontProxyCA, _, err = newCA(KubernetesKey, pki.Template{CommonName: "front-proxy-ca", NotBefore: nb, NotAfter: na}); err != nil {
		return nil, err
	}
	if s.EtcdCA, _, err = newCA(KubernetesKey, pki.Template{CommonName: "etcd-ca", NotBefore: nb, NotAfter: na}); err != nil {
		return nil, err
	}
	sa, err := pki.NewKey(KubernetesKey)
	if err != nil {
		return nil, err
	}
	s.ServiceAccount = &machineconfig.KeyPair{}
	if s.ServiceAccount.Key, err = pemKey(sa); err != nil {
		return nil, err
	}
	pub, err := pki.EncodePublicKey(sa.Public())
	if err != nil {
		return nil, err
	}
	s.ServiceAccount.Pub = string(pub)
	tok, err := NewBootstrapToken()
	if err != nil {
		return nil, err
	}
	// Nodes join whenever they are booted: the token does not expire.
	s.BootstrapToken = &machineconfig.BootstrapToken{Token: tok, TTL: "0s",
		Description: "kiln: joins nodes of cluster " + clusterName}
	if s.CertificateKey, err = NewCertificateKey(); err != nil {
		return nil, err
	}

	caCK, ca, err := newCA(NodeAPIKey, pki.Template{CommonName: "kiln node API CA", Organization: []string{clusterName}, NotBefore: nb, NotAfter: na})
	if err != nil {
		return nil, err
	}
	ik, err := pki.NewKey(NodeAPIKey)
	if err != nil {
		return nil, err
	}
	ic, err := pki.Issue(ca, ik.Public(), pki.Template{CommonName: "kiln node API server issuer", Organization: []string{clusterName},
		CA: true, PathLenZero: true, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, NotBefore: nb, NotAfter: na})
	if err != nil {
		return nil, err
	}
	icPEM, err := pemKey(ik)
	if err != nil {
		return nil, err
	}
	s.NodeAPI = &machineconfig.NodeAPISecrets{CA: caCK, Issuer: &machineconfig.CertKey{Cert: string(pki.EncodeCert(ic)), Key: icPEM}}
	return &machineconfig.SecretsBundle{APIVersion: machineconfig.APIVersion, Kind: machineconfig.KindSecrets, Secrets: s}, nil
}

func newCA(t pki.KeyType, tmpl pki.Template) (*machineconfig.CertKey, pki.Pair, error) {
	k, err := pki.NewKey(t)
	if err != nil {
		return nil, pki.Pair{}, err
	}
	c, err := pki.SelfSigned(k, tmpl)
	if err != nil {
		return nil, pki.Pair{}, err
	}
	kp, err := pemKey(k)
	if err != nil {
		return nil, pki.Pair{}, err
	}
	return &machineconfig.CertKey{Cert: string(pki.EncodeCert(c)), Key: kp}, pki.Pair{Cert: c, Key: k}, nil
}

func pemKey(k crypto.Signer) (string, error) {
	b, err := pki.EncodeKey(k)
	return string(b), err
}

// IssueClient issues kiln's node-API client certificate (ClientValidity
// from now) from the bundle's node-API CA; it returns PEM cert and key.
func IssueClient(b *machineconfig.SecretsBundle, name string, now time.Time) (cert, key []byte, err error) {
	n := b.Secrets.NodeAPI
	ca, err := pki.ParsePair([]byte(n.CA.Cert), []byte(n.CA.Key))
	if err != nil {
		return nil, nil, fmt.Errorf("secrets: node-API CA: %w", err)
	}
	k, err := pki.NewKey(NodeAPIKey)
	if err != nil {
		return nil, nil, err
	}
	c, err := pki.Issue(ca, k.Public(), pki.Template{CommonName: name, Organization: []string{"kiln:admins"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		NotBefore:   now.Add(-Backdate).Truncate(time.Second), NotAfter: now.Add(ClientValidity).Truncate(time.Second)})
	if err != nil {
		return nil, nil, err
	}
	kp, err := pki.EncodeKey(k)
	return pki.EncodeCert(c), kp, err
}

const tokenChars = "abcdefghijklmnopqrstuvwxyz0123456789"

// NewBootstrapToken returns a random token in kubeadm's format
// [a-z0-9]{6}.[a-z0-9]{16}.
func NewBootstrapToken() (string, error) {
	b := make([]byte, 0, 23)
	max := big.NewInt(int64(len(tokenChars)))
	for i := 0; i < 22; i++ {
		if i == 6 {
			b = append(b, '.')
		}
		n, err := rand.Int(rand.Reader, max) // uniform: no modulo bias
		if err != nil {
			return "", err
		}
		b = append(b, tokenChars[n.Int64()])
	}
	return string(b), nil
}

// NewCertificateKey returns kubeadm's certificate key: 32 random bytes
// (an AES-256 key), hex-encoded.
func NewCertificateKey() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}
