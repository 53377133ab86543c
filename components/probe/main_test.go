package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestMain lets the test binary stand in for kiln-probe in a child process
// (signals, exit status): KILN_PROBE_AS_MAIN=1 runs main instead.
func TestMain(m *testing.M) {
	if os.Getenv("KILN_PROBE_AS_MAIN") == "1" {
		os.Args = append([]string{"kiln-probe"}, os.Args[1:]...)
		main()
		return
	}
	os.Exit(m.Run())
}

// probe runs one command line in-process.
func probe(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

// oneLine: a failure is reported as exactly one line on stderr.
func oneLine(t *testing.T, args []string, stderr string) {
	t.Helper()
	if !strings.HasPrefix(stderr, "kiln-probe: ") || strings.Count(stderr, "\n") != 1 || !strings.HasSuffix(stderr, "\n") {
		t.Errorf("%q: stderr %q, want one line starting with kiln-probe:", args, stderr)
	}
}

// startServe runs serve on a loopback port until the test ends.
func startServe(t *testing.T) (addr, host string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	host, err = os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serveOn(ctx, ln, host, io.Discard) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return ln.Addr().String(), host
}

func TestServeAndGet(t *testing.T) {
	addr, host := startServe(t)
	args := []string{"get", "http://" + addr + "/", "--expect", "kiln-probe " + host, "--timeout", "10s"}
	code, out, errs := probe(t, args...)
	if code != 0 || out != "kiln-probe "+host+"\n" || errs != "" {
		t.Errorf("%q: exit %d, stdout %q, stderr %q; want 0 and the hostname line", args, code, out, errs)
	}
	// Flags before the URL work too.
	code, out, errs = probe(t, "get", "--timeout", "10s", "http://"+addr+"/healthz")
	if code != 0 || out != "ok\n" {
		t.Errorf("get /healthz: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	// Raw HTTP: what a Kubernetes probe or curl would see.
	resp, err := http.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "kiln-probe "+host+"\n" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Errorf("GET /: %s %q %q", resp.Status, resp.Header.Get("Content-Type"), body)
	}
	for path, want := range map[string]int{"/nothing": 404, "/healthz/x": 404} {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s: %s, want %d", path, resp.Status, want)
		}
	}
	resp, err = http.Post("http://"+addr+"/", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /: %s, want 405", resp.Status)
	}
}

func TestGetFails(t *testing.T) {
	addr, _ := startServe(t)
	closed := freePort(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"get", "http://" + addr + "/nothing", "--timeout", "1500ms"}, "404 Not Found"},
		{[]string{"get", "http://" + addr + "/", "--expect", "kiln-probe someone-else", "--timeout", "1500ms"}, `does not contain "kiln-probe someone-else"`},
		{[]string{"get", "http://" + closed + "/", "--timeout", "1500ms"}, "connection refused"},
	} {
		code, out, errs := probe(t, tc.args...)
		if code != 1 || out != "" || !strings.Contains(errs, tc.want) || !strings.Contains(errs, "gave up after") {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want 1 and %q", tc.args, code, out, errs, tc.want)
		}
		oneLine(t, tc.args, errs)
	}
}

// freePort returns a loopback address nothing listens on.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestGetRetries: a server that fails twice, then answers.
func TestGetRetries(t *testing.T) {
	var mu sync.Mutex
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls++
		n := calls
		mu.Unlock()
		if n <= 2 {
			http.Error(w, "not yet", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "kiln-probe replica-1\n")
	}))
	defer srv.Close()
	code, out, errs := probe(t, "get", srv.URL, "--expect", "replica-1", "--timeout", "30s")
	mu.Lock()
	defer mu.Unlock()
	if code != 0 || out != "kiln-probe replica-1\n" || calls != 3 {
		t.Errorf("exit %d, stdout %q, stderr %q after %d requests; want success on the third", code, out, errs, calls)
	}
}

// TestGetWaitsForListener: get starts before anything listens.
func TestGetWaitsForListener(t *testing.T) {
	addr := freePort(t)
	type result struct {
		code     int
		out, err string
	}
	res := make(chan result, 1)
	go func() {
		var out, errb bytes.Buffer
		code := run(context.Background(), []string{"get", "http://" + addr + "/healthz", "--timeout", "60s"}, &out, &errb)
		res <- result{code, out.String(), errb.String()}
	}()
	time.Sleep(1500 * time.Millisecond) // a refused attempt or two
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go serveOn(ctx, ln, "h", io.Discard)
	r := <-res
	if r.code != 0 || r.out != "ok\n" {
		t.Errorf("get: exit %d, stdout %q, stderr %q", r.code, r.out, r.err)
	}
}

// noDNS makes the resolver fail every DNS query, so a lookup can only be
// answered from /etc/hosts and the tests send nothing off the machine.
func noDNS(t *testing.T) *bool {
	t.Helper()
	asked := new(bool)
	old := resolver
	resolver = &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, address string) (net.Conn, error) {
		*asked = true
		return nil, errors.New("test: no DNS server")
	}}
	t.Cleanup(func() { resolver = old })
	return asked
}

func TestLookupLocalhost(t *testing.T) {
	noDNS(t)
	for _, args := range [][]string{{"lookup", "localhost"}, {"lookup", "--timeout", "5s", "localhost"}} {
		code, out, errs := probe(t, args...)
		if code != 0 || !regexp.MustCompile(`^localhost: (127\.0\.0\.1|::1)( \S+)*\n$`).MatchString(out) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want localhost: 127.0.0.1 or ::1", args, code, out, errs)
		}
	}
}

func TestLookupFails(t *testing.T) {
	asked := noDNS(t)
	args := []string{"lookup", "nothing.kiln.test.", "--timeout", "2s"}
	code, out, errs := probe(t, args...)
	if code != 1 || out != "" || !strings.Contains(errs, "nothing.kiln.test") || !strings.Contains(errs, "gave up after") {
		t.Errorf("%q: exit %d, stdout %q, stderr %q", args, code, out, errs)
	}
	oneLine(t, args, errs)
	if !*asked {
		t.Error("the resolver never asked a DNS server")
	}
}

// TestLookupRetriesDNS: a DNS server on loopback answers SERVFAIL to the
// first queries (a cluster DNS still starting), then an A record.
func TestLookupRetriesDNS(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	var mu sync.Mutex
	queries := 0
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			mu.Lock()
			queries++
			fail := queries <= 10 // more than one lookup's worth of attempts
			mu.Unlock()
			if reply := dnsReply(buf[:n], fail, net.IPv4(10, 96, 0, 10)); reply != nil {
				pc.WriteTo(reply, from)
			}
		}
	}()
	old := resolver
	defer func() { resolver = old }()
	resolver = &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, address string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", pc.LocalAddr().String())
	}}
	code, out, errs := probe(t, "lookup", "web.kiln.test.", "--timeout", "30s")
	mu.Lock()
	defer mu.Unlock()
	if code != 0 || out != "web.kiln.test.: 10.96.0.10\n" || queries <= 10 {
		t.Errorf("exit %d, stdout %q, stderr %q after %d queries", code, out, errs, queries)
	}
}

// dnsReply answers one query (RFC 1035): SERVFAIL when fail, else an A
// record for an A question and no records for any other type.
func dnsReply(q []byte, fail bool, ip net.IP) []byte {
	if len(q) < 12 || binary.BigEndian.Uint16(q[4:]) != 1 {
		return nil
	}
	end := 12
	for end < len(q) && q[end] != 0 {
		end += int(q[end]) + 1
	}
	end += 5 // root label, type, class
	if end > len(q) {
		return nil
	}
	qtype := binary.BigEndian.Uint16(q[end-4:])
	r := append([]byte(nil), q[:end]...)
	flags := uint16(0x8180) // response, recursion desired and available
	if fail {
		flags |= 2 // SERVFAIL
	}
	binary.BigEndian.PutUint16(r[2:], flags)
	binary.BigEndian.PutUint16(r[6:], 0)  // answers
	binary.BigEndian.PutUint16(r[8:], 0)  // authority
	binary.BigEndian.PutUint16(r[10:], 0) // additional
	if !fail && qtype == 1 {
		binary.BigEndian.PutUint16(r[6:], 1)
		r = append(r, 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4) // name pointer, A, IN, TTL 60, 4 bytes
		r = append(r, ip.To4()...)
	}
	return r
}

func TestBadArgs(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"frob"},
		{"lookup"},
		{"lookup", ""},
		{"lookup", "a", "b"},
		{"lookup", "a", "--timeout", "0s"},
		{"lookup", "a", "--timeout", "soon"},
		{"lookup", "a", "--listen", ":1"},
		{"get"},
		{"get", "not a url"},
		{"get", "ftp://host/"},
		{"get", "http:///path"},
		{"get", "http://h/", "--timeout", "-1s"},
		{"get", "http://h/", "--expect"},
		{"serve", "extra"},
		{"serve", "--bogus"},
		{"version", "x"},
	} {
		code, out, errs := probe(t, args...)
		if code != 2 || out != "" {
			t.Errorf("%q: exit %d, stdout %q, want 2 and nothing", args, code, out)
		}
		oneLine(t, args, errs)
		if !strings.Contains(errs, "usage: kiln-probe") {
			t.Errorf("%q: stderr %q does not show the usage", args, errs)
		}
	}
}

func TestVersion(t *testing.T) {
	for _, arg := range []string{"version", "-v", "--version"} {
		code, out, _ := probe(t, arg)
		if code != 0 || out != "kiln-probe "+version+"\n" {
			t.Errorf("%s: exit %d, stdout %q", arg, code, out)
		}
	}
	if code, out, _ := probe(t, "--help"); code != 0 || !strings.HasPrefix(out, "usage: kiln-probe") {
		t.Errorf("--help: exit %d, stdout %q", code, out)
	}
}

func TestServeAddressInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	args := []string{"serve", "--listen", ln.Addr().String()}
	code, _, errs := probe(t, args...)
	if code != 1 || !strings.Contains(errs, "address already in use") {
		t.Errorf("%q: exit %d, stderr %q", args, code, errs)
	}
	oneLine(t, args, errs)
}

// TestServeStopsOnSignal runs the probe as its own process, the way a
// container runs it, and stops it with SIGTERM and SIGINT.
func TestServeStopsOnSignal(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		cmd := exec.Command(os.Args[0], "serve", "--listen", "127.0.0.1:0")
		cmd.Env = append(os.Environ(), "KILN_PROBE_AS_MAIN=1")
		stderr, err := cmd.StderrPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := bufio.NewScanner(stderr)
		if !lines.Scan() {
			cmd.Process.Kill()
			t.Fatalf("serve printed nothing: %v", cmd.Wait())
		}
		m := regexp.MustCompile(`^kiln-probe: serving on (127\.0\.0\.1:\d+) as `).FindStringSubmatch(lines.Text())
		if m == nil {
			cmd.Process.Kill()
			t.Fatalf("first line %q", lines.Text())
		}
		if code, out, errs := probe(t, "get", "http://"+m[1]+"/", "--expect", "kiln-probe ", "--timeout", "10s"); code != 0 {
			t.Errorf("get from the serving process: exit %d, %q %q", code, out, errs)
		}
		cmd.Process.Signal(sig)
		var rest []string
		done := make(chan error, 1)
		go func() {
			for lines.Scan() {
				rest = append(rest, lines.Text())
			}
			done <- cmd.Wait()
		}()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("after %v: %v, want exit 0 (stderr %q)", sig, err, rest)
			}
			if want := fmt.Sprintf("kiln-probe: stopped (got %v)", sig); len(rest) != 1 || rest[0] != want {
				t.Errorf("after %v: stderr %q, want %q", sig, rest, want)
			}
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			t.Fatalf("serve ignored %v", sig)
		}
	}
}
