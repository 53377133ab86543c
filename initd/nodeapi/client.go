package nodeapi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/kilnproject/kiln/initd/supervisor"
)

// Client talks to one node's API.
type Client struct {
	base string
	http *http.Client
}

// NewClient returns a client for node (host[:port]; the default port is
// 50000) with the credentials of cfg.
func NewClient(cfg *ClientConfig, node string) (*Client, error) {
	tc, err := cfg.TLS()
	if err != nil {
		return nil, err
	}
	tr := &http.Transport{TLSClientConfig: tc, TLSHandshakeTimeout: 30 * time.Second, Proxy: nil,
		ResponseHeaderTimeout: 60 * time.Second, DisableCompression: true}
	return &Client{base: "https://" + Address(node), http: &http.Client{Transport: tr}}, nil
}

// Error is an error the node reported.
type Error struct {
	Status  int
	Message string
}

func (e *Error) Error() string { return e.Message }

func (c *Client) do(ctx context.Context, method, path string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		var e apiError
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		if json.Unmarshal(b, &e) != nil || e.Error == "" {
			e.Error = fmt.Sprintf("%s %s: %s", method, path, resp.Status)
		}
		return nil, &Error{Status: resp.StatusCode, Message: e.Error}
	}
	return resp, nil
}

func (c *Client) getJSON(ctx context.Context, path string, v any) error {
	resp, err := c.do(ctx, http.MethodGet, path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	return nil
}

// Version returns the node's version.
func (c *Client) Version(ctx context.Context) (*Version, error) {
	var v Version
	return &v, c.getJSON(ctx, "/v1/version", &v)
}

// Health returns the node's health report.
func (c *Client) Health(ctx context.Context) (*Health, error) {
	var h Health
	return &h, c.getJSON(ctx, "/v1/health", &h)
}

// Services returns the supervisor's services.
func (c *Client) Services(ctx context.Context) ([]supervisor.Info, error) {
	var l []supervisor.Info
	return l, c.getJSON(ctx, "/v1/services", &l)
}

// Logs copies a service's log to w (the last tail lines when tail > 0);
// with follow it keeps copying until ctx ends.
func (c *Client) Logs(ctx context.Context, w io.Writer, service string, tail int, follow bool) error {
	q := url.Values{}
	if tail > 0 {
		q.Set("tail", strconv.Itoa(tail))
	}
	if follow {
		q.Set("follow", "true")
	}
	p := "/v1/logs/" + url.PathEscape(service)
	if len(q) > 0 {
		p += "?" + q.Encode()
	}
	resp, err := c.do(ctx, http.MethodGet, p)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = io.Copy(w, resp.Body)
	if ctx.Err() != nil {
		return nil // following ended by the caller
	}
	return err
}

// Kubeconfig returns the admin kubeconfig of a control-plane node.
func (c *Client) Kubeconfig(ctx context.Context) ([]byte, error) {
	resp, err := c.do(ctx, http.MethodGet, "/v1/kubeconfig")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return io.ReadAll(io.LimitReader(resp.Body, 1<<20))
}

// Power asks the node to reboot or power off (Reboot, Shutdown).
func (c *Client) Power(ctx context.Context, action string) error {
	path := "/v1/reboot"
	if action == Shutdown {
		path = "/v1/shutdown"
	}
	resp, err := c.do(ctx, http.MethodPost, path)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// Failed lists the failed checks of a health report, one line each.
func (h *Health) Failed() []string {
	var out []string
	for _, c := range h.Checks {
		if !c.OK {
			out = append(out, c.Name+": "+strings.Join(c.Errors, "; "))
		}
	}
	return out
}
