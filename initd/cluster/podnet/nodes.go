package podnet

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"sort"
)

// Node is what the pod network needs of a Kubernetes Node: its name, the
// pod ranges the controller manager gave it (spec.podCIDRs) and its
// InternalIP addresses (status.addresses).
type Node struct {
	Name     string
	PodCIDRs []netip.Prefix
	IPs      []netip.Addr
}

// apiNode is the JSON of a core/v1 Node, reduced to those fields.
type apiNode struct {
	Metadata struct {
		Name            string `json:"name"`
		ResourceVersion string `json:"resourceVersion"`
	} `json:"metadata"`
	Spec struct {
		PodCIDR  string   `json:"podCIDR"`
		PodCIDRs []string `json:"podCIDRs"`
	} `json:"spec"`
	Status struct {
		Addresses []struct {
			Type    string `json:"type"`
			Address string `json:"address"`
		} `json:"addresses"`
	} `json:"status"`
}

func (a apiNode) node() Node {
	n := Node{Name: a.Metadata.Name}
	cidrs := a.Spec.PodCIDRs
	if len(cidrs) == 0 && a.Spec.PodCIDR != "" {
		cidrs = []string{a.Spec.PodCIDR}
	}
	for _, c := range cidrs {
		if p, err := netip.ParsePrefix(c); err == nil {
			n.PodCIDRs = append(n.PodCIDRs, p.Masked())
		}
	}
	for _, ad := range a.Status.Addresses {
		if ad.Type != "InternalIP" {
			continue
		}
		if ip, err := netip.ParseAddr(ad.Address); err == nil {
			n.IPs = append(n.IPs, ip)
		}
	}
	return n
}

// list returns every node, sorted by name, and the list's resourceVersion.
func (c *apiClient) list(ctx context.Context) ([]Node, string, error) {
	var l struct {
		Metadata struct {
			ResourceVersion string `json:"resourceVersion"`
		} `json:"metadata"`
		Items []apiNode `json:"items"`
	}
	if err := c.get(ctx, "/api/v1/nodes", nil, &l); err != nil {
		return nil, "", err
	}
	nodes := make([]Node, 0, len(l.Items))
	for _, it := range l.Items {
		nodes = append(nodes, it.node())
	}
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].Name < nodes[j].Name })
	return nodes, l.Metadata.ResourceVersion, nil
}

// getNode reads one node (a kubelet's identity may read its own).
func (c *apiClient) getNode(ctx context.Context, name string) (Node, error) {
	var n apiNode
	if err := c.get(ctx, "/api/v1/nodes/"+url.PathEscape(name), nil, &n); err != nil {
		return Node{}, err
	}
	return n.node(), nil
}

// watch streams node events from resourceVersion rv until the server ends
// the watch (timeoutSeconds), ctx ends or an error; changed is called for
// every ADDED, MODIFIED or DELETED event with the node and whether it was
// deleted. It returns the last resourceVersion seen.
func (c *apiClient) watch(ctx context.Context, rv string, timeoutSeconds int, changed func(n Node, deleted bool)) (string, error) {
	q := url.Values{"watch": {"true"}, "resourceVersion": {rv}, "allowWatchBookmarks": {"true"},
		"timeoutSeconds": {fmt.Sprint(timeoutSeconds)}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.server+"/api/v1/nodes?"+q.Encode(), nil)
	if err != nil {
		return rv, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return rv, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return rv, fmt.Errorf("watch nodes: %s: %s", resp.Status, b)
	}
	dec := json.NewDecoder(resp.Body)
	for {
		var ev struct {
			Type   string          `json:"type"`
			Object json.RawMessage `json:"object"`
		}
		if err := dec.Decode(&ev); err != nil {
			if err == io.EOF {
				return rv, nil
			}
			return rv, err
		}
		if ev.Type == "ERROR" { // e.g. 410 Gone: the caller lists again
			return "", fmt.Errorf("watch nodes: %s", ev.Object)
		}
		var n apiNode
		if err := json.Unmarshal(ev.Object, &n); err != nil {
			return rv, fmt.Errorf("watch nodes: %s event: %w", ev.Type, err)
		}
		if n.Metadata.ResourceVersion != "" {
			rv = n.Metadata.ResourceVersion
		}
		switch ev.Type {
		case "ADDED", "MODIFIED":
			changed(n.node(), false)
		case "DELETED":
			changed(n.node(), true)
		}
	}
}

func (c *apiClient) get(ctx context.Context, path string, q url.Values, into any) error {
	u := c.server + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("GET %s: %s: %s", path, resp.Status, b)
	}
	return json.NewDecoder(resp.Body).Decode(into)
}
