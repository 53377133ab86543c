package nodeapi

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kilnproject/kiln/initd/machineconfig"
	"github.com/kilnproject/kiln/initd/pki"
	"github.com/kilnproject/kiln/initd/secrets"
	"github.com/kilnproject/kiln/initd/supervisor"
)

// cluster is one generated secrets bundle and a kilnconfig for it.
type cluster struct {
	bundle *machineconfig.SecretsBundle
	client *ClientConfig
	ca     *x509.Certificate
	issuer pki.Pair
}

func newCluster(t *testing.T, name string) *cluster {
	t.Helper()
	now := time.Now()
	b, err := secrets.Generate(name, now)
	if err != nil {
		t.Fatal(err)
	}
	cert, key, err := secrets.IssueClient(b, "kiln", now)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &ClientConfig{APIVersion: machineconfig.APIVersion, Kind: KindClientConfig, Cluster: name,
		Endpoints: []string{"127.0.0.1"}, CA: b.Secrets.NodeAPI.CA.Cert, Cert: string(cert), Key: string(key)}
	data, err := machineconfig.Marshal("", cfg)
	if err != nil {
		t.Fatal(err)
	}
	if cfg, err = ParseClientConfig("kilnconfig", data); err != nil {
		t.Fatal(err)
	}
	// The node reads its material the way initd does: from a worker config.
	mc := machineconfig.ForRole(machineconfig.RoleWorker, machineconfig.Cluster{ClusterName: name, ControlPlaneEndpoint: "10.0.0.10:6443"}, &b.Secrets)
	ca, iss, err := mc.Spec.Secrets.NodeAPIMaterial()
	if err != nil {
		t.Fatal(err)
	}
	return &cluster{bundle: b, client: cfg, ca: ca, issuer: iss}
}

type logSink struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logSink) Debugf(f string, a ...any) {
	l.mu.Lock()
	fmt.Fprintf(&l.b, f+"\n", a...)
	l.mu.Unlock()
}

func (l *logSink) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

type node struct {
	srv      *Server
	addr     string
	served   atomic.Int32
	logs     logSink
	power    chan string
	logDir   string
	kubeconf string
}

func startNode(t *testing.T, c *cluster, role string, checks ...func(context.Context) Check) *node {
	t.Helper()
	n := &node{power: make(chan string, 2), logDir: t.TempDir()}
	n.kubeconf = filepath.Join(n.logDir, "admin.conf")
	srv, err := Listen("127.0.0.1:0", Options{
		CA: c.ca, Issuer: c.issuer, Hostname: "node1", Addresses: []string{"10.0.2.15/24"},
		Version: func() Version {
			n.served.Add(1)
			return Version{Version: "0.1.0", Kernel: "6.1.0", Arch: "amd64", Hostname: "node1", Role: role}
		},
		Checks: checks,
		Services: func() []supervisor.Info {
			return []supervisor.Info{{Name: "containerd", State: supervisor.Healthy, PID: 42}}
		},
		LogDir:     n.logDir,
		InitdLog:   filepath.Join(n.logDir, "initd.log"),
		Role:       role,
		Kubeconfig: n.kubeconf,
		Power:      func(a string) { n.power <- a },
		Debugf:     n.logs.Debugf,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	n.srv, n.addr = srv, srv.Addr().String()
	return n
}

func (n *node) client(t *testing.T, cfg *ClientConfig) *Client {
	t.Helper()
	c, err := NewClient(cfg, n.addr)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

// rawGet talks TLS with a hand-made client config, to try what kiln's
// client never would.
func rawGet(addr string, tc *tls.Config) error {
	tr := &http.Transport{TLSClientConfig: tc}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get("https://" + addr + "/v1/version")
	if err != nil {
		return err
	}
	resp.Body.Close()
	return fmt.Errorf("served: %s", resp.Status)
}

func TestMutualTLS(t *testing.T) {
	c := newCluster(t, "one")
	other := newCluster(t, "two")
	n := startNode(t, c, "worker")

	v, err := n.client(t, c.client).Version(ctx(t))
	if err != nil {
		t.Fatalf("a valid client certificate was refused: %v", err)
	}
	if v.Hostname != "node1" || n.served.Load() != 1 {
		t.Fatalf("version %+v, served %d", v, n.served.Load())
	}

	roots := x509.NewCertPool()
	roots.AddCert(c.ca)
	// No client certificate: the handshake fails, nothing is served.
	err = rawGet(n.addr, &tls.Config{RootCAs: roots})
	if err == nil || !strings.Contains(err.Error(), "certificate required") {
		t.Errorf("without a client certificate: %v", err)
	}
	// A client certificate of another cluster's node-API CA.
	foreign, _ := tls.X509KeyPair([]byte(other.client.Cert), []byte(other.client.Key))
	err = rawGet(n.addr, &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{foreign}})
	if err == nil || !strings.Contains(err.Error(), "tls:") {
		t.Errorf("with another cluster's client certificate: %v", err)
	}
	// A client certificate made with the server issuer (which every node
	// holds), sent with the issuer as intermediate.
	k, _ := pki.NewKey(pki.Ed25519)
	forged, err := pki.Issue(c.issuer, k.Public(), pki.Template{CommonName: "forged", ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	err = rawGet(n.addr, &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{{Certificate: [][]byte{forged.Raw, c.issuer.Cert.Raw}, PrivateKey: k}}})
	if err == nil || !strings.Contains(err.Error(), "tls:") {
		t.Errorf("with a client certificate from the server issuer: %v", err)
	}
	if got := n.served.Load(); got != 1 {
		t.Errorf("refused clients were served: %d requests reached the handler", got)
	}
	// kiln of another cluster does not trust this node.
	if _, err := n.client(t, other.client).Version(ctx(t)); err == nil || !strings.Contains(err.Error(), "certificate signed by unknown authority") {
		t.Errorf("another cluster's kiln: %v", err)
	}
}

func TestServerCert(t *testing.T) {
	c := newCluster(t, "one")
	cert, err := ServerCert(c.issuer, "node1", []string{"10.0.2.15/24", "fd00::15/64", "127.0.0.1/8"})
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(c.ca)
	inter := x509.NewCertPool()
	inter.AddCert(c.issuer.Cert)
	for _, name := range []string{"node1", "localhost", "10.0.2.15", "fd00::15", "127.0.0.1", "::1"} {
		if _, err := cert.Leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: roots, Intermediates: inter}); err != nil {
			t.Errorf("server certificate for %s: %v", name, err)
		}
	}
	if _, err := cert.Leaf.Verify(x509.VerifyOptions{DNSName: "10.0.2.16", Roots: roots, Intermediates: inter}); err == nil {
		t.Error("server certificate valid for an address the node does not have")
	}
	if !cert.Leaf.NotAfter.Equal(c.issuer.Cert.NotAfter) || !cert.Leaf.NotBefore.Equal(c.issuer.Cert.NotBefore) {
		t.Errorf("validity %v..%v, issuer's %v..%v", cert.Leaf.NotBefore, cert.Leaf.NotAfter, c.issuer.Cert.NotBefore, c.issuer.Cert.NotAfter)
	}
}

func TestHealthAndServices(t *testing.T) {
	c := newCluster(t, "one")
	okCheck := func(context.Context) Check { return Check{Name: "boot", OK: true, Detail: "phases: seed 1ms"} }
	bad := func(context.Context) Check {
		return Check{Name: "machine-config", Errors: []string{`machine config: spec.role: "master" is not one of init, control-plane, worker (line 4)`}}
	}
	h, err := startNode(t, c, "worker", okCheck).client(t, c.client).Health(ctx(t))
	if err != nil || !h.Healthy || len(h.Checks) != 1 {
		t.Errorf("healthy node: %+v %v", h, err)
	}
	n := startNode(t, c, "worker", okCheck, bad)
	cl := n.client(t, c.client)
	h, err = cl.Health(ctx(t))
	if err != nil || h.Healthy || len(h.Failed()) != 1 || !strings.Contains(h.Failed()[0], `spec.role: "master"`) {
		t.Errorf("unhealthy node: %+v %v", h, err)
	}
	n.srv.AddCheck(func(context.Context) Check { return Check{Name: "cluster", OK: true} })
	if h, err = cl.Health(ctx(t)); err != nil || len(h.Checks) != 3 || h.Checks[2].Name != "cluster" {
		t.Errorf("added check: %+v %v", h, err)
	}
	svcs, err := cl.Services(ctx(t))
	if err != nil || len(svcs) != 1 || svcs[0].Name != "containerd" || svcs[0].State != supervisor.Healthy || svcs[0].PID != 42 {
		t.Errorf("services %+v %v", svcs, err)
	}
}

func TestLogs(t *testing.T) {
	c := newCluster(t, "one")
	n := startNode(t, c, "worker")
	cl := n.client(t, c.client)
	p := filepath.Join(n.logDir, "containerd.log")
	os.WriteFile(p+".2", []byte("one\ntwo\n"), 0o640)
	os.WriteFile(p+".1", []byte("three\n"), 0o640)
	os.WriteFile(p, []byte("four\nfive\n"), 0o640)
	var b bytes.Buffer
	if err := cl.Logs(ctx(t), &b, "containerd", 0, false); err != nil || b.String() != "one\ntwo\nthree\nfour\nfive\n" {
		t.Errorf("whole log %q %v", b.String(), err)
	}
	b.Reset()
	if err := cl.Logs(ctx(t), &b, "containerd", 4, false); err != nil || b.String() != "two\nthree\nfour\nfive\n" {
		t.Errorf("tail 4: %q %v", b.String(), err)
	}
	os.WriteFile(filepath.Join(n.logDir, "initd.log"), []byte("kiln: ready\n"), 0o640)
	b.Reset()
	if err := cl.Logs(ctx(t), &b, "initd", 0, false); err != nil || b.String() != "kiln: ready\n" {
		t.Errorf("initd log %q %v", b.String(), err)
	}
	for _, name := range []string{"kubelet", "..", "../admin.conf"} {
		var e *Error
		if err := cl.Logs(ctx(t), io.Discard, name, 0, false); !errors.As(err, &e) || e.Status != http.StatusNotFound {
			t.Errorf("logs of %q: %v", name, err)
		}
	}
}

// syncWriter lets the test read what a following client has received.
type syncWriter struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}
func (w *syncWriter) String() string { w.mu.Lock(); defer w.mu.Unlock(); return w.b.String() }

func TestLogsFollow(t *testing.T) {
	followPoll = 20 * time.Millisecond
	c := newCluster(t, "one")
	n := startNode(t, c, "worker")
	p := filepath.Join(n.logDir, "containerd.log")
	os.WriteFile(p, []byte("old\n"), 0o640)
	fctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var w syncWriter
	done := make(chan error, 1)
	go func() { done <- n.client(t, c.client).Logs(fctx, &w, "containerd", 0, true) }()
	wait := func(want string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for w.String() != want {
			if time.Now().After(deadline) {
				t.Fatalf("followed %q, want %q", w.String(), want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	wait("old\n")
	f, _ := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("new\n")
	f.Close()
	wait("old\nnew\n")
	// Rotation, as the supervisor does it: rename, start a new file.
	os.Rename(p, p+".1")
	os.WriteFile(p, []byte("after rotation\n"), 0o640)
	wait("old\nnew\nafter rotation\n")
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("follow ended with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("follow did not end with its context")
	}
}

func TestKubeconfig(t *testing.T) {
	c := newCluster(t, "one")
	const secret = "client-key-data: S0VZLVRIQVQtTVVTVC1ORVZFUi1CRS1MT0dHRUQ="
	var e *Error
	w := startNode(t, c, "worker")
	os.WriteFile(w.kubeconf, []byte(secret), 0o600)
	if _, err := w.client(t, c.client).Kubeconfig(ctx(t)); !errors.As(err, &e) || e.Status != http.StatusForbidden || !strings.Contains(err.Error(), "control-plane nodes only; this node's role is worker") {
		t.Errorf("worker: %v", err)
	}
	cp := startNode(t, c, "control-plane")
	cl := cp.client(t, c.client)
	if _, err := cl.Kubeconfig(ctx(t)); !errors.As(err, &e) || e.Status != http.StatusServiceUnavailable || !strings.Contains(err.Error(), "not available yet") {
		t.Errorf("before the bootstrap: %v", err)
	}
	os.WriteFile(cp.kubeconf, []byte(secret), 0o600)
	got, err := cl.Kubeconfig(ctx(t))
	if err != nil || string(got) != secret {
		t.Errorf("kubeconfig %q %v", got, err)
	}
	if l := cp.logs.String(); strings.Contains(l, "S0VZ") || !strings.Contains(l, "GET /v1/kubeconfig") {
		t.Errorf("server log (must show the request, never the content):\n%s", l)
	}
}

func TestPower(t *testing.T) {
	powerDelay = 0
	c := newCluster(t, "one")
	n := startNode(t, c, "worker")
	cl := n.client(t, c.client)
	for _, a := range []string{Reboot, Shutdown} {
		if err := cl.Power(ctx(t), a); err != nil {
			t.Fatal(err)
		}
		select {
		case got := <-n.power:
			if got != a {
				t.Errorf("asked %s, node got %s", a, got)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s never reached the node", a)
		}
	}
}

func TestClientConfigErrors(t *testing.T) {
	_, err := ParseClientConfig("kilnconfig", []byte("apiVersion: kiln.dev/v1alpha1\nkind: KilnConfig\ncluster: x\nendpoint: [a]\nca: nope\n"))
	for _, want := range []string{"kilnconfig: endpoint: unknown field (line 4)", "kilnconfig: ca: no PEM block (line 5)", "kilnconfig: cert: cert: no PEM block"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if Address("10.0.0.1") != "10.0.0.1:50000" || Address("10.0.0.1:123") != "10.0.0.1:123" || Address("fd00::1") != "[fd00::1]:50000" {
		t.Error("Address")
	}
}
