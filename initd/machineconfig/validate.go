package machineconfig

import (
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"net/netip"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kilnproject/kiln/initd/pki"
	"github.com/kilnproject/kiln/initd/strictyaml"
	"go.yaml.in/yaml/v3"
)

// Limits kubeadm enforces on the subnets (cmd/kubeadm/app/constants and
// validation): checked here so a bad config fails at boot with our message,
// not minutes later inside kubeadm.
const (
	minPodAddresses     = 14 // MinimumAddressesInPodSubnet
	minServiceAddresses = 10 // MinimumAddressesInServiceSubnet
	maxServiceHostBits  = 20 // MaximumBitsForServiceSubnet
	nodeMaskV4          = 24 // kube-controller-manager's default node-cidr-mask-size-ipv4
	nodeMaskV6          = 64
	maxNodeMaskDiff     = 16 // PodSubnetNodeMaskMaxDiff
)

var (
	// BootstrapTokenRe is kubeadm's token format (cluster-bootstrap's BootstrapTokenPattern).
	BootstrapTokenRe = regexp.MustCompile(`^[a-z0-9]{6}\.[a-z0-9]{16}$`)
	versionRe        = regexp.MustCompile(`^v[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$`)
	dns1123Label     = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	labelNameRe      = regexp.MustCompile(`^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$`)
	bootstrapGroupRe = regexp.MustCompile(`^system:bootstrappers:[a-z0-9:-]{0,255}[a-z0-9]$`)
)

func (s *Spec) validate(errs *strictyaml.Errors, lines strictyaml.Lines) {
	switch s.Role {
	case RoleInit, RoleControlPlane, RoleWorker:
	case "":
		errs.Add(lines, "spec.role", "missing: want one of %s", strings.Join(Roles, ", "))
	default:
		errs.Add(lines, "spec.role", "%q is not one of %s", s.Role, strings.Join(Roles, ", "))
	}
	c := s.Cluster
	if c.ClusterName == "" {
		errs.Add(lines, "spec.cluster.clusterName", "missing")
	} else if msg := dnsSubdomain(c.ClusterName); msg != "" {
		errs.Add(lines, "spec.cluster.clusterName", "%q %s", c.ClusterName, msg)
	}
	if c.ControlPlaneEndpoint == "" {
		errs.Add(lines, "spec.cluster.controlPlaneEndpoint", "missing (host:port of the Kubernetes API, e.g. 10.0.0.10:6443)")
	} else if msg := hostPort(c.ControlPlaneEndpoint); msg != "" {
		errs.Add(lines, "spec.cluster.controlPlaneEndpoint", "%q %s", c.ControlPlaneEndpoint, msg)
	}
	if v := c.KubernetesVersion; v != "" && !versionRe.MatchString(v) {
		errs.Add(lines, "spec.cluster.kubernetesVersion", "%q is not a version like v1.37.2", v)
	}
	validateNetworking(errs, lines, c.Networking)
	validateNode(errs, lines, s.Node)
	if d := s.Install.Disk; d != "" && (!strings.HasPrefix(d, "/dev/") || path.Clean(d) != d) {
		errs.Add(lines, "spec.install.disk", "%q is not a device path under /dev", d)
	}
	if p := s.NodeAPI.Port; p < 1 || p > 65535 {
		errs.Add(lines, "spec.nodeAPI.port", "%d is not a TCP port (1-65535)", p)
	}
	if s.Kubeadm != nil && s.Kubeadm.Kind != yaml.MappingNode {
		errs.Add(lines, "spec.kubeadm", "want a mapping")
	}
	switch {
	case s.Secrets != nil && s.SecretsFile != "":
		errs.Add(lines, "spec.secretsFile", "give spec.secrets or spec.secretsFile, not both")
	case s.Secrets != nil:
		validateSecrets(errs, lines, "spec.secrets", s.Secrets, s.Role)
	case s.SecretsFile != "":
		if !path.IsAbs(s.SecretsFile) || path.Clean(s.SecretsFile) != s.SecretsFile {
			errs.Add(lines, "spec.secretsFile", "%q is not a clean absolute path", s.SecretsFile)
		}
	default:
		errs.Add(lines, "spec.secrets", "missing (or give spec.secretsFile)")
	}
}

func validateNetworking(errs *strictyaml.Errors, lines strictyaml.Lines, n Networking) {
	const base = "spec.cluster.networking."
	pods := parseSubnets(errs, lines, base+"podSubnet", n.PodSubnet, minPodAddresses)
	svcs := parseSubnets(errs, lines, base+"serviceSubnet", n.ServiceSubnet, minServiceAddresses)
	for _, p := range svcs {
		if host := p.Addr().BitLen() - p.Bits(); host > maxServiceHostBits {
			errs.Add(lines, base+"serviceSubnet", "%s is too large: the mask must be at least /%d (kubeadm's limit)", p, p.Addr().BitLen()-maxServiceHostBits)
		}
	}
	for _, p := range pods {
		node := nodeMaskV4
		if p.Addr().Is6() {
			node = nodeMaskV6
		}
		switch {
		case p.Bits() > node:
			errs.Add(lines, base+"podSubnet", "%s is smaller than one node's pod range (/%d)", p, node)
		case node-p.Bits() > maxNodeMaskDiff:
			errs.Add(lines, base+"podSubnet", "%s is too large: the mask must be at least /%d (node ranges are /%d)", p, node-maxNodeMaskDiff, node)
		}
		for _, s := range svcs {
			if p.Overlaps(s) {
				errs.Add(lines, base+"podSubnet", "%s overlaps serviceSubnet %s", p, s)
			}
		}
	}
	if msg := dnsSubdomain(n.DNSDomain); msg != "" {
		errs.Add(lines, base+"dnsDomain", "%q %s", n.DNSDomain, msg)
	}
}

// parseSubnets reads kubeadm's comma-separated CIDR list: one CIDR, or
// one per family for dual stack.
func parseSubnets(errs *strictyaml.Errors, lines strictyaml.Lines, field, s string, minAddrs int) []netip.Prefix {
	var out []netip.Prefix
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		p, err := netip.ParsePrefix(part)
		if err != nil {
			errs.Add(lines, field, "%q is not a CIDR", part)
			return nil
		}
		if p.Masked() != p {
			errs.Add(lines, field, "%s has host bits set (did you mean %s?)", p, p.Masked())
			return nil
		}
		if host := p.Addr().BitLen() - p.Bits(); host < 63 && 1<<host < minAddrs {
			errs.Add(lines, field, "%s has %d addresses; at least %d are needed", p, 1<<host, minAddrs)
		}
		out = append(out, p)
	}
	switch {
	case len(out) > 2:
		errs.Add(lines, field, "%q: give one CIDR, or two (one IPv4, one IPv6) for dual stack", s)
	case len(out) == 2 && out[0].Addr().Is4() == out[1].Addr().Is4():
		errs.Add(lines, field, "%q: dual stack needs one IPv4 and one IPv6 CIDR", s)
	}
	return out
}

var taintEffects = []string{"NoSchedule", "PreferNoSchedule", "NoExecute"}

func validateNode(errs *strictyaml.Errors, lines strictyaml.Lines, n Node) {
	keys := make([]string, 0, len(n.Labels))
	for k := range n.Labels {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		f := "spec.node.labels." + k
		if msg := qualifiedName(k); msg != "" {
			errs.Add(lines, f, "key %s", msg)
		}
		if msg := labelValue(n.Labels[k]); msg != "" {
			errs.Add(lines, f, "value %q %s", n.Labels[k], msg)
		}
	}
	for i, t := range n.Taints {
		f := fmt.Sprintf("spec.node.taints[%d]", i)
		if t.Key == "" {
			errs.Add(lines, f+".key", "missing")
		} else if msg := qualifiedName(t.Key); msg != "" {
			errs.Add(lines, f+".key", "%s", msg)
		}
		if msg := labelValue(t.Value); msg != "" {
			errs.Add(lines, f+".value", "%q %s", t.Value, msg)
		}
		if !slices.Contains(taintEffects, t.Effect) {
			errs.Add(lines, f+".effect", "%q is not one of %s", t.Effect, strings.Join(taintEffects, ", "))
		}
	}
	if k := n.KubeletConfiguration; k != nil && k.Kind != yaml.MappingNode {
		errs.Add(lines, "spec.node.kubeletConfiguration", "want a mapping of KubeletConfiguration fields")
	}
}

// need says whether a role carries a secret.
type need int

const (
	forbidden need = iota
	required
	optional // the role is invalid: check what is there, require nothing
)

// needs returns, for role ("" = secrets.yaml), whether the Kubernetes CA
// keys, service-account key and certificate key are carried. Workers join
// with the bootstrap token and the cluster CA certificate only. Control-plane
// nodes carry the CA keys: kubeadm's uploaded-certs secret expires after
// two hours, and a control-plane node joining later must still find them.
func needs(role string) need {
	switch role {
	case RoleWorker:
		return forbidden
	case RoleInit, RoleControlPlane, "":
		return required
	}
	return optional // spec.role is reported already; do not pile on
}

func validateSecrets(errs *strictyaml.Errors, lines strictyaml.Lines, base string, s *Secrets, role string) {
	f := func(name string) string {
		if base == "" {
			return name
		}
		return base + "." + name
	}
	k8s := needs(role)
	who := "a worker"
	if role == "" {
		who = "secrets.yaml"
	}
	checkCA(errs, lines, f("ca"), s.CA, k8s, true)
	for _, ca := range []struct {
		name string
		v    *CertKey
	}{{"frontProxyCA", s.FrontProxyCA}, {"etcdCA", s.EtcdCA}} {
		if k8s == forbidden && ca.v != nil {
			errs.Add(lines, f(ca.name), "%s does not carry this CA (only init and control-plane nodes do)", who)
		}
		if k8s == required || (k8s == optional && ca.v != nil) {
			checkCA(errs, lines, f(ca.name), ca.v, k8s, true)
		}
	}
	if k8s == forbidden {
		if s.ServiceAccount != nil {
			errs.Add(lines, f("serviceAccount"), "%s does not carry the service-account key", who)
		}
		if s.CertificateKey != "" {
			errs.Add(lines, f("certificateKey"), "%s does not carry the certificate key", who)
		}
	} else {
		if k8s == required || s.ServiceAccount != nil {
			checkServiceAccount(errs, lines, f("serviceAccount"), s.ServiceAccount)
		}
		if s.CertificateKey == "" {
			if k8s == required {
				errs.Add(lines, f("certificateKey"), "missing")
			}
		} else if b, err := hex.DecodeString(s.CertificateKey); err != nil || len(b) != 32 {
			errs.Add(lines, f("certificateKey"), "want 64 hex digits (32 bytes, as kubeadm's certificate key)")
		}
	}
	checkToken(errs, lines, f("bootstrapToken"), s.BootstrapToken)
	checkNodeAPI(errs, lines, f("nodeAPI"), s.NodeAPI, role == "")
}

// checkCA checks a CA certificate and, when need is required, its key;
// when forbidden, the key must be absent. kubeadm takes RSA or ECDSA.
func checkCA(errs *strictyaml.Errors, lines strictyaml.Lines, field string, ck *CertKey, key need, kubeadm bool) *x509.Certificate {
	if ck == nil {
		errs.Add(lines, field, "missing")
		return nil
	}
	if ck.Cert == "" {
		errs.Add(lines, field+".cert", "missing")
		return nil
	}
	c, err := pki.ParseCert([]byte(ck.Cert))
	if err != nil {
		errs.Add(lines, field+".cert", "%v", err)
		return nil
	}
	if !c.IsCA {
		errs.Add(lines, field+".cert", "%q is not a CA certificate", c.Subject.CommonName)
	}
	switch {
	case key == forbidden && ck.Key != "":
		errs.Add(lines, field+".key", "must not be here: this CA's private key does not belong on this node")
	case key == required && ck.Key == "":
		errs.Add(lines, field+".key", "missing")
	case ck.Key != "" && key != forbidden:
		k, err := pki.ParseKey([]byte(ck.Key))
		switch {
		case err != nil:
			errs.Add(lines, field+".key", "%v", err)
		case !pki.SameKey(c.PublicKey, k):
			errs.Add(lines, field+".key", "does not match %s.cert", field)
		case kubeadm && !pki.KubeadmKey(k):
			errs.Add(lines, field+".key", "%s key: kubeadm takes RSA or ECDSA", pki.Algorithm(k))
		}
	}
	return c
}

func checkServiceAccount(errs *strictyaml.Errors, lines strictyaml.Lines, field string, kp *KeyPair) {
	if kp == nil {
		errs.Add(lines, field, "missing")
		return
	}
	if kp.Key == "" {
		errs.Add(lines, field+".key", "missing")
		return
	}
	k, err := pki.ParseKey([]byte(kp.Key))
	if err != nil {
		errs.Add(lines, field+".key", "%v", err)
		return
	}
	if !pki.KubeadmKey(k) {
		errs.Add(lines, field+".key", "%s key: kubeadm takes RSA or ECDSA", pki.Algorithm(k))
	}
	if kp.Pub == "" {
		errs.Add(lines, field+".pub", "missing")
		return
	}
	pub, err := pki.ParsePublicKey([]byte(kp.Pub))
	if err != nil {
		errs.Add(lines, field+".pub", "%v", err)
	} else if !pki.SameKey(pub, k) {
		errs.Add(lines, field+".pub", "does not match %s.key", field)
	}
}

var tokenUsages = []string{"signing", "authentication"}

func checkToken(errs *strictyaml.Errors, lines strictyaml.Lines, field string, t *BootstrapToken) {
	if t == nil {
		errs.Add(lines, field, "missing")
		return
	}
	if t.Token == "" {
		errs.Add(lines, field+".token", "missing")
	} else if !BootstrapTokenRe.MatchString(t.Token) {
		errs.Add(lines, field+".token", "not in kubeadm's format [a-z0-9]{6}.[a-z0-9]{16}")
	}
	if t.TTL != "" {
		if d, err := time.ParseDuration(t.TTL); err != nil || d < 0 {
			errs.Add(lines, field+".ttl", "%q is not a duration like 24h (0s: never expires)", t.TTL)
		}
	}
	for i, u := range t.Usages {
		if !slices.Contains(tokenUsages, u) {
			errs.Add(lines, fmt.Sprintf("%s.usages[%d]", field, i), "%q is not one of %s", u, strings.Join(tokenUsages, ", "))
		}
	}
	for i, g := range t.Groups {
		if !bootstrapGroupRe.MatchString(g) {
			errs.Add(lines, fmt.Sprintf("%s.groups[%d]", field, i), "%q does not start with system:bootstrappers:", g)
		}
	}
}

func checkNodeAPI(errs *strictyaml.Errors, lines strictyaml.Lines, field string, n *NodeAPISecrets, bundle bool) {
	if n == nil {
		errs.Add(lines, field, "missing")
		return
	}
	caKey := forbidden
	if bundle {
		caKey = required
	}
	ca := checkCA(errs, lines, field+".ca", n.CA, caKey, false)
	iss := checkCA(errs, lines, field+".issuer", n.Issuer, required, false)
	if ca == nil || iss == nil {
		return
	}
	if err := iss.CheckSignatureFrom(ca); err != nil {
		errs.Add(lines, field+".issuer.cert", "not signed by %s.ca: %v", field, err)
	}
	if !slices.Equal(iss.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}) {
		errs.Add(lines, field+".issuer.cert", "must be limited to server certificates (extended key usage serverAuth only)")
	}
}

// NodeAPIMaterial returns what the node API needs from the secrets: the CA
// that client certificates must chain to and the issuer of this node's
// server certificate. It checks only these, so the node API can start even
// when other parts of the config are wrong.
func (s *Secrets) NodeAPIMaterial() (*x509.Certificate, pki.Pair, error) {
	errs := &strictyaml.Errors{Source: "machine config"}
	var n *NodeAPISecrets
	if s != nil {
		n = s.NodeAPI
	}
	checkNodeAPI(errs, nil, "spec.secrets.nodeAPI", n, false)
	if err := errs.Err(); err != nil {
		return nil, pki.Pair{}, err
	}
	ca, _ := pki.ParseCert([]byte(n.CA.Cert))
	iss, _ := pki.ParsePair([]byte(n.Issuer.Cert), []byte(n.Issuer.Key))
	return ca, iss, nil
}

func dnsSubdomain(s string) string {
	if len(s) > 253 {
		return "is longer than 253 characters"
	}
	for _, l := range strings.Split(s, ".") {
		if !dns1123Label.MatchString(l) || len(l) > 63 {
			return "is not a DNS name (lower-case letters, digits, '-' and '.')"
		}
	}
	return ""
}

// qualifiedName checks a label or taint key: [prefix/]name.
func qualifiedName(k string) string {
	name := k
	if prefix, n, ok := strings.Cut(k, "/"); ok {
		if prefix == "" || dnsSubdomain(prefix) != "" {
			return fmt.Sprintf("%q: the prefix must be a DNS name", k)
		}
		name = n
	}
	if name == "" || len(name) > 63 || !labelNameRe.MatchString(name) {
		return fmt.Sprintf("%q: the name must be 1-63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit", k)
	}
	return ""
}

func labelValue(v string) string {
	if v == "" {
		return ""
	}
	if len(v) > 63 || !labelNameRe.MatchString(v) {
		return "must be at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
	}
	return ""
}

// hostPort checks kubeadm's controlPlaneEndpoint: a host (IP or DNS name)
// with an optional port, no scheme.
func hostPort(s string) string {
	if strings.Contains(s, "://") {
		return "must be host:port without a scheme"
	}
	host, port := s, ""
	if ap, err := netip.ParseAddrPort(s); err == nil {
		host, port = ap.Addr().String(), strconv.Itoa(int(ap.Port()))
	} else if h, p, ok := strings.Cut(s, ":"); ok && !strings.Contains(p, ":") {
		host, port = h, p
	} else if strings.HasPrefix(s, "[") {
		return "is not host:port"
	}
	if port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return "has no valid port (1-65535)"
		}
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return ""
	}
	if dnsSubdomain(host) != "" {
		return "does not name a host (an IP address or a DNS name)"
	}
	return ""
}
