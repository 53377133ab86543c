package cluster

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sort"
	"strings"

	"github.com/kilnproject/kiln/initd/machineconfig"
	"go.yaml.in/yaml/v3"
)

// Node is what the kubeadm configuration needs besides the machine config.
type Node struct {
	Name    string     // node name: the hostname, lower case
	Address netip.Addr // the API server's advertise address, the kubelet's node IP
	Info    *Info      // the image's cluster.json
}

// IgnoredPreflight are the kubeadm preflight checks an appliance knows to
// be fine; docs/cluster.md says why for each. Empty: every check runs and
// must pass.
var IgnoredPreflight = []string{}

// Timeouts for kubeadm: its defaults (4 minutes for the control plane to
// come up) assume native speed; an emulated node (QEMU TCG) runs Go many
// times slower, and a slow node is still a node.
// kubeadm retries API and etcd calls for as long as kubernetesAPICall and
// etcdAPICall say, and its wait-control-plane phase starts with such a
// call: the API server must be up within it.
const (
	healthTimeout = "30m0s" // control plane up, kubelet, TLS bootstrap, discovery, API and etcd retries
	callTimeout   = "5m0s"  // upgrade manifests
)

// KubeadmInit renders kubeadm's configuration for `kubeadm init` from an
// init node's machine config: InitConfiguration and ClusterConfiguration
// (kubeadm.k8s.io/v1beta4) and the KubeletConfiguration. kubeadm's field
// names are the machine config's own, so values pass through unchanged.
func KubeadmInit(mc *machineconfig.MachineConfig, n Node) ([]byte, error) {
	s := mc.Spec
	if s.Role != machineconfig.RoleInit {
		return nil, fmt.Errorf("machine config: spec.role is %s: only an init node runs kubeadm init", s.Role)
	}
	if s.Secrets == nil || s.Secrets.BootstrapToken == nil {
		return nil, errors.New("machine config: spec.secrets.bootstrapToken: missing")
	}
	version, err := KubernetesVersion(mc, n.Info)
	if err != nil {
		return nil, err
	}
	if !n.Address.IsValid() {
		return nil, errors.New("cluster: the node has no address to advertise the API server on")
	}
	tok := s.Secrets.BootstrapToken
	initCfg := initConfiguration{
		APIVersion: kubeadmAPI, Kind: "InitConfiguration",
		BootstrapTokens: []bootstrapToken{{
			Token: tok.Token, Description: tok.Description, TTL: tok.TTL, Usages: tok.Usages, Groups: tok.Groups,
		}},
		NodeRegistration: nodeRegistration(s, n),
		LocalAPIEndpoint: apiEndpoint{AdvertiseAddress: n.Address.String(), BindPort: apiPort(s.Cluster.ControlPlaneEndpoint)},
		CertificateKey:   s.Secrets.CertificateKey,
		Timeouts: timeouts{
			ControlPlaneComponentHealthCheck: healthTimeout, KubeletHealthCheck: healthTimeout,
			KubernetesAPICall: healthTimeout, EtcdAPICall: healthTimeout, TLSBootstrap: healthTimeout,
			Discovery: healthTimeout, UpgradeManifests: callTimeout,
		},
	}
	clusterCfg := clusterConfiguration{
		APIVersion: kubeadmAPI, Kind: "ClusterConfiguration",
		ClusterName:          s.Cluster.ClusterName,
		ControlPlaneEndpoint: s.Cluster.ControlPlaneEndpoint,
		KubernetesVersion:    version,
		CertificatesDir:      PKIDir,
		Networking: networking{
			PodSubnet: s.Cluster.Networking.PodSubnet, ServiceSubnet: s.Cluster.Networking.ServiceSubnet,
			DNSDomain: s.Cluster.Networking.DNSDomain,
		},
		ControllerManager: controlPlaneComponent{ExtraArgs: leaderElection},
		Scheduler:         controlPlaneComponent{ExtraArgs: leaderElection},
	}
	kubelet, err := kubeletConfiguration(s.Node.KubeletConfiguration)
	if err != nil {
		return nil, err
	}
	docs, err := withExtra([]any{initCfg, clusterCfg}, initExtraKinds, s.Kubeadm)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	buf.WriteString("# Written by initd from the machine config (kiln: initd/cluster). Holds the bootstrap token.\n")
	for i, doc := range append(docs, kubelet) {
		if i > 0 {
			buf.WriteString("---\n")
		}
		enc := yaml.NewEncoder(&buf)
		enc.SetIndent(2)
		if err := enc.Encode(doc); err != nil {
			return nil, err
		}
		enc.Close()
	}
	return buf.Bytes(), nil
}

// The spec.kubeadm keys each role may use, in the order of the documents
// they lay over.
var (
	initExtraKinds = []string{"initConfiguration", "clusterConfiguration"}
	joinExtraKinds = []string{"joinConfiguration"}
)

// withExtra lays spec.kubeadm's documents (e.g. initConfiguration and
// clusterConfiguration) over kiln's (extraKinds[i] over docs[i]): mappings
// merge, everything else replaces; apiVersion and kind stay kiln's.
func withExtra(docs []any, extraKinds []string, extra *yaml.Node) ([]any, error) {
	maps := make([]any, len(docs))
	for i, d := range docs {
		data, err := yaml.Marshal(d)
		if err != nil {
			return nil, err
		}
		var m map[string]any
		if err := yaml.Unmarshal(data, &m); err != nil {
			return nil, err
		}
		maps[i] = m
	}
	if extra == nil {
		return maps, nil
	}
	var over map[string]any
	if err := extra.Decode(&over); err != nil {
		return nil, fmt.Errorf("machine config: spec.kubeadm: %w", err)
	}
	keys := make([]string, 0, len(over))
	for k := range over {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		i := slices.Index(extraKinds, k)
		if i < 0 {
			return nil, fmt.Errorf("machine config: spec.kubeadm.%s: not supported (allowed: %s)", k, strings.Join(extraKinds, ", "))
		}
		m, ok := over[k].(map[string]any)
		if !ok {
			return nil, fmt.Errorf("machine config: spec.kubeadm.%s: want a mapping", k)
		}
		for _, f := range []string{"apiVersion", "kind"} {
			if _, ok := m[f]; ok {
				return nil, fmt.Errorf("machine config: spec.kubeadm.%s.%s: set by kiln", k, f)
			}
		}
		merge(maps[i].(map[string]any), m)
	}
	return maps, nil
}

// KubernetesVersion is the version to deploy: the image's, which a machine
// config may only repeat.
func KubernetesVersion(mc *machineconfig.MachineConfig, info *Info) (string, error) {
	v := mc.Spec.Cluster.KubernetesVersion
	if v != "" && v != info.Kubernetes {
		return "", fmt.Errorf("machine config: spec.cluster.kubernetesVersion: %s, but the image carries Kubernetes %s", v, info.Kubernetes)
	}
	return info.Kubernetes, nil
}

const kubeadmAPI = "kubeadm.k8s.io/v1beta4"

type initConfiguration struct {
	APIVersion       string           `yaml:"apiVersion"`
	Kind             string           `yaml:"kind"`
	BootstrapTokens  []bootstrapToken `yaml:"bootstrapTokens"`
	NodeRegistration nodeReg          `yaml:"nodeRegistration"`
	LocalAPIEndpoint apiEndpoint      `yaml:"localAPIEndpoint"`
	CertificateKey   string           `yaml:"certificateKey,omitempty"`
	Timeouts         timeouts         `yaml:"timeouts"`
}

type bootstrapToken struct {
	Token       string   `yaml:"token"`
	Description string   `yaml:"description,omitempty"`
	TTL         string   `yaml:"ttl,omitempty"`
	Usages      []string `yaml:"usages,omitempty"`
	Groups      []string `yaml:"groups,omitempty"`
}

type nodeReg struct {
	Name                  string                 `yaml:"name"`
	CRISocket             string                 `yaml:"criSocket"`
	ImagePullPolicy       string                 `yaml:"imagePullPolicy"`
	Taints                *[]machineconfig.Taint `yaml:"taints,omitempty"` // nil: kubeadm's default; empty: none
	KubeletExtraArgs      []arg                  `yaml:"kubeletExtraArgs,omitempty"`
	IgnorePreflightErrors []string               `yaml:"ignorePreflightErrors,omitempty"`
}

type arg struct {
	Name  string `yaml:"name"`
	Value string `yaml:"value"`
}

type apiEndpoint struct {
	AdvertiseAddress string `yaml:"advertiseAddress"`
	BindPort         int    `yaml:"bindPort"`
}

type timeouts struct {
	ControlPlaneComponentHealthCheck string `yaml:"controlPlaneComponentHealthCheck"`
	KubeletHealthCheck               string `yaml:"kubeletHealthCheck"`
	KubernetesAPICall                string `yaml:"kubernetesAPICall"`
	EtcdAPICall                      string `yaml:"etcdAPICall"`
	TLSBootstrap                     string `yaml:"tlsBootstrap"`
	Discovery                        string `yaml:"discovery"`
	UpgradeManifests                 string `yaml:"upgradeManifests"`
}

type clusterConfiguration struct {
	APIVersion           string                `yaml:"apiVersion"`
	Kind                 string                `yaml:"kind"`
	ClusterName          string                `yaml:"clusterName"`
	ControlPlaneEndpoint string                `yaml:"controlPlaneEndpoint"`
	KubernetesVersion    string                `yaml:"kubernetesVersion"`
	CertificatesDir      string                `yaml:"certificatesDir"`
	Networking           networking            `yaml:"networking"`
	ControllerManager    controlPlaneComponent `yaml:"controllerManager"`
	Scheduler            controlPlaneComponent `yaml:"scheduler"`
}

type controlPlaneComponent struct {
	ExtraArgs []arg `yaml:"extraArgs"`
}

// leaderElection are the controller manager's and the scheduler's leader
// election timings. The defaults (lease 15s, renew deadline 10s, each
// request 5s) make a busy or emulated control plane give up its lease
// whenever the API server is slow to answer, and the component exits and
// restarts in a loop (seen on the emulated test nodes after a reboot). A
// longer lease costs a slower hand-over between control-plane nodes
// (about a minute instead of 15s), which an appliance can afford.
var leaderElection = []arg{
	{Name: "leader-elect-lease-duration", Value: "60s"},
	{Name: "leader-elect-renew-deadline", Value: "40s"},
	{Name: "leader-elect-retry-period", Value: "5s"},
}

type networking struct {
	PodSubnet     string `yaml:"podSubnet,omitempty"`
	ServiceSubnet string `yaml:"serviceSubnet,omitempty"`
	DNSDomain     string `yaml:"dnsDomain,omitempty"`
}

// nodeRegistration: the images are baked, so kubeadm must find them and
// never pull (imagePullPolicy Never makes a missing image a preflight
// error); the kubelet gets the node IP and the machine config's labels.
func nodeRegistration(s machineconfig.Spec, n Node) nodeReg {
	r := nodeReg{
		Name: n.Name, CRISocket: CRISocket, ImagePullPolicy: "Never",
		IgnorePreflightErrors: IgnoredPreflight,
		KubeletExtraArgs:      []arg{{Name: "node-ip", Value: n.Address.String()}},
	}
	if s.Node.Taints != nil { // "taints: []" asks for none, where kubeadm would taint a control-plane node
		t := s.Node.Taints
		r.Taints = &t
	}
	if len(s.Node.Labels) > 0 {
		keys := make([]string, 0, len(s.Node.Labels))
		for k := range s.Node.Labels {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var kv []string
		for _, k := range keys {
			kv = append(kv, k+"="+s.Node.Labels[k])
		}
		r.KubeletExtraArgs = append(r.KubeletExtraArgs, arg{Name: "node-labels", Value: strings.Join(kv, ",")})
	}
	return r
}

// apiPort is the port of controlPlaneEndpoint (validated host[:port]), 6443 by default.
func apiPort(endpoint string) int {
	if ap, err := netip.ParseAddrPort(endpoint); err == nil {
		return int(ap.Port())
	}
	if i := strings.LastIndex(endpoint, ":"); i >= 0 && !strings.Contains(endpoint[i:], "]") {
		var p int
		if _, err := fmt.Sscanf(endpoint[i+1:], "%d", &p); err == nil && p > 0 && p < 65536 {
			return p
		}
	}
	return 6443
}

// kubeletConfiguration is kiln's KubeletConfiguration with the machine
// config's spec.node.kubeletConfiguration laid over it (mappings merge,
// everything else replaces).
//   - cgroupDriver cgroupfs: no systemd (kubeadm would default to systemd).
//   - image garbage collection off: the images are baked, an image the
//     kubelet deletes cannot be pulled back.
//   - resolvConf: kiln's copy (see WriteResolvConf), there even when the
//     node has no DNS server.
func kubeletConfiguration(extra *yaml.Node) (map[string]any, error) {
	base := map[string]any{
		"apiVersion":                  "kubelet.config.k8s.io/v1beta1",
		"kind":                        "KubeletConfiguration",
		"cgroupDriver":                "cgroupfs",
		"containerRuntimeEndpoint":    CRISocket,
		"imageGCHighThresholdPercent": 100,
		"imageGCLowThresholdPercent":  99,
		"resolvConf":                  KubeletResolvConf,
	}
	if extra == nil {
		return base, nil
	}
	var over map[string]any
	if err := extra.Decode(&over); err != nil {
		return nil, fmt.Errorf("machine config: spec.node.kubeletConfiguration: %w", err)
	}
	for _, k := range []string{"apiVersion", "kind"} {
		if v, ok := over[k]; ok && v != base[k] {
			return nil, fmt.Errorf("machine config: spec.node.kubeletConfiguration.%s: %v: it is kiln's KubeletConfiguration (%v)", k, v, base[k])
		}
	}
	merge(base, over)
	return base, nil
}

func merge(dst, src map[string]any) {
	for k, v := range src {
		if sm, ok := v.(map[string]any); ok {
			if dm, ok := dst[k].(map[string]any); ok {
				merge(dm, sm)
				continue
			}
		}
		dst[k] = v
	}
}

// KubeadmJoin renders kubeadm's JoinConfiguration for a worker or a
// control-plane node: discovery by the machine config's bootstrap token,
// pinned to the cluster CA's public key (kubeadm's caCertHashes), so the
// node trusts no API server but its own cluster's. A control-plane node
// gets the shared keys from the machine config on disk (WritePKI) rather
// than downloading them with the certificate key. The KubeletConfiguration
// comes from the cluster (kubeadm's kubelet-config ConfigMap); this node's
// spec.node.kubeletConfiguration is a kubeadm patch (KubeletPatch) in
// patchDir ("" = none).
func KubeadmJoin(mc *machineconfig.MachineConfig, n Node, patchDir string) ([]byte, error) {
	s := mc.Spec
	if s.Role != machineconfig.RoleWorker && s.Role != machineconfig.RoleControlPlane {
		return nil, fmt.Errorf("machine config: spec.role is %s: only worker and control-plane nodes join", s.Role)
	}
	if s.Secrets == nil || s.Secrets.BootstrapToken == nil {
		return nil, errors.New("machine config: spec.secrets.bootstrapToken: missing")
	}
	if s.Secrets.CA == nil {
		return nil, errors.New("machine config: spec.secrets.ca: missing (joining nodes pin the cluster CA)")
	}
	if _, err := KubernetesVersion(mc, n.Info); err != nil {
		return nil, err
	}
	if !n.Address.IsValid() {
		return nil, errors.New("cluster: the node has no address to register with")
	}
	hash, err := CACertHash(s.Secrets.CA.Cert)
	if err != nil {
		return nil, fmt.Errorf("machine config: spec.secrets.ca.cert: %w", err)
	}
	tok := s.Secrets.BootstrapToken.Token
	cfg := joinConfiguration{
		APIVersion: kubeadmAPI, Kind: "JoinConfiguration",
		CACertPath:       PKIDir + "/ca.crt",
		NodeRegistration: nodeRegistration(s, n),
		Discovery: discovery{
			BootstrapToken: &bootstrapTokenDiscovery{
				Token: tok, APIServerEndpoint: endpointHostPort(s.Cluster.ControlPlaneEndpoint), CACertHashes: []string{hash},
			},
			TLSBootstrapToken: tok,
		},
		Timeouts: timeouts{
			ControlPlaneComponentHealthCheck: healthTimeout, KubeletHealthCheck: healthTimeout,
			KubernetesAPICall: healthTimeout, EtcdAPICall: healthTimeout, TLSBootstrap: healthTimeout,
			Discovery: healthTimeout, UpgradeManifests: callTimeout,
		},
	}
	if s.Role == machineconfig.RoleControlPlane {
		cfg.ControlPlane = &joinControlPlane{
			LocalAPIEndpoint: apiEndpoint{AdvertiseAddress: n.Address.String(), BindPort: apiPort(s.Cluster.ControlPlaneEndpoint)},
		}
	}
	if s.Node.KubeletConfiguration != nil && patchDir != "" {
		cfg.Patches = &patches{Directory: patchDir}
	}
	docs, err := withExtra([]any{cfg}, joinExtraKinds, s.Kubeadm)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	buf.WriteString("# Written by initd from the machine config (kiln: initd/cluster). Holds the bootstrap token.\n")
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(docs[0]); err != nil {
		return nil, err
	}
	enc.Close()
	return buf.Bytes(), nil
}

// KubeletPatch is the kubeadm patch (target kubeletconfiguration, a JSON
// merge patch written as YAML) that lays a joining node's
// spec.node.kubeletConfiguration over the cluster's kubelet configuration:
// file name and body, or none when the machine config has none.
func KubeletPatch(mc *machineconfig.MachineConfig) (string, []byte, error) {
	extra := mc.Spec.Node.KubeletConfiguration
	if extra == nil {
		return "", nil, nil
	}
	var over map[string]any
	if err := extra.Decode(&over); err != nil {
		return "", nil, fmt.Errorf("machine config: spec.node.kubeletConfiguration: %w", err)
	}
	delete(over, "apiVersion")
	delete(over, "kind")
	data, err := yaml.Marshal(over)
	if err != nil {
		return "", nil, err
	}
	return "kubeletconfiguration+merge.yaml", data, nil
}

// CACertHash is kubeadm's public key pin of a CA: "sha256:" and the hex
// SHA-256 of the certificate's DER SubjectPublicKeyInfo.
func CACertHash(certPEM string) (string, error) {
	block, _ := pem.Decode([]byte(certPEM))
	if block == nil || block.Type != "CERTIFICATE" {
		return "", errors.New("no PEM certificate")
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(c.RawSubjectPublicKeyInfo)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}

// endpointHostPort is controlPlaneEndpoint with the port made explicit.
func endpointHostPort(endpoint string) string {
	if _, _, err := net.SplitHostPort(endpoint); err == nil {
		return endpoint
	}
	return net.JoinHostPort(strings.Trim(endpoint, "[]"), "6443")
}

type joinConfiguration struct {
	APIVersion       string            `yaml:"apiVersion"`
	Kind             string            `yaml:"kind"`
	CACertPath       string            `yaml:"caCertPath"`
	NodeRegistration nodeReg           `yaml:"nodeRegistration"`
	Discovery        discovery         `yaml:"discovery"`
	ControlPlane     *joinControlPlane `yaml:"controlPlane,omitempty"`
	Patches          *patches          `yaml:"patches,omitempty"`
	Timeouts         timeouts          `yaml:"timeouts"`
}

type discovery struct {
	BootstrapToken    *bootstrapTokenDiscovery `yaml:"bootstrapToken"`
	TLSBootstrapToken string                   `yaml:"tlsBootstrapToken"`
}

type bootstrapTokenDiscovery struct {
	Token             string   `yaml:"token"`
	APIServerEndpoint string   `yaml:"apiServerEndpoint"`
	CACertHashes      []string `yaml:"caCertHashes"`
}

type joinControlPlane struct {
	LocalAPIEndpoint apiEndpoint `yaml:"localAPIEndpoint"`
}

type patches struct {
	Directory string `yaml:"directory"`
}
