// Package machineconfig is kiln's machine config: the versioned YAML
// document (apiVersion kiln.dev/v1alpha1, kind MachineConfig) that tells a
// node which cluster it belongs to, in which role, with which secrets.
// It reaches the node as user-data (alone, or under the kiln: key of a
// #cloud-config). Parsing is strict and every error names the source, the
// field and the line. Fields that are really kubeadm's carry kubeadm's
// v1beta4 names and shapes (clusterName, controlPlaneEndpoint,
// kubernetesVersion, networking.podSubnet/serviceSubnet/dnsDomain,
// bootstrapToken, certificateKey, taints). docs/machine-config.md
// documents every field.
package machineconfig

import "go.yaml.in/yaml/v3"

// APIVersion and the kinds of the documents this package reads.
const (
	APIVersion        = "kiln.dev/v1alpha1"
	KindMachineConfig = "MachineConfig"
	KindSecrets       = "SecretsBundle"
)

// Roles.
const (
	RoleInit         = "init"          // forms the cluster (kubeadm init)
	RoleControlPlane = "control-plane" // joins as a control-plane node
	RoleWorker       = "worker"        // joins as a worker
)

// Roles lists the valid roles in the order messages name them.
var Roles = []string{RoleInit, RoleControlPlane, RoleWorker}

// DefaultNodeAPIPort is where the node API listens unless spec.nodeAPI.port says otherwise.
const DefaultNodeAPIPort = 50000

// Defaults applied when the fields are empty (kubeadm's for the service
// subnet and DNS domain; the pod subnet is ours, kubeadm has none).
const (
	DefaultPodSubnet     = "10.244.0.0/16"
	DefaultServiceSubnet = "10.96.0.0/12"
	DefaultDNSDomain     = "cluster.local"
)

// MachineConfig is the whole document.
type MachineConfig struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Spec       Spec   `yaml:"spec"`
}

// Spec is what the node is to be.
type Spec struct {
	Role    string  `yaml:"role"`
	Cluster Cluster `yaml:"cluster"`
	Node    Node    `yaml:"node,omitempty"`
	Install Install `yaml:"install,omitempty"`
	NodeAPI NodeAPI `yaml:"nodeAPI,omitempty"`
	// Secrets inline, or SecretsFile: the path (on the node) of a YAML file
	// holding what Secrets would (e.g. written by write_files).
	Secrets     *Secrets `yaml:"secrets,omitempty"`
	SecretsFile string   `yaml:"secretsFile,omitempty"`
	// Kubeadm is passed through as raw YAML to the cluster bootstrap: extra
	// kubeadm configuration and patches (a mapping).
	Kubeadm *yaml.Node `yaml:"kubeadm,omitempty"`
}

// Cluster holds a subset of kubeadm's ClusterConfiguration, same names.
type Cluster struct {
	ClusterName          string     `yaml:"clusterName"`
	ControlPlaneEndpoint string     `yaml:"controlPlaneEndpoint"` // host[:port], no scheme
	KubernetesVersion    string     `yaml:"kubernetesVersion,omitempty"`
	Networking           Networking `yaml:"networking,omitempty"`
}

// Networking is kubeadm's Networking: comma-separated CIDRs (one per
// family for dual stack).
type Networking struct {
	PodSubnet     string `yaml:"podSubnet,omitempty"`
	ServiceSubnet string `yaml:"serviceSubnet,omitempty"`
	DNSDomain     string `yaml:"dnsDomain,omitempty"`
}

// Node is this node's registration: labels, taints (kubeadm's
// nodeRegistration.taints, core/v1 Taint) and extra kubelet configuration.
type Node struct {
	Labels map[string]string `yaml:"labels,omitempty"`
	Taints []Taint           `yaml:"taints,omitempty"`
	// KubeletConfiguration fields laid over kiln's kubelet config, passed through.
	KubeletConfiguration *yaml.Node `yaml:"kubeletConfiguration,omitempty"`
}

// Taint is core/v1 Taint without timeAdded (set by the system).
type Taint struct {
	Key    string `yaml:"key"`
	Value  string `yaml:"value,omitempty"`
	Effect string `yaml:"effect"`
}

// Install says where the installer puts the system.
type Install struct {
	Disk string `yaml:"disk,omitempty"` // e.g. /dev/vda or /dev/disk/by-id/...
}

// NodeAPI configures the node's API server.
type NodeAPI struct {
	Port int `yaml:"port,omitempty"` // default 50000
}

// Secrets is the cluster's key material. Which parts a node carries depends
// on its role (see Validate); secrets.yaml holds all of it.
type Secrets struct {
	CA             *CertKey        `yaml:"ca,omitempty"`           // kubeadm pki/ca.crt, ca.key
	FrontProxyCA   *CertKey        `yaml:"frontProxyCA,omitempty"` // pki/front-proxy-ca.crt, .key
	EtcdCA         *CertKey        `yaml:"etcdCA,omitempty"`       // pki/etcd/ca.crt, .key
	ServiceAccount *KeyPair        `yaml:"serviceAccount,omitempty"`
	BootstrapToken *BootstrapToken `yaml:"bootstrapToken,omitempty"`
	CertificateKey string          `yaml:"certificateKey,omitempty"` // kubeadm's: 32 bytes, hex
	NodeAPI        *NodeAPISecrets `yaml:"nodeAPI,omitempty"`
}

// CertKey is a PEM certificate and, where the role needs it, its PEM key.
type CertKey struct {
	Cert string `yaml:"cert"`
	Key  string `yaml:"key,omitempty"`
}

// KeyPair is the service-account signing key (pki/sa.key, sa.pub).
type KeyPair struct {
	Key string `yaml:"key,omitempty"`
	Pub string `yaml:"pub"`
}

// BootstrapToken is kubeadm's BootstrapToken (bootstraptoken/v1).
type BootstrapToken struct {
	Token       string   `yaml:"token"` // [a-z0-9]{6}.[a-z0-9]{16}
	Description string   `yaml:"description,omitempty"`
	TTL         string   `yaml:"ttl,omitempty"` // Go duration; "0s" never expires
	Usages      []string `yaml:"usages,omitempty"`
	Groups      []string `yaml:"groups,omitempty"`
}

// NodeAPISecrets is the node API's trust: CA verifies client
// certificates (its key stays in secrets.yaml: no node can make a client
// certificate); Issuer is an intermediate CA limited to server
// certificates, with which each node issues its own at boot.
type NodeAPISecrets struct {
	CA     *CertKey `yaml:"ca"`
	Issuer *CertKey `yaml:"issuer"`
}

// SecretsBundle is secrets.yaml, written by `kiln gen config`.
type SecretsBundle struct {
	APIVersion string  `yaml:"apiVersion"`
	Kind       string  `yaml:"kind"`
	Secrets    Secrets `yaml:"secrets"`
}
