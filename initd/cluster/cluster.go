// Package cluster is what a kiln node needs to run Kubernetes: the files
// initd writes before the container runtime, the kubelet and the bootstrap
// agent start (containerd's config, kubeadm's configuration from the machine
// config, the cluster CAs, the pod network's CNI config), the kubelet's
// command line, and the image import from the baked OCI layout. It does not
// link kubeadm: kiln-bootstrap (components/bootstrap) runs kubeadm's phases.
package cluster

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/kilnproject/kiln/initd/machineconfig"
)

// Where things live on the node. /run is rebuilt every boot from the
// image and the machine config; /etc and /var persist on STATE.
const (
	InfoFile          = "/etc/kiln/cluster.json" // written by kiln build
	ContainerdConfig  = "/run/kiln/containerd.toml"
	ContainerdRoot    = "/var/lib/containerd"
	ContainerdState   = "/run/containerd"
	ContainerdSocket  = "/run/containerd/containerd.sock"
	CRISocket         = "unix://" + ContainerdSocket
	KubeadmConfig     = "/run/kiln/kubeadm.yaml" // holds the token and certificate key: 0600, tmpfs
	PatchDir          = "/run/kiln/kubeadm-patches"
	ValidationResult  = "/run/kiln/validation.json"
	BootstrapResult   = "/run/kiln/bootstrap.json"
	ImagesImported    = "/var/lib/kiln/images.imported" // digest of the index.json last imported
	KubernetesDir     = "/etc/kubernetes"
	PKIDir            = "/etc/kubernetes/pki"
	AdminConf         = "/etc/kubernetes/admin.conf"
	KubeletConf       = "/etc/kubernetes/kubelet.conf"
	BootstrapKubeconf = "/etc/kubernetes/bootstrap-kubelet.conf"
	KubeletDir        = "/var/lib/kubelet"
	KubeletConfig     = "/var/lib/kubelet/config.yaml"       // written by kubeadm's kubelet-start phase
	KubeletFlagsEnv   = "/var/lib/kubelet/kubeadm-flags.env" // idem
	KubeletResolvConf = "/run/kiln/resolv.conf"              // the kubelet's resolver file (pods with dnsPolicy Default)
	CNIConfDir        = "/etc/cni/net.d"
	CNIBinDir         = "/opt/cni/bin"
	CNIConfFile       = "/etc/cni/net.d/10-kiln.conflist"
	CtrNamespace      = "k8s.io" // the CRI's containerd namespace
)

// Info is /etc/kiln/cluster.json: what the image carries.
type Info struct {
	Kubernetes string            `json:"kubernetes"`
	Components map[string]string `json:"components"`
	Images     []string          `json:"images"`
	ImagesDir  string            `json:"imagesDir"`
}

// ReadInfo reads cluster.json; an image without one has no Kubernetes.
func ReadInfo(path string) (*Info, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var i Info
	if err := json.Unmarshal(data, &i); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if i.Kubernetes == "" {
		return nil, fmt.Errorf("%s: kubernetes: no version", path)
	}
	return &i, nil
}

// controlPlaneImages are the repositories (last element) only control-plane
// nodes run: kubeadm's static pods.
var controlPlaneImages = map[string]bool{"etcd": true, "kube-apiserver": true, "kube-controller-manager": true, "kube-scheduler": true}

// NodeImages are the baked references a node of role imports into
// containerd: all of them on control-plane nodes; a worker leaves out the
// control plane's own (the largest), which it never runs.
func (i *Info) NodeImages(role string) []string {
	var out []string
	for _, ref := range i.Images {
		if role == machineconfig.RoleWorker && controlPlaneImages[repoBase(ref)] {
			continue
		}
		out = append(out, ref)
	}
	return out
}

// repoBase is the last element of a reference's repository.
func repoBase(ref string) string {
	repo := ref
	if at := strings.LastIndex(repo, ":"); at > strings.LastIndex(repo, "/") {
		repo = repo[:at]
	}
	return repo[strings.LastIndex(repo, "/")+1:]
}

// Image returns the baked reference whose repository's last element is
// name (e.g. "pause"): the references are kubeadm's own list, taken at
// build time, so none is spelled here.
func (i *Info) Image(name string) (string, error) {
	for _, ref := range i.Images {
		if repoBase(ref) == name {
			return ref, nil
		}
	}
	return "", fmt.Errorf("%s: images: no %s image", InfoFile, name)
}
