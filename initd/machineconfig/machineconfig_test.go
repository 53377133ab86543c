package machineconfig

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kilnproject/kiln/initd/cloudconfig"
	"github.com/kilnproject/kiln/initd/strictyaml"
)

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func example(t *testing.T, role string) *MachineConfig {
	t.Helper()
	name := map[string]string{RoleInit: "init.yaml", RoleControlPlane: "controlplane.yaml", RoleWorker: "worker.yaml"}[role]
	mc, err := Parse(name, readFile(t, filepath.Join("..", "..", "docs", "examples", name)))
	if err != nil {
		t.Fatalf("docs/examples/%s: %v", name, err)
	}
	return mc
}

// The documented examples (one per role) parse, and carry what their
// role needs and nothing more.
func TestExamples(t *testing.T) {
	for _, role := range Roles {
		mc := example(t, role)
		s := mc.Spec.Secrets
		if mc.Spec.Role != role {
			t.Errorf("example for %s has role %q", role, mc.Spec.Role)
		}
		if s.NodeAPI.CA.Key != "" {
			t.Errorf("%s: the node-API CA key is in a machine config", role)
		}
		worker := role == RoleWorker
		if got := s.CA.Key != ""; got == worker {
			t.Errorf("%s: cluster CA key present = %v", role, got)
		}
		if worker && (s.FrontProxyCA != nil || s.EtcdCA != nil || s.ServiceAccount != nil || s.CertificateKey != "") {
			t.Errorf("worker example carries control-plane secrets")
		}
	}
	init := example(t, RoleInit)
	if init.Spec.Node.Labels["topology.kubernetes.io/zone"] != "rack-1" || init.Spec.Install.Disk != "/dev/vda" || init.Spec.NodeAPI.Port != 50000 {
		t.Errorf("init example fields: %+v", init.Spec)
	}
	if k := init.Spec.Node.KubeletConfiguration; k == nil || len(k.Content) != 4 || k.Content[0].Value != "maxPods" {
		t.Errorf("kubeletConfiguration passthrough: %+v", k)
	}
	if k := init.Spec.Kubeadm; k == nil || k.Content[0].Value != "clusterConfiguration" {
		t.Errorf("kubeadm passthrough: %+v", k)
	}
	w := example(t, RoleWorker)
	if len(w.Spec.Node.Taints) != 1 || w.Spec.Node.Taints[0] != (Taint{Key: "dedicated", Value: "storage", Effect: "NoSchedule"}) {
		t.Errorf("worker taints: %+v", w.Spec.Node.Taints)
	}
}

// Each bad fixture gives exactly the errors in its .err file: source,
// field and line.
func TestBadFixtures(t *testing.T) {
	files, _ := filepath.Glob("testdata/bad/*.yaml")
	if len(files) < 8 {
		t.Fatalf("only %d fixtures", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			want := strings.TrimSpace(string(readFile(t, strings.TrimSuffix(f, ".yaml")+".err")))
			mc, err := Parse(filepath.Base(f), readFile(t, f))
			if err == nil {
				t.Fatal("parsed without error")
			}
			if got := err.Error(); got != want {
				t.Errorf("errors:\n%s\nwant:\n%s", got, want)
			}
			var se *strictyaml.Errors
			if !errors.As(err, &se) {
				t.Fatalf("error is %T", err)
			}
			if (mc == nil) != se.Syntax {
				t.Errorf("config returned = %v with syntax error = %v", mc != nil, se.Syntax)
			}
		})
	}
}

// The two failures the node must report at boot, in the words the docs use.
func TestRoleMasterAndOverlap(t *testing.T) {
	_, err := Parse("machine config", readFile(t, "testdata/bad/role-master.yaml"))
	if err == nil || !strings.HasPrefix(err.Error(), `machine config: spec.role: "master" is not one of init, control-plane, worker`) {
		t.Errorf("role master: %v", err)
	}
	_, err = Parse("machine config", readFile(t, "testdata/bad/overlap.yaml"))
	if err == nil || !strings.Contains(err.Error(), "spec.cluster.networking.podSubnet: 10.96.0.0/16 overlaps serviceSubnet 10.96.0.0/12") {
		t.Errorf("overlap: %v", err)
	}
}

func TestDefaults(t *testing.T) {
	mc, err := Parse("x", []byte(`apiVersion: kiln.dev/v1alpha1
kind: MachineConfig
spec:
  role: worker
  cluster: {clusterName: c, controlPlaneEndpoint: "cp.example.internal"}
  secretsFile: /etc/kiln/secrets.yaml
`))
	if err != nil {
		t.Fatal(err)
	}
	n := mc.Spec.Cluster.Networking
	if n.PodSubnet != DefaultPodSubnet || n.ServiceSubnet != DefaultServiceSubnet || n.DNSDomain != DefaultDNSDomain || mc.Spec.NodeAPI.Port != 50000 {
		t.Errorf("defaults: %+v port %d", n, mc.Spec.NodeAPI.Port)
	}
}

func TestEndpoints(t *testing.T) {
	for ep, ok := range map[string]bool{
		"10.0.0.10:6443": true, "10.0.0.10": true, "[fd00::1]:6443": true, "fd00::1": true, "cp.example.internal:443": true,
		"https://10.0.0.10:6443": false, "10.0.0.10:0": false, "10.0.0.10:99999": false, "bad_host:6443": false, "[fd00::1:6443": false,
	} {
		if got := hostPort(ep) == ""; got != ok {
			t.Errorf("controlPlaneEndpoint %q accepted = %v, want %v (%s)", ep, got, ok, hostPort(ep))
		}
	}
}

// A worker handed the init node's secrets is refused, field by field.
func TestWorkerRefusesCAKeys(t *testing.T) {
	init := example(t, RoleInit)
	mc := ForRole(RoleWorker, init.Spec.Cluster, init.Spec.Secrets)
	mc.Spec.Secrets = init.Spec.Secrets // all of them
	b, err := Marshal("", mc)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Parse("worker.yaml", b)
	if err == nil {
		t.Fatal("a worker with CA keys parsed")
	}
	for _, want := range []string{"spec.secrets.ca.key: must not be here", "spec.secrets.frontProxyCA: a worker does not carry",
		"spec.secrets.etcdCA: a worker", "spec.secrets.serviceAccount: a worker", "spec.secrets.certificateKey: a worker"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

// ForRole output round-trips through Parse, and Marshal is deterministic.
func TestForRoleRoundTrip(t *testing.T) {
	init := example(t, RoleInit)
	for _, role := range Roles {
		mc := ForRole(role, init.Spec.Cluster, init.Spec.Secrets)
		a, err := Marshal("", mc)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := Marshal("", ForRole(role, init.Spec.Cluster, init.Spec.Secrets))
		if string(a) != string(b) {
			t.Errorf("%s: Marshal is not deterministic", role)
		}
		back, err := Parse(role, a)
		if err != nil {
			t.Fatalf("%s: %v", role, err)
		}
		if back.Spec.Secrets.BootstrapToken.Token != init.Spec.Secrets.BootstrapToken.Token {
			t.Errorf("%s: token lost", role)
		}
	}
}

// Broken secrets: a key that does not match its certificate, a token in
// the wrong format, a certificate key of the wrong size, an issuer from
// another CA.
func TestSecretsChecks(t *testing.T) {
	init := example(t, RoleInit)
	cp := example(t, RoleControlPlane)
	s := *init.Spec.Secrets
	s.CA = &CertKey{Cert: s.CA.Cert, Key: s.EtcdCA.Key}
	s.BootstrapToken = &BootstrapToken{Token: "ABCDEF.0123456789abcdef", TTL: "forever", Usages: []string{"signing", "login"}, Groups: []string{"system:masters"}}
	s.CertificateKey = "abcd"
	s.NodeAPI = &NodeAPISecrets{CA: &CertKey{Cert: s.FrontProxyCA.Cert}, Issuer: cp.Spec.Secrets.NodeAPI.Issuer}
	mc := ForRole(RoleInit, init.Spec.Cluster, &s)
	b, _ := Marshal("", mc)
	_, err := Parse("init.yaml", b)
	if err == nil {
		t.Fatal("parsed")
	}
	for _, want := range []string{
		"spec.secrets.ca.key: does not match spec.secrets.ca.cert",
		"spec.secrets.bootstrapToken.token: not in kubeadm's format",
		`spec.secrets.bootstrapToken.ttl: "forever" is not a duration`,
		`spec.secrets.bootstrapToken.usages[1]: "login" is not one of signing, authentication`,
		`spec.secrets.bootstrapToken.groups[0]: "system:masters" does not start with system:bootstrappers:`,
		"spec.secrets.certificateKey: want 64 hex digits",
		"spec.secrets.nodeAPI.issuer.cert: not signed by spec.secrets.nodeAPI.ca",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

// The node API needs only its own part of the config: a config that is
// wrong elsewhere still yields it; a broken node-API part does not.
func TestNodeAPIMaterial(t *testing.T) {
	w := example(t, RoleWorker)
	w.Spec.Role = "master"
	w.Spec.Cluster.Networking.PodSubnet = "10.96.0.0/16"
	b, _ := Marshal("", w)
	mc, err := Parse("machine config", b)
	if err == nil {
		t.Fatal("invalid config parsed")
	}
	// An invalid role is one error, not also one per secret it would need.
	if n := len(strings.Split(err.Error(), "\n")); n != 2 {
		t.Errorf("%d errors, want the role and the overlap:\n%v", n, err)
	}
	ca, iss, err := mc.Spec.Secrets.NodeAPIMaterial()
	if err != nil || ca == nil || iss.Key == nil {
		t.Fatalf("node-API material from an otherwise invalid config: %v", err)
	}
	mc.Spec.Secrets.NodeAPI.Issuer.Key = ""
	if _, _, err := mc.Spec.Secrets.NodeAPIMaterial(); err == nil || !strings.Contains(err.Error(), "spec.secrets.nodeAPI.issuer.key: missing") {
		t.Errorf("missing issuer key: %v", err)
	}
	var none *Secrets
	if _, _, err := none.NodeAPIMaterial(); err == nil {
		t.Error("no secrets gave node-API material")
	}
}

// spec.secretsFile: the secrets are read from the node's filesystem and
// checked for the role, errors named after the file.
func TestSecretsFile(t *testing.T) {
	w := example(t, RoleWorker)
	dir := t.TempDir()
	good, _ := Marshal("", w.Spec.Secrets)
	os.WriteFile(filepath.Join(dir, "worker-secrets.yaml"), good, 0o600)
	init := example(t, RoleInit)
	bad, _ := Marshal("", init.Spec.Secrets)
	os.WriteFile(filepath.Join(dir, "init-secrets.yaml"), bad, 0o600)

	cfg := func(path string) *MachineConfig {
		mc, err := Parse("machine config", []byte("apiVersion: kiln.dev/v1alpha1\nkind: MachineConfig\nspec:\n  role: worker\n  cluster: {clusterName: c, controlPlaneEndpoint: \"10.0.0.10:6443\"}\n  secretsFile: "+path+"\n"))
		if err != nil {
			t.Fatal(err)
		}
		return mc
	}
	mc := cfg(filepath.Join(dir, "worker-secrets.yaml"))
	if err := mc.LoadSecretsFile(os.ReadFile); err != nil {
		t.Fatal(err)
	}
	if mc.Spec.Secrets.BootstrapToken.Token != w.Spec.Secrets.BootstrapToken.Token {
		t.Error("secrets not loaded")
	}
	p := filepath.Join(dir, "init-secrets.yaml")
	err := cfg(p).LoadSecretsFile(os.ReadFile)
	if err == nil || !strings.Contains(err.Error(), p+": ca.key: must not be here") {
		t.Errorf("worker reading an init's secrets: %v", err)
	}
	err = cfg(filepath.Join(dir, "absent.yaml")).LoadSecretsFile(os.ReadFile)
	if err == nil || !strings.Contains(err.Error(), "spec.secretsFile") {
		t.Errorf("absent secrets file: %v", err)
	}
}

// The machine config reaches the node as user-data: alone, or under kiln:
// in a #cloud-config. Both parse after cloudconfig has taken them apart.
func TestFromUserData(t *testing.T) {
	raw := readFile(t, "../../docs/examples/worker.yaml")
	alone, err := cloudconfig.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Parse("machine config", alone.MachineConfig); err != nil {
		t.Errorf("alone: %v", err)
	}
	indented := "#cloud-config\nhostname: w1\nkiln:\n"
	for _, l := range strings.Split(strings.TrimRight(string(raw), "\n"), "\n") {
		indented += "  " + l + "\n"
	}
	cc, err := cloudconfig.Parse([]byte(indented))
	if err != nil {
		t.Fatal(err)
	}
	mc, err := Parse("machine config", cc.MachineConfig)
	if err != nil {
		t.Fatalf("under kiln: %v", err)
	}
	if mc.Spec.Role != RoleWorker || cc.Hostname != "w1" {
		t.Errorf("role %q hostname %q", mc.Spec.Role, cc.Hostname)
	}
}

func TestBundle(t *testing.T) {
	init := example(t, RoleInit)
	b := SecretsBundle{APIVersion: APIVersion, Kind: KindSecrets, Secrets: *init.Spec.Secrets}
	data, _ := Marshal("", b)
	_, err := ParseBundle("secrets.yaml", data)
	if err == nil || !strings.Contains(err.Error(), "secrets.yaml: secrets.nodeAPI.ca.key: missing") {
		t.Errorf("bundle without the node-API CA key: %v", err)
	}
}
