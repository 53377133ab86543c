package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"
)

// serve answers HTTP on addr until ctx ends (SIGTERM, SIGINT), then drains
// the open requests and returns nil: a stop is a clean exit.
func serve(ctx context.Context, addr string, stderr io.Writer) error {
	host, err := os.Hostname()
	if err != nil {
		return fmt.Errorf("serve: hostname: %w", err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	fmt.Fprintf(stderr, "kiln-probe: serving on %s as %s\n", ln.Addr(), host)
	return serveOn(ctx, ln, host, stderr)
}

// serveOn serves on ln, which it closes.
func serveOn(ctx context.Context, ln net.Listener, host string, stderr io.Writer) error {
	srv := &http.Server{Handler: handler(host), ReadHeaderTimeout: 10 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	// Kubernetes waits terminationGracePeriodSeconds (30 s by default)
	// before SIGKILL; in-flight requests get a few seconds of that.
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := srv.Shutdown(sctx)
	if e := <-done; !errors.Is(e, http.ErrServerClosed) {
		err = errors.Join(err, e)
	}
	if err != nil {
		return fmt.Errorf("serve: shutting down: %w", err)
	}
	fmt.Fprintf(stderr, "kiln-probe: stopped (%v)\n", context.Cause(ctx))
	return nil
}

// handler: GET / names the host (the pod) that answered, GET /healthz is
// for probes.
func handler(host string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "kiln-probe "+host+"\n")
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok\n")
	})
	return mux
}
