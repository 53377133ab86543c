package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Retry pacing: a check is repeated until its deadline, each attempt
// bounded so that one hung connection cannot eat the whole budget.
const (
	attemptTimeout = 10 * time.Second
	retryDelay     = time.Second
)

// resolver is Go's own DNS client, which reads /etc/resolv.conf (the
// kubelet's: cluster DNS server, search domains, ndots) and /etc/hosts.
var resolver = &net.Resolver{PreferGo: true}

// retry calls try until it succeeds or timeout passes; the error then
// names the last failure and how many attempts were made.
func retry(ctx context.Context, timeout time.Duration, try func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	var last error
	for n := 1; ; n++ {
		actx, acancel := context.WithTimeout(ctx, attemptTimeout)
		err := try(actx)
		acancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil && last != nil {
			err = last // an attempt cut short by the deadline says less than the one before
		}
		last = err
		select {
		case <-ctx.Done():
			why := fmt.Sprintf("gave up after %d attempt(s) in %s", n, time.Since(start).Round(100*time.Millisecond))
			if c := context.Cause(ctx); c != nil && !errors.Is(c, context.DeadlineExceeded) {
				why = fmt.Sprintf("%s, %v", why, c) // a signal
			}
			return fmt.Errorf("%w (%s)", err, why)
		case <-time.After(retryDelay):
		}
	}
}

// lookup resolves name and prints "name: addr addr ...".
func lookup(ctx context.Context, r *net.Resolver, name string, timeout time.Duration, stdout io.Writer) error {
	var addrs []string
	err := retry(ctx, timeout, func(ctx context.Context) error {
		var err error
		addrs, err = r.LookupHost(ctx, name)
		if err == nil && len(addrs) == 0 {
			err = fmt.Errorf("lookup %s: no addresses", name)
		}
		return err
	})
	if err != nil {
		return err // net.DNSError names the lookup
	}
	fmt.Fprintf(stdout, "%s: %s\n", name, strings.Join(addrs, " "))
	return nil
}

// maxBody bounds what get reads of a response.
const maxBody = 1 << 20

// get fetches rawURL until it answers 200 with a body containing expect,
// and prints that body.
func get(ctx context.Context, rawURL, expect string, timeout time.Duration, stdout io.Writer) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return badUsage("get: %v", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return badUsage("get: URL %q: want http://HOST[:PORT]/PATH", rawURL)
	}
	// A new connection per attempt (a Service may pick another endpoint),
	// and never a proxy from the environment: the check is about the
	// cluster network itself.
	client := &http.Client{Transport: &http.Transport{
		Proxy:             nil,
		DialContext:       (&net.Dialer{Timeout: attemptTimeout}).DialContext,
		DisableKeepAlives: true,
	}}
	var body []byte
	err = retry(ctx, timeout, func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err // *url.Error names the method and URL
		}
		defer resp.Body.Close()
		body, err = io.ReadAll(io.LimitReader(resp.Body, maxBody))
		if err != nil {
			return fmt.Errorf("GET %s: reading the body: %w", u, err)
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s: %s", u, resp.Status, snippet(body))
		}
		if !strings.Contains(string(body), expect) {
			return fmt.Errorf("GET %s: the body %s does not contain %q", u, snippet(body), expect)
		}
		return nil
	})
	if err != nil {
		return err
	}
	_, err = stdout.Write(body)
	return err
}

// snippet quotes the start of a body for an error line.
func snippet(b []byte) string {
	const n = 200
	if len(b) > n {
		return fmt.Sprintf("%q...", b[:n])
	}
	return fmt.Sprintf("%q", b)
}
