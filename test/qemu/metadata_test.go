package qemu_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/kilnproject/kiln/qemu"
)

const imdsToken = "kiln-test-token"

// metadataService is an EC2-style metadata tree served by the test. With
// requireToken it behaves like IMDSv2 (token PUT first, token on every GET);
// without, the token PUT is refused, as ZStack's service does. Every request
// is recorded as "METHOD PATH token=BOOL".
type metadataService struct {
	tree         map[string]string // path under /latest/ -> body
	requireToken bool

	mu   sync.Mutex
	reqs []string
}

func (s *metadataService) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	tok := r.Header.Get("X-aws-ec2-metadata-token")
	s.mu.Lock()
	s.reqs = append(s.reqs, fmt.Sprintf("%s %s token=%v", r.Method, r.URL.Path, tok == imdsToken))
	s.mu.Unlock()
	io.Copy(io.Discard, r.Body)
	if r.Method == http.MethodPut && r.URL.Path == "/latest/api/token" && s.requireToken {
		if r.Header.Get("X-aws-ec2-metadata-token-ttl-seconds") == "" {
			http.Error(w, "missing TTL", http.StatusBadRequest)
			return
		}
		io.WriteString(w, imdsToken)
		return
	}
	if r.Method != http.MethodGet {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if !strings.HasPrefix(r.URL.Path, "/latest/") {
		http.NotFound(w, r) // e.g. /openstack/latest/meta_data.json: not OpenStack
		return
	}
	if s.requireToken && tok != imdsToken {
		http.Error(w, "IMDSv2 token required", http.StatusUnauthorized)
		return
	}
	body, ok := s.tree[strings.TrimPrefix(r.URL.Path, "/latest/")]
	if !ok {
		http.NotFound(w, r)
		return
	}
	io.WriteString(w, body)
}

func (s *metadataService) requests() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.reqs, "\n")
}

// serveMetadata starts s on loopback and shows it to m's guest only, as
// 169.254.169.254:80 through a QEMU guestfwd. guestfwd addresses must lie
// inside the user network, so the guest gets a link-local one.
func serveMetadata(t *testing.T, m *qemu.Machine, s *metadataService) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: s}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	m.UserNet = "169.254.169.0/24"
	m.GuestForwards = []qemu.GuestForward{{Addr: "169.254.169.254", Port: 80, Target: "tcp:" + ln.Addr().String()}}
}

// wantRequests checks that the service saw each request.
func wantRequests(t *testing.T, s *metadataService, want ...string) {
	t.Helper()
	reqs := s.requests()
	t.Logf("metadata requests:\n%s", reqs)
	for _, w := range want {
		if !strings.Contains(reqs, w) {
			t.Errorf("the metadata service did not see %q", w)
		}
	}
}
