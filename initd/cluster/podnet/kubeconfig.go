package podnet

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	"go.yaml.in/yaml/v3"
)

// kubeconfig is the part of a kubeconfig file the pod network reads: the
// current context's server, CA and client certificate, inline (*-data)
// or by path (the kubelet's kubelet.conf points at its rotating
// kubelet-client-current.pem once TLS bootstrap is done).
type kubeconfig struct {
	CurrentContext string `yaml:"current-context"`
	Clusters       []struct {
		Name    string `yaml:"name"`
		Cluster struct {
			Server     string `yaml:"server"`
			CAData     string `yaml:"certificate-authority-data"`
			CAFile     string `yaml:"certificate-authority"`
			ServerName string `yaml:"tls-server-name"`
		} `yaml:"cluster"`
	} `yaml:"clusters"`
	Contexts []struct {
		Name    string `yaml:"name"`
		Context struct {
			Cluster string `yaml:"cluster"`
			User    string `yaml:"user"`
		} `yaml:"context"`
	} `yaml:"contexts"`
	Users []struct {
		Name string `yaml:"name"`
		User struct {
			CertData string `yaml:"client-certificate-data"`
			CertFile string `yaml:"client-certificate"`
			KeyData  string `yaml:"client-key-data"`
			KeyFile  string `yaml:"client-key"`
		} `yaml:"user"`
	} `yaml:"users"`
}

// apiClient is an HTTPS client for one API server with a client certificate.
type apiClient struct {
	server string
	http   *http.Client
}

// loadClient reads path and returns a client for its current context.
func loadClient(path string) (*apiClient, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var kc kubeconfig
	if err := yaml.Unmarshal(data, &kc); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	ctxName := kc.CurrentContext
	var clusterName, userName string
	for _, c := range kc.Contexts {
		if c.Name == ctxName {
			clusterName, userName = c.Context.Cluster, c.Context.User
		}
	}
	if clusterName == "" {
		return nil, fmt.Errorf("%s: current-context %q: no such context", path, ctxName)
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	server := ""
	for _, c := range kc.Clusters {
		if c.Name != clusterName {
			continue
		}
		server = c.Cluster.Server
		tc.ServerName = c.Cluster.ServerName
		ca, err := dataOrFile(c.Cluster.CAData, c.Cluster.CAFile)
		if err != nil {
			return nil, fmt.Errorf("%s: cluster %s: certificate-authority: %w", path, clusterName, err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(ca) {
			return nil, fmt.Errorf("%s: cluster %s: certificate-authority: no PEM certificate", path, clusterName)
		}
	}
	if server == "" {
		return nil, fmt.Errorf("%s: cluster %q: no server", path, clusterName)
	}
	for _, u := range kc.Users {
		if u.Name != userName {
			continue
		}
		cert, err := dataOrFile(u.User.CertData, u.User.CertFile)
		if err != nil {
			return nil, fmt.Errorf("%s: user %s: client-certificate: %w", path, userName, err)
		}
		key, err := dataOrFile(u.User.KeyData, u.User.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("%s: user %s: client-key: %w", path, userName, err)
		}
		pair, err := tls.X509KeyPair(cert, key)
		if err != nil {
			return nil, fmt.Errorf("%s: user %s: %w", path, userName, err)
		}
		tc.Certificates = []tls.Certificate{pair}
	}
	if len(tc.Certificates) == 0 {
		return nil, fmt.Errorf("%s: user %q: no client certificate", path, userName)
	}
	return &apiClient{server: server, http: &http.Client{
		Transport: &http.Transport{TLSClientConfig: tc, TLSHandshakeTimeout: time.Minute, ResponseHeaderTimeout: 2 * time.Minute},
	}}, nil
}

func dataOrFile(data, file string) ([]byte, error) {
	if data != "" {
		return base64.StdEncoding.DecodeString(data)
	}
	if file != "" {
		return os.ReadFile(file)
	}
	return nil, errors.New("neither data nor file")
}
