// Package nodeapi is the node's API: HTTPS with JSON bodies and mutual
// TLS. The node's server certificate is issued at boot by the node-API
// issuer from the machine config; every client must present a certificate
// signed by the node-API CA itself, or the TLS handshake fails and nothing
// is served. The client half (Client, ClientConfig) is what `kiln status`,
// `kiln health`, `kiln logs` and the other verbs use.
package nodeapi

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kilnproject/kiln/initd/pki"
	"github.com/kilnproject/kiln/initd/supervisor"
)

// Version is GET /v1/version.
type Version struct {
	Version  string `json:"version"` // the image's VERSION_ID
	OS       string `json:"os"`      // PRETTY_NAME
	Kernel   string `json:"kernel"`
	Arch     string `json:"arch"`
	Hostname string `json:"hostname"`
	Role     string `json:"role,omitempty"`
}

// Check is one line of the health report.
type Check struct {
	Name   string   `json:"name"`
	OK     bool     `json:"ok"`
	Detail string   `json:"detail,omitempty"`
	Errors []string `json:"errors,omitempty"`
}

// Health is GET /v1/health.
type Health struct {
	Healthy bool    `json:"healthy"`
	Checks  []Check `json:"checks"`
}

// Power actions the API can ask for.
const (
	Reboot   = "reboot"
	Shutdown = "poweroff"
)

// Options configure a Server.
type Options struct {
	CA     *x509.Certificate // client certificates must be signed by it
	Issuer pki.Pair          // signs this node's server certificate
	// Names for the server certificate (besides localhost and loopback):
	// the hostname and the node's addresses (CIDRs or bare IPs).
	Hostname  string
	Addresses []string

	Version func() Version
	// Checks make the health report; each is called per request. More
	// come later through AddCheck.
	Checks   []func(context.Context) Check
	Services func() []supervisor.Info
	LogDir   string // service NAME logs to LogDir/NAME.log (rotated .1, .2, ...)
	InitdLog string // served as the logs of "initd"
	// Role decides whether the kubeconfig is served (init, control-plane).
	Role       string
	Kubeconfig string // the admin kubeconfig's path
	Power      func(action string)
	Debugf     func(format string, args ...any)
}

// Server is a running node API.
type Server struct {
	o      Options
	ln     net.Listener
	srv    *http.Server
	mu     sync.Mutex
	checks []func(context.Context) Check
}

// AddCheck adds a check to the health report (the cluster validation
// registers itself once the cluster is up).
func (s *Server) AddCheck(c func(context.Context) Check) {
	s.mu.Lock()
	s.checks = append(s.checks, c)
	s.mu.Unlock()
}

// ServerCert issues this node's certificate: an Ed25519 key, names from
// the hostname and addresses plus localhost, 127.0.0.1 and ::1 (for
// clients on the node and through port forwards). It is valid as long as
// its issuer is, so a node whose clock is off still presents a
// certificate a client accepts.
func ServerCert(issuer pki.Pair, hostname string, addresses []string) (tls.Certificate, error) {
	key, err := pki.NewKey(pki.Ed25519)
	if err != nil {
		return tls.Certificate{}, err
	}
	t := pki.Template{CommonName: "kiln node API", DNSNames: []string{"localhost"},
		IPs:         []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		NotBefore:   issuer.Cert.NotBefore, NotAfter: issuer.Cert.NotAfter}
	if hostname != "" && hostname != "localhost" {
		t.CommonName = hostname
		t.DNSNames = append([]string{hostname}, t.DNSNames...)
	}
	for _, a := range addresses {
		ip, err := netip.ParseAddr(a)
		if p, perr := netip.ParsePrefix(a); perr == nil {
			ip, err = p.Addr(), nil
		}
		if err == nil && !ip.IsLoopback() {
			t.IPs = append(t.IPs, net.IP(ip.AsSlice()))
		}
	}
	c, err := pki.Issue(issuer, key.Public(), t)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{c.Raw, issuer.Cert.Raw}, PrivateKey: key, Leaf: c}, nil
}

// TLSConfig is the server side of mutual TLS: a client certificate signed
// directly by the node-API CA is required (the handshake fails without
// one). Certificates through the server issuer are refused twice over:
// the issuer is limited to server certificates, and the chain must be
// client -> CA.
func TLSConfig(ca *x509.Certificate, cert tls.Certificate) *tls.Config {
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
		VerifyConnection: func(cs tls.ConnectionState) error {
			for _, chain := range cs.VerifiedChains {
				if len(chain) == 2 && chain[1].Equal(ca) {
					return nil
				}
			}
			return errors.New("nodeapi: client certificate is not issued by the node-API CA itself")
		},
	}
}

// Listen starts the node API on addr (":50000") and serves it in the
// background until Close.
func Listen(addr string, o Options) (*Server, error) {
	if o.CA == nil || o.Issuer.Cert == nil {
		return nil, errors.New("nodeapi: no node-API CA or issuer")
	}
	if o.Debugf == nil {
		o.Debugf = func(string, ...any) {}
	}
	cert, err := ServerCert(o.Issuer, o.Hostname, o.Addresses)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &Server{o: o, ln: tls.NewListener(ln, TLSConfig(o.CA, cert)), checks: append([]func(context.Context) Check(nil), o.Checks...)}
	s.srv = &http.Server{
		Handler:           s.routes(),
		ReadHeaderTimeout: 30 * time.Second,
		// Handshake failures (no or a foreign client certificate) land
		// here: debug only, a port scan must not flood the console.
		ErrorLog: log.New(debugWriter(o.Debugf), "nodeapi: ", 0),
	}
	go s.srv.Serve(s.ln)
	return s, nil
}

type debugWriter func(string, ...any)

func (d debugWriter) Write(p []byte) (int, error) {
	d("%s", strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// Addr is where the server listens.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Close stops the server.
func (s *Server) Close() error { return s.srv.Close() }

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/version", s.version)
	mux.HandleFunc("GET /v1/health", s.health)
	mux.HandleFunc("GET /v1/services", s.services)
	mux.HandleFunc("GET /v1/logs/{name}", s.logs)
	mux.HandleFunc("GET /v1/kubeconfig", s.kubeconfig)
	mux.HandleFunc("POST /v1/reboot", func(w http.ResponseWriter, r *http.Request) { s.power(w, r, Reboot) })
	mux.HandleFunc("POST /v1/shutdown", func(w http.ResponseWriter, r *http.Request) { s.power(w, r, Shutdown) })
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		who := "?"
		if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
			who = r.TLS.PeerCertificates[0].Subject.CommonName
		}
		s.o.Debugf("nodeapi: %s %s from %s (%s)", r.Method, r.URL.Path, r.RemoteAddr, who)
		mux.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// apiError is every error body.
type apiError struct {
	Error string `json:"error"`
}

func fail(w http.ResponseWriter, code int, format string, args ...any) {
	writeJSON(w, code, apiError{Error: fmt.Sprintf(format, args...)})
}

func (s *Server) version(w http.ResponseWriter, r *http.Request) {
	var v Version
	if s.o.Version != nil {
		v = s.o.Version()
	}
	writeJSON(w, http.StatusOK, v)
}

func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	h := Health{Healthy: true, Checks: []Check{}}
	s.mu.Lock()
	checks := append([]func(context.Context) Check(nil), s.checks...)
	s.mu.Unlock()
	for _, c := range checks {
		ch := c(r.Context())
		h.Healthy = h.Healthy && ch.OK
		h.Checks = append(h.Checks, ch)
	}
	writeJSON(w, http.StatusOK, h)
}

func (s *Server) services(w http.ResponseWriter, r *http.Request) {
	list := []supervisor.Info{}
	if s.o.Services != nil {
		list = append(list, s.o.Services()...)
	}
	writeJSON(w, http.StatusOK, list)
}

// logPath is the log file of a known service ("initd" is initd's own).
func (s *Server) logPath(name string) (string, bool) {
	if name == "initd" && s.o.InitdLog != "" {
		return s.o.InitdLog, true
	}
	if s.o.Services == nil || s.o.LogDir == "" {
		return "", false
	}
	for _, i := range s.o.Services() {
		if i.Name == name {
			return s.o.LogDir + "/" + name + ".log", true
		}
	}
	return "", false
}

func (s *Server) knownServices() []string {
	names := []string{"initd"}
	if s.o.Services != nil {
		for _, i := range s.o.Services() {
			names = append(names, i.Name)
		}
	}
	return names
}

// logs streams a service's log: the rotated files oldest first, then the
// current one (?tail=N: only the last N lines), then, with ?follow=true,
// whatever is appended until the client goes away.
func (s *Server) logs(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	path, ok := s.logPath(name)
	if !ok {
		fail(w, http.StatusNotFound, "no service %q (services: %s)", name, strings.Join(s.knownServices(), ", "))
		return
	}
	q := r.URL.Query()
	tail := 0
	if t := q.Get("tail"); t != "" {
		n, err := strconv.Atoi(t)
		if err != nil || n < 0 {
			fail(w, http.StatusBadRequest, "tail=%q: want a number of lines", t)
			return
		}
		tail = n
	}
	follow := q.Get("follow") == "true" || q.Get("follow") == "1"
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	f, pos, err := writeLog(w, path, tail)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		fail(w, http.StatusInternalServerError, "logs of %s: %v", name, err)
		return
	}
	if !follow {
		if f != nil {
			f.Close()
		}
		return
	}
	followLog(r.Context(), w, path, f, pos)
}

// logFiles lists path's rotated files, oldest first, then path.
func logFiles(path string) []string {
	var out []string
	for i := 9; i >= 1; i-- {
		p := path + "." + strconv.Itoa(i)
		if _, err := os.Stat(p); err == nil {
			out = append(out, p)
		}
	}
	return append(out, path)
}

// writeLog writes the log (or its last tail lines) and returns the current
// file, open, with the offset it was read to.
func writeLog(w io.Writer, path string, tail int) (*os.File, int64, error) {
	var ring []string
	for _, p := range logFiles(path) {
		if p == path {
			break
		}
		data, err := os.ReadFile(p)
		if err != nil {
			continue // rotated away meanwhile
		}
		if tail == 0 {
			w.Write(data)
		} else {
			ring = lastLines(append(ring, splitLines(data)...), tail)
		}
	}
	f, err := os.Open(path)
	if err != nil {
		for _, l := range ring {
			io.WriteString(w, l)
		}
		return nil, 0, err
	}
	data, err := io.ReadAll(f)
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	if tail == 0 {
		w.Write(data)
	} else {
		for _, l := range lastLines(append(ring, splitLines(data)...), tail) {
			io.WriteString(w, l)
		}
	}
	return f, int64(len(data)), nil
}

func splitLines(b []byte) []string {
	if len(b) == 0 {
		return nil
	}
	l := strings.SplitAfter(string(b), "\n")
	if l[len(l)-1] == "" {
		l = l[:len(l)-1]
	}
	return l
}

func lastLines(l []string, n int) []string {
	if len(l) > n {
		return l[len(l)-n:]
	}
	return l
}

// followPoll is how often a followed log is looked at.
var followPoll = 250 * time.Millisecond

// followLog sends what is appended to path until ctx ends; a rotation
// (a new file at path, or a shorter one) starts over at its beginning.
func followLog(ctx context.Context, w http.ResponseWriter, path string, f *os.File, pos int64) {
	rc := http.NewResponseController(w)
	rc.Flush()
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	buf := make([]byte, 32<<10)
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(followPoll):
		}
		st, err := os.Stat(path)
		if err != nil {
			continue
		}
		if f != nil {
			if cur, err := f.Stat(); err != nil || !os.SameFile(cur, st) || st.Size() < pos {
				f.Close()
				f = nil
			}
		}
		if f == nil {
			if f, err = os.Open(path); err != nil {
				f = nil
				continue
			}
			pos = 0
		}
		wrote := false
		for {
			n, err := f.ReadAt(buf, pos)
			if n > 0 {
				if _, werr := w.Write(buf[:n]); werr != nil {
					return
				}
				pos += int64(n)
				wrote = true
			}
			if err != nil {
				break
			}
		}
		if wrote {
			if rc.Flush() != nil {
				return
			}
		}
	}
}

// kubeconfigRoles may serve the admin kubeconfig.
var kubeconfigRoles = []string{"init", "control-plane"}

// kubeconfig serves the admin kubeconfig. Its content is never logged.
func (s *Server) kubeconfig(w http.ResponseWriter, r *http.Request) {
	if !slices.Contains(kubeconfigRoles, s.o.Role) {
		role := s.o.Role
		if role == "" {
			role = "unknown"
		}
		fail(w, http.StatusForbidden, "the admin kubeconfig is served by control-plane nodes only; this node's role is %s", role)
		return
	}
	data, err := os.ReadFile(s.o.Kubeconfig)
	if errors.Is(err, os.ErrNotExist) {
		fail(w, http.StatusServiceUnavailable, "the admin kubeconfig is not available yet: %s does not exist (the cluster bootstrap has not written it)", s.o.Kubeconfig)
		return
	}
	if err != nil {
		fail(w, http.StatusInternalServerError, "kubeconfig: %v", err)
		return
	}
	w.Header().Set("Content-Type", "application/yaml")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(data)
}

// powerDelay lets the response reach the client before the node goes down.
var powerDelay = 200 * time.Millisecond

func (s *Server) power(w http.ResponseWriter, r *http.Request, action string) {
	if s.o.Power == nil {
		fail(w, http.StatusNotImplemented, "%s: not available on this node", action)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"action": action})
	http.NewResponseController(w).Flush()
	go func() {
		time.Sleep(powerDelay)
		s.o.Power(action)
	}()
}
