package nodeapi

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"strconv"

	"github.com/kilnproject/kiln/initd/machineconfig"
	"github.com/kilnproject/kiln/initd/pki"
	"github.com/kilnproject/kiln/initd/strictyaml"
)

// KindClientConfig is the kind of kilnconfig, the client's config file.
const KindClientConfig = "KilnConfig"

// ClientConfig is kilnconfig: how kiln reaches a cluster's nodes.
type ClientConfig struct {
	APIVersion string   `yaml:"apiVersion"`
	Kind       string   `yaml:"kind"`
	Cluster    string   `yaml:"cluster"`
	Endpoints  []string `yaml:"endpoints"` // node addresses, host[:port]; the port defaults to 50000
	CA         string   `yaml:"ca"`        // node-API CA certificate (PEM): verifies the nodes
	Cert       string   `yaml:"cert"`      // kiln's client certificate (PEM), signed by the node-API CA
	Key        string   `yaml:"key"`       // its private key (PEM)
}

// ParseClientConfig reads kilnconfig strictly.
func ParseClientConfig(source string, data []byte) (*ClientConfig, error) {
	var c ClientConfig
	lines, err := strictyaml.Decode(source, data, &c)
	errs, ok := err.(*strictyaml.Errors)
	if !ok {
		errs = &strictyaml.Errors{Source: source}
	}
	if errs.Syntax {
		return nil, errs
	}
	if c.APIVersion != machineconfig.APIVersion {
		errs.Add(lines, "apiVersion", "%q: want %s", c.APIVersion, machineconfig.APIVersion)
	}
	if c.Kind != KindClientConfig {
		errs.Add(lines, "kind", "%q: want %s", c.Kind, KindClientConfig)
	}
	if _, err := pki.ParseCert([]byte(c.CA)); err != nil {
		errs.Add(lines, "ca", "%v", err)
	}
	if _, err := pki.ParsePair([]byte(c.Cert), []byte(c.Key)); err != nil {
		errs.Add(lines, "cert", "%v", err)
	}
	if err := errs.Err(); err != nil {
		return nil, err
	}
	return &c, nil
}

// Address adds the default node-API port to a host without one.
func Address(node string) string {
	if _, _, err := net.SplitHostPort(node); err == nil {
		return node
	}
	return net.JoinHostPort(node, strconv.Itoa(machineconfig.DefaultNodeAPIPort))
}

// TLS returns the client side of mutual TLS: kiln's certificate, and the
// node-API CA as the only root the node's certificate may chain to.
func (c *ClientConfig) TLS() (*tls.Config, error) {
	cert, err := tls.X509KeyPair([]byte(c.Cert), []byte(c.Key))
	if err != nil {
		return nil, fmt.Errorf("kilnconfig: client certificate: %w", err)
	}
	ca, err := pki.ParseCert([]byte(c.CA))
	if err != nil {
		return nil, fmt.Errorf("kilnconfig: ca: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: pool, Certificates: []tls.Certificate{cert}}, nil
}
