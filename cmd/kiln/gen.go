package main

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/kilnproject/kiln/initd/machineconfig"
	"github.com/kilnproject/kiln/initd/nodeapi"
	"github.com/kilnproject/kiln/initd/secrets"
)

// The files `kiln gen config` writes into its output directory.
const (
	secretsFile = "secrets.yaml"
	kilnconfig  = "kilnconfig"
)

var roleFiles = []struct{ role, file string }{
	{machineconfig.RoleInit, "init.yaml"},
	{machineconfig.RoleControlPlane, "controlplane.yaml"},
	{machineconfig.RoleWorker, "worker.yaml"},
}

func genCmd() *cobra.Command {
	g := &cobra.Command{Use: "gen", Short: "Generate cluster configuration"}
	var o genOptions
	c := &cobra.Command{
		Use:   "config --cluster-name NAME --endpoint https://IP:6443 -o DIR",
		Short: "Generate a cluster's secrets, one machine config per role and kiln's client config",
		Long: `Writes into DIR (all files 0600):
  secrets.yaml       every secret of the cluster: keep it safe, it is not for nodes
  init.yaml          machine config of the node that forms the cluster
  controlplane.yaml  machine config of further control-plane nodes
  worker.yaml        machine config of workers (no CA private keys)
  kilnconfig         kiln's client config: node-API CA and a client certificate

Existing secrets are never overwritten unless --force is given;
--from-secrets FILE reuses a secrets.yaml to regenerate the machine configs
and issue a fresh client certificate.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			written, err := genConfig(o, time.Now())
			for _, p := range written {
				fmt.Println(p)
			}
			return err
		},
	}
	f := c.Flags()
	f.StringVar(&o.ClusterName, "cluster-name", "", "cluster name (kubeadm's clusterName)")
	f.StringVar(&o.Endpoint, "endpoint", "", "Kubernetes API endpoint, https://HOST:PORT")
	f.StringVarP(&o.Dir, "output", "o", ".", "output directory")
	f.StringVar(&o.KubernetesVersion, "kubernetes-version", "", "Kubernetes version, e.g. v1.37.2 (default: the image's)")
	f.StringVar(&o.FromSecrets, "from-secrets", "", "reuse this secrets.yaml instead of generating new secrets")
	f.BoolVar(&o.Force, "force", false, "replace existing secrets in the output directory")
	c.MarkFlagRequired("cluster-name")
	c.MarkFlagRequired("endpoint")
	g.AddCommand(c)
	return g
}

type genOptions struct {
	ClusterName, Endpoint, Dir, KubernetesVersion, FromSecrets string
	Force                                                      bool
}

// genConfig writes the output directory and returns the paths written.
func genConfig(o genOptions, now time.Time) ([]string, error) {
	host, hp, err := parseEndpoint(o.Endpoint)
	if err != nil {
		return nil, err
	}
	secretsPath := filepath.Join(o.Dir, secretsFile)
	existing, err := os.ReadFile(secretsPath)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	var bundle *machineconfig.SecretsBundle
	var bundleYAML []byte
	if o.FromSecrets != "" {
		if bundleYAML, err = os.ReadFile(o.FromSecrets); err != nil {
			return nil, fmt.Errorf("--from-secrets: %w", err)
		}
		if bundle, err = machineconfig.ParseBundle(o.FromSecrets, bundleYAML); err != nil {
			return nil, err
		}
		if existing != nil && !bytes.Equal(existing, bundleYAML) && !o.Force {
			return nil, fmt.Errorf("%s holds other secrets than %s: refusing to overwrite them (--force replaces them)", secretsPath, o.FromSecrets)
		}
	} else {
		var present []string
		for _, name := range append([]string{secretsFile, kilnconfig}, files()...) {
			if _, err := os.Lstat(filepath.Join(o.Dir, name)); err == nil {
				present = append(present, name)
			}
		}
		if len(present) > 0 && !o.Force {
			return nil, fmt.Errorf("%s already holds %v: refusing to overwrite cluster secrets (--from-secrets %s regenerates the machine configs from them; --force replaces them)", o.Dir, present, secretsPath)
		}
		if bundle, err = secrets.Generate(o.ClusterName, now); err != nil {
			return nil, err
		}
		if bundleYAML, err = machineconfig.Marshal("# kiln cluster secrets: keep this file safe; nodes never need all of it.\n", bundle); err != nil {
			return nil, err
		}
	}

	out := map[string][]byte{secretsFile: bundleYAML}
	cluster := machineconfig.Cluster{ClusterName: o.ClusterName, ControlPlaneEndpoint: hp, KubernetesVersion: o.KubernetesVersion,
		Networking: machineconfig.Networking{PodSubnet: machineconfig.DefaultPodSubnet, ServiceSubnet: machineconfig.DefaultServiceSubnet}}
	for _, rf := range roleFiles {
		mc := machineconfig.ForRole(rf.role, cluster, &bundle.Secrets)
		b, err := machineconfig.Marshal(fmt.Sprintf("# kiln machine config, role %s: give it to the node as user-data.\n", rf.role), mc)
		if err != nil {
			return nil, err
		}
		// What we hand out must pass the node's own checks.
		if _, err := machineconfig.Parse(rf.file, b); err != nil {
			return nil, err
		}
		out[rf.file] = b
	}
	cert, key, err := secrets.IssueClient(bundle, "kiln", now)
	if err != nil {
		return nil, err
	}
	kc := nodeapi.ClientConfig{APIVersion: machineconfig.APIVersion, Kind: nodeapi.KindClientConfig, Cluster: o.ClusterName,
		Endpoints: []string{host}, CA: bundle.Secrets.NodeAPI.CA.Cert, Cert: string(cert), Key: string(key)}
	if out[kilnconfig], err = machineconfig.Marshal("", kc); err != nil {
		return nil, err
	}

	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return nil, err
	}
	var written []string
	for _, name := range append([]string{secretsFile}, append(files(), kilnconfig)...) {
		p := filepath.Join(o.Dir, name)
		if name == secretsFile && bytes.Equal(existing, out[name]) {
			continue // reused in place
		}
		if err := writeSecret(p, out[name]); err != nil {
			return written, err
		}
		written = append(written, p)
	}
	return written, nil
}

func files() []string {
	var f []string
	for _, rf := range roleFiles {
		f = append(f, rf.file)
	}
	return f
}

// parseEndpoint reads --endpoint https://HOST[:PORT] into the host and
// kubeadm's controlPlaneEndpoint (HOST:PORT, default port 6443).
func parseEndpoint(s string) (host, hostPort string, err error) {
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "https" || u.Host == "" || (u.Path != "" && u.Path != "/") || u.User != nil || u.RawQuery != "" {
		return "", "", fmt.Errorf("--endpoint %q: want https://HOST:PORT", s)
	}
	port := u.Port()
	if port == "" {
		port = "6443"
	}
	return u.Hostname(), net.JoinHostPort(u.Hostname(), port), nil
}

// writeSecret writes data to path with mode 0600 through a temporary file
// and a rename: the file is complete or absent, never readable by others.
func writeSecret(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
