package cluster

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/kilnproject/kiln/initd/machineconfig"
)

// WriteFile writes data to path through a temporary file in the same
// directory and a rename: a crash leaves the old file or the new one.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// pkiFile is one file kubeadm reads from its certificates directory.
type pkiFile struct {
	name  string // relative to the certificates directory
	field string // machine config field it comes from
	data  string
	perm  os.FileMode
}

// WritePKI lays the cluster's CAs and service-account key from the
// machine config's secrets into dir (kubeadm's certificatesDir), under
// kubeadm's file names: kubeadm's certs phase then signs every other
// certificate with them instead of making new CAs. Keys are 0600. A file
// already there with other content is an error (never overwritten): it
// belongs to another cluster.
func WritePKI(dir string, s *machineconfig.Secrets) error {
	if s == nil {
		return errors.New("machine config: spec.secrets: missing")
	}
	var files []pkiFile
	ck := func(c *machineconfig.CertKey, base, field string) {
		if c == nil {
			return
		}
		files = append(files, pkiFile{base + ".crt", field + ".cert", c.Cert, 0o644})
		if c.Key != "" {
			files = append(files, pkiFile{base + ".key", field + ".key", c.Key, 0o600})
		}
	}
	ck(s.CA, "ca", "spec.secrets.ca")
	ck(s.FrontProxyCA, "front-proxy-ca", "spec.secrets.frontProxyCA")
	ck(s.EtcdCA, "etcd/ca", "spec.secrets.etcdCA")
	if sa := s.ServiceAccount; sa != nil {
		files = append(files, pkiFile{"sa.pub", "spec.secrets.serviceAccount.pub", sa.Pub, 0o644})
		if sa.Key != "" {
			files = append(files, pkiFile{"sa.key", "spec.secrets.serviceAccount.key", sa.Key, 0o600})
		}
	}
	for _, f := range files {
		p := filepath.Join(dir, f.name)
		old, err := os.ReadFile(p)
		if err == nil {
			if !bytes.Equal(old, []byte(f.data)) {
				return fmt.Errorf("%s: holds another key or certificate than %s; not overwritten", p, f.field)
			}
			continue
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return err
		}
		if err := WriteFile(p, []byte(f.data), f.perm); err != nil {
			return fmt.Errorf("%s (%s): %w", p, f.field, err)
		}
	}
	return nil
}

// WriteResolvConf writes the kubelet's resolver file (KubeletResolvConf)
// from the node's (/etc/resolv.conf): the kubelet refuses to start pods
// without one, and CoreDNS, which forwards to it, refuses one without a
// nameserver. A node that has no DNS server (an isolated network) gets its
// own address as the only one: nothing answers there, so names outside
// the cluster fail fast while cluster names resolve.
func WriteResolvConf(path, nodeResolv string, node netip.Addr) error {
	data, err := os.ReadFile(nodeResolv)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	for _, l := range strings.Split(string(data), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "nameserver" {
			return WriteFile(path, data, 0o644)
		}
	}
	return WriteFile(path, []byte("# kiln: the node has no DNS server; cluster names resolve, others fail.\nnameserver "+node.String()+"\n"), 0o644)
}
