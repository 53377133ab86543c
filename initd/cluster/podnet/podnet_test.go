package podnet

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func TestBridgeConfList(t *testing.T) {
	conf, err := BridgeConfList([]netip.Prefix{netip.MustParsePrefix("10.244.0.0/24"), netip.MustParsePrefix("fd00:10:244::/64")})
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join("testdata", "bridge.conflist")
	if *update {
		os.WriteFile(p, conf, 0o644)
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(conf, want) {
		t.Errorf("bridge.conflist differs (go test -update to accept):\n%s", conf)
	}
}

func node(name, ip string, cidrs ...string) Node {
	n := Node{Name: name, IPs: []netip.Addr{netip.MustParseAddr(ip)}}
	for _, c := range cidrs {
		n.PodCIDRs = append(n.PodCIDRs, netip.MustParsePrefix(c))
	}
	return n
}

func TestRoutes(t *testing.T) {
	nodes := []Node{
		node("cp1", "192.168.76.10", "10.244.0.0/24"),
		node("w1", "192.168.76.11", "10.244.1.0/24", "fd00:10:244:1::/64"), // no IPv6 address: no v6 route
		node("w2", "192.168.76.12"),                                        // no range yet
	}
	got := fmt.Sprint(Routes("cp1", nodes))
	if want := "[10.244.1.0/24 via 192.168.76.11 (node w1)]"; got != want {
		t.Errorf("Routes = %s, want %s", got, want)
	}
}

// inNetns makes a fresh network namespace with a link "lan0" at
// 192.168.76.10/24 (one end of a veth pair) and returns a netlink handle
// for it.
func inNetns(t *testing.T) *netlink.Handle {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create a network namespace")
	}
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	ns, err := netns.New()
	if err != nil {
		runtime.UnlockOSThread()
		t.Skipf("cannot create a network namespace: %v", err)
	}
	netns.Set(orig) // the handle works in ns; this thread goes back
	runtime.UnlockOSThread()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close(); ns.Close(); orig.Close() })
	lan := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "lan0"}, PeerName: "peer0"}
	if err := h.LinkAdd(lan); err != nil {
		t.Fatal(err)
	}
	if peer, err := h.LinkByName("peer0"); err == nil {
		h.LinkSetUp(peer)
	}
	addr, _ := netlink.ParseAddr("192.168.76.10/24")
	if err := h.AddrAdd(lan, addr); err != nil {
		t.Fatal(err)
	}
	if err := h.LinkSetUp(lan); err != nil {
		t.Fatal(err)
	}
	return h
}

// ours lists the routes of RouteProtocol as "dst via gw".
func ours(t *testing.T, h *netlink.Handle) []string {
	t.Helper()
	rs, err := h.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Protocol: RouteProtocol}, netlink.RT_FILTER_PROTOCOL)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range rs {
		out = append(out, fmt.Sprintf("%s via %s", r.Dst, r.Gw))
	}
	return out
}

func TestReconcile(t *testing.T) {
	h := inNetns(t)
	// An operator's own route, which the pod network must leave alone.
	lan, _ := h.LinkByName("lan0")
	_, other, _ := net.ParseCIDR("10.99.0.0/24")
	if err := h.RouteAdd(&netlink.Route{Dst: other, Gw: net.ParseIP("192.168.76.1"), LinkIndex: lan.Attrs().Index}); err != nil {
		t.Fatal(err)
	}
	nodes := []Node{
		node("cp1", "192.168.76.10", "10.244.0.0/24"),
		node("w1", "192.168.76.11", "10.244.1.0/24"),
		node("far", "172.16.0.5", "10.244.2.0/24"), // no route to it at all
	}
	ch, err := Reconcile(h, Routes("cp1", nodes))
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(ours(t, h)); got != "[10.244.1.0/24 via 192.168.76.11]" {
		t.Errorf("routes after the first reconcile: %s", got)
	}
	if len(ch.Added) != 1 || len(ch.Unreachable) != 1 || !strings.Contains(ch.Unreachable[0], "node far") {
		t.Errorf("changes: %+v", ch)
	}
	// Nothing to do the second time.
	if ch, err := Reconcile(h, Routes("cp1", nodes)); err != nil || len(ch.Added)+len(ch.Removed) != 0 {
		t.Errorf("second reconcile: %+v %v", ch, err)
	}
	// w1 moves to another address, then leaves.
	nodes[1] = node("w1", "192.168.76.21", "10.244.1.0/24")
	if _, err := Reconcile(h, Routes("cp1", nodes)); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(ours(t, h)); got != "[10.244.1.0/24 via 192.168.76.21]" {
		t.Errorf("routes after w1 moved: %s", got)
	}
	ch, err = Reconcile(h, Routes("cp1", nodes[:1]))
	if err != nil || len(ch.Removed) != 1 {
		t.Errorf("w1 left: %+v %v", ch, err)
	}
	if got := ours(t, h); len(got) != 0 {
		t.Errorf("routes after w1 left: %v", got)
	}
	if rs, _ := h.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Dst: other}, netlink.RT_FILTER_DST); len(rs) != 1 {
		t.Errorf("the operator's route to %s is gone", other)
	}
}

// fakeAPI is an API server with nodes: it lists them and streams a watch
// whose events the test sends. Clients must present a certificate.
type fakeAPI struct {
	mu        sync.Mutex
	nodes     []apiNode
	forbidden bool // listing Nodes is refused (no RBAC grant yet)
	events    chan string
	srv       *httptest.Server
}

func newFakeAPI(t *testing.T) *fakeAPI {
	f := &fakeAPI{events: make(chan string, 10)}
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(r.TLS.PeerCertificates) == 0 {
			http.Error(w, "no client certificate", http.StatusUnauthorized)
			return
		}
		if name, ok := strings.CutPrefix(r.URL.Path, "/api/v1/nodes/"); ok {
			f.mu.Lock()
			defer f.mu.Unlock()
			for _, n := range f.nodes {
				if n.Metadata.Name == name {
					json.NewEncoder(w).Encode(n)
					return
				}
			}
			http.NotFound(w, r)
			return
		}
		if r.URL.Path != "/api/v1/nodes" {
			http.NotFound(w, r)
			return
		}
		f.mu.Lock()
		forbidden := f.forbidden
		f.mu.Unlock()
		if forbidden {
			http.Error(w, `{"kind":"Status","message":"nodes is forbidden"}`, http.StatusForbidden)
			return
		}
		if r.URL.Query().Get("watch") != "true" {
			f.mu.Lock()
			json.NewEncoder(w).Encode(map[string]any{"metadata": map[string]string{"resourceVersion": "1"}, "items": f.nodes})
			f.mu.Unlock()
			return
		}
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		for {
			select {
			case ev := <-f.events:
				fmt.Fprintln(w, ev)
				w.(http.Flusher).Flush()
			case <-r.Context().Done():
				return
			}
		}
	}))
	f.srv.TLS = &tls.Config{ClientAuth: tls.RequireAnyClientCert}
	f.srv.StartTLS()
	t.Cleanup(f.srv.Close)
	return f
}

func apiNodeJSON(name, ip, cidr string) apiNode {
	var n apiNode
	n.Metadata.Name, n.Metadata.ResourceVersion = name, "2"
	if cidr != "" {
		n.Spec.PodCIDR, n.Spec.PodCIDRs = cidr, []string{cidr}
	}
	n.Status.Addresses = append(n.Status.Addresses, struct {
		Type    string `json:"type"`
		Address string `json:"address"`
	}{"InternalIP", ip})
	return n
}

// kubeconfigFor writes a kubeconfig for the fake server with the
// server's own certificate as the client's (any certificate will do).
func kubeconfigFor(t *testing.T, f *fakeAPI) string {
	cert := f.srv.TLS.Certificates[0]
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.srv.Certificate().Raw})
	keyDER, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	key := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	crt := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]})
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "client.pem"), append(crt, key...), 0o600)
	b64 := base64.StdEncoding.EncodeToString
	kc := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: kubernetes
  cluster:
    server: %s
    certificate-authority-data: %s
contexts:
- name: node@kubernetes
  context: {cluster: kubernetes, user: node}
current-context: node@kubernetes
users:
- name: node
  user:
    client-certificate: %s
    client-key: %s
`, f.srv.URL, b64(ca), filepath.Join(dir, "client.pem"), filepath.Join(dir, "client.pem"))
	p := filepath.Join(dir, "kubelet.conf")
	os.WriteFile(p, []byte(kc), 0o600)
	return p
}

// Run against an API server: the CNI configuration appears with the
// node's range, a route to the other node follows it, and goes when the
// node is deleted.
func TestRun(t *testing.T) {
	h := inNetns(t)
	f := newFakeAPI(t)
	f.nodes = []apiNode{apiNodeJSON("cp1", "192.168.76.10", "10.244.0.0/24")}
	// Until the RBAC grant exists the node may read only its own Node:
	// that is enough for its CNI configuration.
	f.forbidden = true
	kc := kubeconfigFor(t, f)
	conf := filepath.Join(t.TempDir(), "net.d", "10-kiln.conflist")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var logMu sync.Mutex
	var logs []string
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{Kubeconfig: kc, Node: "cp1", ConfFile: conf, Handle: h, Log: func(f string, a ...any) {
			logMu.Lock()
			logs = append(logs, fmt.Sprintf(f, a...))
			logMu.Unlock()
		}})
	}()
	waitFor(t, "the CNI configuration", func() bool {
		data, err := os.ReadFile(conf)
		return err == nil && strings.Contains(string(data), `"subnet": "10.244.0.0/24"`)
	})
	f.mu.Lock()
	f.forbidden = false
	f.mu.Unlock()
	ev := func(typ string, n apiNode) string {
		data, _ := json.Marshal(map[string]any{"type": typ, "object": n})
		return string(data)
	}
	w1 := apiNodeJSON("w1", "192.168.76.11", "10.244.1.0/24")
	f.events <- ev("ADDED", apiNodeJSON("w1", "192.168.76.11", "")) // registered, no range yet
	f.events <- ev("MODIFIED", w1)
	waitFor(t, "the route to w1's pods", func() bool { return fmt.Sprint(ours(t, h)) == "[10.244.1.0/24 via 192.168.76.11]" })
	f.events <- ev("DELETED", w1)
	waitFor(t, "the route to go", func() bool { return len(ours(t, h)) == 0 })
	cancel()
	<-done
	logMu.Lock()
	defer logMu.Unlock()
	all := strings.Join(logs, "\n")
	for _, want := range []string{"pods of node cp1 in 10.244.0.0/24", "403 Forbidden", "route 10.244.1.0/24 via 192.168.76.11 (node w1)", "removed"} {
		if !strings.Contains(all, want) {
			t.Errorf("log lacks %q:\n%s", want, all)
		}
	}
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s after 10s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A node with no default route gets an on-link route for the service
// range from its address; once a default route exists, the pod network's
// route goes away.
func TestServiceRoutes(t *testing.T) {
	h := inNetns(t)
	svc := []netip.Prefix{netip.MustParsePrefix("10.96.0.0/12"), netip.MustParsePrefix("fd00:96::/108")}
	node := netip.MustParseAddr("192.168.76.10")
	want, err := ServiceRoutes(h, svc, node)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(want); got != "[10.96.0.0/12 from 192.168.76.10 (services: no default route)]" {
		t.Fatalf("ServiceRoutes without a default route: %s", got)
	}
	if _, err := Reconcile(h, want); err != nil {
		t.Fatal(err)
	}
	got, err := h.RouteGet(net.ParseIP("10.96.0.1"))
	if err != nil || len(got) == 0 || got[0].Gw != nil || !got[0].Src.Equal(net.ParseIP("192.168.76.10")) {
		t.Fatalf("route to 10.96.0.1: %+v %v", got, err)
	}
	// The operator's default route arrives: no service route is needed.
	lan, _ := h.LinkByName("lan0")
	if err := h.RouteAdd(&netlink.Route{Gw: net.ParseIP("192.168.76.1"), LinkIndex: lan.Attrs().Index}); err != nil {
		t.Fatal(err)
	}
	want, err = ServiceRoutes(h, svc, node)
	if err != nil || len(want) != 0 {
		t.Fatalf("ServiceRoutes with a default route: %v %v", want, err)
	}
	if ch, err := Reconcile(h, want); err != nil || len(ch.Removed) != 1 {
		t.Errorf("reconcile: %+v %v", ch, err)
	}
	if got := ours(t, h); len(got) != 0 {
		t.Errorf("routes left: %v", got)
	}
}
