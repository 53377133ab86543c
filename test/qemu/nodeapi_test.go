package qemu_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kilnproject/kiln/qemu"
)

// The node API of a booted image, through the real kiln binary: a
// gen-config'd machine config rides in a NoCloud seed, the node-API port
// is forwarded to the host, and kiln talks mutual TLS to it.

const nodeAPIPort = 50000

// genCluster runs `kiln gen config` into a new directory.
func genCluster(t *testing.T, name string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	if out, err := kiln(t, nil, "gen", "config", "--cluster-name", name, "--endpoint", "https://10.0.2.15:6443", "-o", dir); err != nil {
		t.Fatalf("kiln gen config: %v\n%s", err, out)
	}
	return dir
}

// freePort returns a loopback TCP port nobody listens on now.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// bootWithMachineConfig boots the minimal ISO with user-data holding only
// the machine config and the node API forwarded to a host port.
func bootWithMachineConfig(t *testing.T, hostname string, machineConfig []byte) (*qemu.VM, string) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "user-data")
	if err := os.WriteFile(p, machineConfig, 0o600); err != nil {
		t.Fatal(err)
	}
	iso := kilnSeed(t, "--kind", "nocloud", "--hostname", hostname, p)
	m := amd64Machine(t, image("amd64", "iso"), "cdrom", iso)
	port := freePort(t)
	m.Forwards = []qemu.Forward{{Host: port, Guest: nodeAPIPort}}
	vm, line := bootKept(t, m)
	wantReady(t, line, hostname, "10.0.2.15/24")
	return vm, "127.0.0.1:" + strconv.Itoa(port)
}

func kilnNode(t *testing.T, config, node string, args ...string) (string, error) {
	t.Helper()
	return kiln(t, nil, append(args, "--config", config, "--node", node)...)
}

func TestNodeAPI(t *testing.T) {
	dir := genCluster(t, "qemu")
	worker, err := os.ReadFile(filepath.Join(dir, "worker.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	vm, node := bootWithMachineConfig(t, "apinode", worker)
	wantConsole(t, vm.Log(), "machine config: role worker, cluster qemu", "node API: listening on :50000")
	cfg := filepath.Join(dir, "kilnconfig")

	out, err := kilnNode(t, cfg, node, "status")
	if err != nil || !strings.Contains(out, "hostname apinode") || !strings.Contains(out, "role worker") || !strings.Contains(out, "kernel 6.1.0") {
		t.Errorf("kiln status: %v\n%s", err, out)
	}
	t.Logf("kiln status:\n%s", out)
	out, err = kilnNode(t, cfg, node, "health")
	if err != nil || !strings.Contains(out, "all checks passed") || !strings.Contains(out, "ok   machine-config: role worker, cluster qemu") {
		t.Errorf("kiln health: %v\n%s", err, out)
	}
	t.Logf("kiln health:\n%s", out)
	out, err = kilnNode(t, cfg, node, "logs", "initd", "--tail", "50")
	if err != nil || !strings.Contains(out, "kiln: node API: listening on :50000") {
		t.Errorf("kiln logs initd: %v\n%s", err, out)
	}
	out, err = kilnNode(t, cfg, node, "version")
	if err != nil || !strings.Contains(out, "version 0.1.0") {
		t.Errorf("kiln version --node: %v\n%s", err, out)
	}
	out, err = kilnNode(t, cfg, node, "kubeconfig", "-o", filepath.Join(t.TempDir(), "kubeconfig"))
	if err == nil || !strings.Contains(out, "control-plane nodes only; this node's role is worker") {
		t.Errorf("kiln kubeconfig from a worker: %v\n%s", err, out)
	}

	// A client certificate from another cluster's node-API CA, with this
	// cluster's CA to trust the node: the node refuses the handshake.
	other := genCluster(t, "other")
	foreign := filepath.Join(t.TempDir(), "kilnconfig")
	if err := os.WriteFile(foreign, []byte(mixConfig(t, filepath.Join(dir, "kilnconfig"), filepath.Join(other, "kilnconfig"))), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err = kilnNode(t, foreign, node, "status")
	if err == nil || !strings.Contains(out, "tls:") {
		t.Errorf("kiln status with another cluster's client certificate succeeded or failed elsewhere: %v\n%s", err, out)
	}
	// Another cluster's kiln does not trust this node either.
	out, err = kilnNode(t, filepath.Join(other, "kilnconfig"), node, "health")
	if err == nil || !strings.Contains(out, "certificate signed by unknown authority") {
		t.Errorf("another cluster's kiln: %v\n%s", err, out)
	}
	// And without any client certificate nothing is served.
	if err := getWithoutClientCert(t, filepath.Join(dir, "kilnconfig"), node); err == nil || !strings.Contains(err.Error(), "certificate required") {
		t.Errorf("request without a client certificate: %v", err)
	}

	start := time.Now()
	out, err = kilnNode(t, cfg, node, "shutdown")
	if err != nil || !strings.Contains(out, "poweroff requested") {
		t.Fatalf("kiln shutdown: %v\n%s", err, out)
	}
	if err := vm.Wait(60 * time.Second); err != nil {
		t.Fatalf("QEMU still running after kiln shutdown: %v", err)
	}
	wantConsole(t, vm.Log(), "node API: poweroff requested", "stopping services", "syncing and unmounting", "poweroff now")
	t.Logf("powered off %.1fs after kiln shutdown", time.Since(start).Seconds())
}

// TestNodeAPIBadConfig: a machine config with role master and a pod CIDR
// overlapping the service CIDR is refused on the console, field by field;
// the node API still starts (its own part is fine) and kiln health reports
// the same errors.
func TestNodeAPIBadConfig(t *testing.T) {
	dir := genCluster(t, "qemu")
	worker, err := os.ReadFile(filepath.Join(dir, "worker.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	bad := strings.Replace(string(worker), "role: worker", "role: master", 1)
	bad = strings.Replace(bad, "podSubnet: 10.244.0.0/16", "podSubnet: 10.96.0.0/16", 1)
	if bad == string(worker) {
		t.Fatal("fixture edit failed")
	}
	vm, node := bootWithMachineConfig(t, "badnode", []byte(bad))
	roleErr := `machine config: spec.role: "master" is not one of init, control-plane, worker`
	cidrErr := "machine config: spec.cluster.networking.podSubnet: 10.96.0.0/16 overlaps serviceSubnet 10.96.0.0/12"
	wantConsole(t, vm.Log(), "kiln: ERROR: "+roleErr, "kiln: ERROR: "+cidrErr, "node API: listening on :50000")

	out, err := kilnNode(t, filepath.Join(dir, "kilnconfig"), node, "health")
	if err == nil {
		t.Errorf("kiln health passed on an invalid machine config:\n%s", out)
	}
	for _, want := range []string{"FAIL machine-config", roleErr, cidrErr, "is not healthy: machine-config"} {
		if !strings.Contains(out, want) {
			t.Errorf("kiln health lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "spec.secrets") {
		t.Errorf("kiln health reports secrets a worker's config rightly lacks:\n%s", out)
	}
	t.Logf("kiln health:\n%s", out)
}

// mixConfig returns trustCfg with the client certificate and key of certCfg.
func mixConfig(t *testing.T, trustCfg, certCfg string) string {
	t.Helper()
	a, _ := os.ReadFile(trustCfg)
	b, _ := os.ReadFile(certCfg)
	head, _, ok := strings.Cut(string(a), "cert: |")
	_, tail, ok2 := strings.Cut(string(b), "cert: |")
	if !ok || !ok2 {
		t.Fatalf("kilnconfig layout changed:\n%s", a)
	}
	return head + "cert: |" + tail
}

// getWithoutClientCert makes a TLS request that trusts the node's CA but
// presents no certificate.
func getWithoutClientCert(t *testing.T, cfg, node string) error {
	t.Helper()
	data, _ := os.ReadFile(cfg)
	_, rest, _ := strings.Cut(string(data), "ca: |")
	blk, _ := pem.Decode([]byte(strings.ReplaceAll(rest, "\n  ", "\n")))
	if blk == nil {
		t.Fatalf("no CA in %s", cfg)
	}
	ca, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: time.Minute}).Get("https://" + node + "/v1/version")
	if err == nil {
		resp.Body.Close()
	}
	return err
}
