package cluster

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kilnproject/kiln/initd/machineconfig"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// golden compares got with testdata/name (rewritten with -update).
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(p, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (go test -update to accept):\n%s", name, got)
	}
}

func exampleConfig(t *testing.T, role string) *machineconfig.MachineConfig {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("../../docs/examples", role+".yaml"))
	if err != nil {
		t.Fatal(err)
	}
	mc, err := machineconfig.Parse(role+".yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	return mc
}

// testInfo is a cluster.json as kiln build writes it; the references
// stand for kubeadm's (the registry part is kubeadm's, never ours).
func testInfo() *Info {
	return &Info{Kubernetes: "v1.37.2", ImagesDir: "/usr/share/kiln/images",
		Images: []string{"example.test/k8s/kube-apiserver:v1.37.2", "example.test/k8s/pause:3.10.1", "example.test/k8s/coredns/coredns:v1.14.6"}}
}

func testNode() Node {
	return Node{Name: "node1", Address: netip.MustParseAddr("192.168.10.10"), Info: testInfo()}
}

func TestKubeadmInit(t *testing.T) {
	mc := exampleConfig(t, "init")
	out, err := KubeadmInit(mc, testNode())
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "init-kubeadm.yaml", out)
	s := string(out)
	for _, want := range []string{
		"kind: InitConfiguration", "kind: ClusterConfiguration", "kind: KubeletConfiguration",
		"token: " + mc.Spec.Secrets.BootstrapToken.Token,
		"certificateKey: " + mc.Spec.Secrets.CertificateKey,
		"criSocket: unix:///run/containerd/containerd.sock",
		"imagePullPolicy: Never",
		"taints: []",                 // the example asks for none
		"cgroupDriver: cgroupfs",     // no systemd
		"maxPods: 200",               // the machine config's kubelet configuration
		"- cluster.example.internal", // spec.kubeadm.clusterConfiguration
		"advertiseAddress: 192.168.10.10",
		"value: topology.kubernetes.io/zone=rack-1",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("kubeadm config lacks %q", want)
		}
	}
	// The same inputs give the same bytes.
	again, _ := KubeadmInit(mc, testNode())
	if !bytes.Equal(out, again) {
		t.Error("two renderings differ")
	}
}

func TestKubeadmInitErrors(t *testing.T) {
	mc := exampleConfig(t, "init")
	mc.Spec.Cluster.KubernetesVersion = "v1.36.0"
	if _, err := KubeadmInit(mc, testNode()); err == nil || !strings.Contains(err.Error(), "spec.cluster.kubernetesVersion: v1.36.0, but the image carries Kubernetes v1.37.2") {
		t.Errorf("version skew: %v", err)
	}
	w := exampleConfig(t, "worker")
	if _, err := KubeadmInit(w, testNode()); err == nil || !strings.Contains(err.Error(), "only an init node") {
		t.Errorf("worker: %v", err)
	}
	mc = exampleConfig(t, "init")
	bad, err := machineconfig.Parse("x", []byte("apiVersion: kiln.dev/v1alpha1\nkind: MachineConfig\nspec:\n  role: init\n  kubeadm:\n    joinConfiguration: {}\n"))
	if bad == nil {
		t.Fatal(err)
	}
	mc.Spec.Kubeadm = bad.Spec.Kubeadm
	if _, err := KubeadmInit(mc, testNode()); err == nil || !strings.Contains(err.Error(), "spec.kubeadm.joinConfiguration: not supported (allowed: initConfiguration, clusterConfiguration)") {
		t.Errorf("unknown spec.kubeadm key: %v", err)
	}
	mc = exampleConfig(t, "init")
	if _, err := KubeadmInit(mc, Node{Name: "n", Info: testInfo()}); err == nil || !strings.Contains(err.Error(), "no address") {
		t.Errorf("no address: %v", err)
	}
}

func TestKubeadmJoin(t *testing.T) {
	w := exampleConfig(t, "worker")
	n := testNode()
	n.Address = netip.MustParseAddr("192.168.10.21")
	out, err := KubeadmJoin(w, n, "")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "worker-kubeadm.yaml", out)
	hash, err := CACertHash(w.Spec.Secrets.CA.Cert)
	if err != nil {
		t.Fatal(err)
	}
	s := string(out)
	for _, want := range []string{
		"kind: JoinConfiguration", "apiServerEndpoint: 192.168.10.10:6443", "- " + hash,
		"token: " + w.Spec.Secrets.BootstrapToken.Token, "tlsBootstrapToken: " + w.Spec.Secrets.BootstrapToken.Token,
		"imagePullPolicy: Never", "value: 192.168.10.21", "key: dedicated",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("join config lacks %q", want)
		}
	}
	if strings.Contains(s, "controlPlane:") {
		t.Error("a worker's join config has a controlPlane section")
	}

	cp := exampleConfig(t, "controlplane")
	cp.Spec.Cluster.ControlPlaneEndpoint = "cluster.example.internal"
	out, err = KubeadmJoin(cp, n, PatchDir)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "controlplane-kubeadm.yaml", out)
	for _, want := range []string{"controlPlane:", "advertiseAddress: 192.168.10.21", "apiServerEndpoint: cluster.example.internal:6443"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("control-plane join config lacks %q", want)
		}
	}
	if _, err := KubeadmJoin(exampleConfig(t, "init"), n, ""); err == nil || !strings.Contains(err.Error(), "only worker and control-plane nodes join") {
		t.Errorf("init role: %v", err)
	}
	w.Spec.Secrets.CA.Cert = "not a certificate"
	if _, err := KubeadmJoin(w, n, ""); err == nil || !strings.Contains(err.Error(), "spec.secrets.ca.cert") {
		t.Errorf("bad CA: %v", err)
	}
}

// CACertHash agrees with the recipe in kubeadm's documentation (openssl
// x509 -pubkey | openssl rsa/pkey -pubin -outform der | sha256sum).
func TestCACertHash(t *testing.T) {
	w := exampleConfig(t, "worker")
	got, err := CACertHash(w.Spec.Secrets.CA.Cert)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	crt := filepath.Join(dir, "ca.crt")
	os.WriteFile(crt, []byte(w.Spec.Secrets.CA.Cert), 0o644)
	cmd := exec.Command("sh", "-c", "openssl x509 -pubkey -noout -in "+crt+" | openssl pkey -pubin -outform der | sha256sum")
	out, err := cmd.Output()
	if err != nil {
		t.Skipf("openssl: %v", err)
	}
	if want := "sha256:" + strings.Fields(string(out))[0]; got != want {
		t.Errorf("CACertHash = %s, openssl says %s", got, want)
	}
}

func TestKubeletPatch(t *testing.T) {
	mc := exampleConfig(t, "init") // its kubeletConfiguration sets maxPods: 200
	name, body, err := KubeletPatch(mc)
	if err != nil || name != "kubeletconfiguration+merge.yaml" || !strings.Contains(string(body), "maxPods: 200") {
		t.Errorf("KubeletPatch: %s %q %v", name, body, err)
	}
	if name, body, err := KubeletPatch(exampleConfig(t, "worker")); err != nil || name != "" || body != nil {
		t.Errorf("no kubelet configuration: %s %q %v", name, body, err)
	}
}

func TestContainerdTOML(t *testing.T) {
	ref, err := testInfo().Image("pause")
	if err != nil || ref != "example.test/k8s/pause:3.10.1" {
		t.Fatalf("Image(pause) = %q, %v", ref, err)
	}
	if _, err := testInfo().Image("etcd"); err == nil {
		t.Error("Image(etcd) found an image that is not there")
	}
	golden(t, "containerd.toml", ContainerdTOML(ref))
}

func TestNodeAddress(t *testing.T) {
	for _, tc := range []struct {
		endpoint string
		addrs    []string
		want     string
	}{
		{"10.0.2.15:6443", []string{"fe80::1/64", "10.0.2.15/24"}, "10.0.2.15"},
		{"cluster.example:6443", []string{"fd00::5/64", "192.168.1.5/24"}, "192.168.1.5"},
		{"10.0.0.1:6443", []string{"fd00::5/64"}, "fd00::5"},
		// A joining node with a NAT NIC first: the address on the endpoint's subnet.
		{"192.168.76.10:6443", []string{"10.0.2.15/24", "192.168.76.11/24"}, "192.168.76.11"},
	} {
		got, err := NodeAddress(tc.endpoint, tc.addrs)
		if err != nil || got.String() != tc.want {
			t.Errorf("%s %v: %v %v, want %s", tc.endpoint, tc.addrs, got, err, tc.want)
		}
	}
	if _, err := NodeAddress("10.0.0.1:6443", []string{"127.0.0.1/8"}); err == nil {
		t.Error("a loopback-only node got an address")
	}
}

func TestKubeletArgs(t *testing.T) {
	dir := t.TempDir()
	env := filepath.Join(dir, "kubeadm-flags.env")
	// What kubeadm's WriteKubeletArgsToFile writes: KEY=%q.
	os.WriteFile(env, []byte(`KUBELET_KUBEADM_ARGS="--node-ip=10.0.2.15 --node-labels=a=b,c=d"`+"\n"), 0o644)
	got, err := KubeletArgs(env)
	if err != nil {
		t.Fatal(err)
	}
	want := "--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf --kubeconfig=/etc/kubernetes/kubelet.conf --config=/var/lib/kubelet/config.yaml --node-ip=10.0.2.15 --node-labels=a=b,c=d"
	if strings.Join(got, " ") != want {
		t.Errorf("args %q\nwant %q", got, want)
	}
	if got, err := KubeletArgs(filepath.Join(dir, "none")); err != nil || len(got) != 3 {
		t.Errorf("without the env file: %q %v", got, err)
	}
	os.WriteFile(env, []byte("OTHER=1\n"), 0o644)
	if _, err := KubeletArgs(env); err == nil || !strings.Contains(err.Error(), env) {
		t.Errorf("bad env file: %v", err)
	}
}

func TestWritePKI(t *testing.T) {
	mc := exampleConfig(t, "init")
	dir := t.TempDir()
	if err := WritePKI(dir, mc.Spec.Secrets); err != nil {
		t.Fatal(err)
	}
	for name, perm := range map[string]os.FileMode{
		"ca.crt": 0o644, "ca.key": 0o600, "front-proxy-ca.crt": 0o644, "front-proxy-ca.key": 0o600,
		"etcd/ca.crt": 0o644, "etcd/ca.key": 0o600, "sa.pub": 0o644, "sa.key": 0o600,
	} {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if st.Mode().Perm() != perm {
			t.Errorf("%s: mode %v, want %v", name, st.Mode().Perm(), perm)
		}
	}
	got, _ := os.ReadFile(filepath.Join(dir, "ca.crt"))
	if string(got) != mc.Spec.Secrets.CA.Cert {
		t.Error("ca.crt is not the machine config's CA")
	}
	// Again: same content, nothing to do. Another cluster's CA: refused.
	if err := WritePKI(dir, mc.Spec.Secrets); err != nil {
		t.Errorf("second write: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "ca.crt"), []byte("another CA"), 0o644)
	if err := WritePKI(dir, mc.Spec.Secrets); err == nil || !strings.Contains(err.Error(), "spec.secrets.ca.cert; not overwritten") {
		t.Errorf("foreign ca.crt: %v", err)
	}
	// A worker carries only the CA certificate.
	w := exampleConfig(t, "worker")
	wdir := t.TempDir()
	if err := WritePKI(wdir, w.Spec.Secrets); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(wdir, "ca.key")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("worker ca.key: %v", err)
	}
}

func TestTarLayout(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"oci-layout": `{"imageLayoutVersion":"1.0.0"}`, "index.json": `{"manifests":[]}`,
		"blobs/sha256/bb": "second", "blobs/sha256/aa": "first",
	}
	for name, data := range files {
		os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755)
		os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644)
	}
	var buf bytes.Buffer
	if err := TarLayout(&buf, dir, nil); err != nil {
		t.Fatal(err)
	}
	names, got := readTar(t, &buf)
	for _, name := range names {
		if got[name] != files[name] {
			t.Errorf("%s: %q", name, got[name])
		}
	}
	if got := strings.Join(names, " "); got != "oci-layout index.json blobs/sha256/aa blobs/sha256/bb" {
		t.Errorf("tar order: %s", got)
	}
	d, err := LayoutDigest(dir)
	if err != nil || !strings.HasPrefix(d, "sha256:") || len(d) != 71 {
		t.Errorf("LayoutDigest: %q %v", d, err)
	}
}

// A worker's import: index.json lists only the kept image and only the
// blobs it reaches travel (the shared layer once, the other image's own
// manifest, config and layer not at all).
func TestTarLayoutSubset(t *testing.T) {
	dir := t.TempDir()
	blob := func(data string) string {
		sum := sha256.Sum256([]byte(data))
		d := hex.EncodeToString(sum[:])
		os.MkdirAll(filepath.Join(dir, "blobs/sha256"), 0o755)
		os.WriteFile(filepath.Join(dir, "blobs/sha256", d), []byte(data), 0o644)
		return "sha256:" + d
	}
	shared, own1, own2 := blob("shared layer"), blob("proxy layer"), blob("apiserver layer")
	manifest := func(cfg, layer string) string {
		return blob(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":1},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":%q,"size":1},{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":%q,"size":1}]}`, cfg, shared, layer))
	}
	m1, m2 := manifest(blob(`{"config":1}`), own1), manifest(blob(`{"config":2}`), own2)
	desc := func(d, ref string) string {
		return fmt.Sprintf(`{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":%q,"size":1,"annotations":{"io.containerd.image.name":%q,"org.opencontainers.image.ref.name":%q}}`, d, ref, ref)
	}
	os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644)
	os.WriteFile(filepath.Join(dir, "index.json"), []byte(`{"schemaVersion":2,"manifests":[`+desc(m1, "example.test/k8s/kube-proxy:v1.37.2")+","+desc(m2, "example.test/k8s/kube-apiserver:v1.37.2")+`]}`), 0o644)

	var buf bytes.Buffer
	if err := TarLayout(&buf, dir, func(ref string) bool { return !strings.Contains(ref, "apiserver") }); err != nil {
		t.Fatal(err)
	}
	_, got := readTar(t, &buf)
	name := func(d string) string { return "blobs/sha256/" + strings.TrimPrefix(d, "sha256:") }
	for _, d := range []string{m1, shared, own1} {
		if _, ok := got[name(d)]; !ok {
			t.Errorf("kept image's blob %s missing", d)
		}
	}
	for _, d := range []string{m2, own2} {
		if _, ok := got[name(d)]; ok {
			t.Errorf("left-out image's blob %s is in the tar", d)
		}
	}
	if len(got) != 6 { // oci-layout, index.json, manifest, config, 2 layers
		t.Errorf("%d files in the tar, want 6", len(got))
	}
	if idx := got["index.json"]; !strings.Contains(idx, "kube-proxy") || strings.Contains(idx, "kube-apiserver") || !strings.Contains(idx, `"schemaVersion":2`) {
		t.Errorf("index.json: %s", idx)
	}
	// A digest that tries to leave the layout is refused.
	os.WriteFile(filepath.Join(dir, "index.json"), []byte(`{"manifests":[`+desc("sha256:../../etc/passwd", "x")+`]}`), 0o644)
	if err := TarLayout(io.Discard, dir, func(string) bool { return true }); err == nil {
		t.Error("a digest with a path in it was followed")
	}
}

// readTar returns a tar stream's file names in order and their contents.
func readTar(t *testing.T, r io.Reader) ([]string, map[string]string) {
	t.Helper()
	tr := tar.NewReader(r)
	var names []string
	files := map[string]string{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return names, files
		}
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(tr)
		names = append(names, h.Name)
		files[h.Name] = string(data)
	}
}

func TestNodeImages(t *testing.T) {
	info := &Info{Images: []string{"example.test/k8s/etcd:3.7.0-0", "example.test/k8s/kube-apiserver:v1.37.2", "example.test/k8s/kube-controller-manager:v1.37.2",
		"example.test/k8s/kube-scheduler:v1.37.2", "example.test/k8s/kube-proxy:v1.37.2", "example.test/k8s/pause:3.10.1", "example.test/k8s/coredns/coredns:v1.14.6"}}
	if got := len(info.NodeImages(machineconfig.RoleInit)); got != 7 {
		t.Errorf("init imports %d images, want all 7", got)
	}
	if got := len(info.NodeImages(machineconfig.RoleControlPlane)); got != 7 {
		t.Errorf("control-plane imports %d images, want all 7", got)
	}
	if got := strings.Join(info.NodeImages(machineconfig.RoleWorker), " "); got != "example.test/k8s/kube-proxy:v1.37.2 example.test/k8s/pause:3.10.1 example.test/k8s/coredns/coredns:v1.14.6" {
		t.Errorf("worker imports %s", got)
	}
}

func TestWriteResolvConf(t *testing.T) {
	dir := t.TempDir()
	out, node := filepath.Join(dir, "kubelet-resolv.conf"), netip.MustParseAddr("10.0.2.15")
	// No resolv.conf, or one without a nameserver: the node's own address.
	for _, content := range []string{"", "search example.test\n"} {
		in := filepath.Join(dir, "resolv.conf")
		os.Remove(in)
		if content != "" {
			os.WriteFile(in, []byte(content), 0o644)
		}
		if err := WriteResolvConf(out, in, node); err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(out); !strings.HasSuffix(string(got), "\nnameserver 10.0.2.15\n") {
			t.Errorf("from %q: %q", content, got)
		}
	}
	in := filepath.Join(dir, "resolv.conf")
	os.WriteFile(in, []byte("nameserver 192.0.2.53\nsearch example.test\n"), 0o644)
	if err := WriteResolvConf(out, in, node); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(out); string(got) != "nameserver 192.0.2.53\nsearch example.test\n" {
		t.Errorf("copy: %q", got)
	}
}
