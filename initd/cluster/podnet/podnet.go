// Package podnet is a kiln node's pod network in host-gateway mode: each
// node's pods sit on a Linux bridge (cni0) in the pod range the controller
// manager gave the node, and every node routes the other nodes' ranges via
// their node addresses, which works when the nodes share a network (like
// flannel's host-gw backend or kube-router). Run keeps both in step with the
// cluster's Node objects: it writes the CNI configuration once the node has
// its range, and adds and removes routes as nodes come and go. It reads
// the API with the kubelet's own credentials (nodes may read Nodes).
// VXLAN overlay and underlay modes will be siblings of this one.
package podnet

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Options tie Run to the node.
type Options struct {
	Kubeconfig string         // the kubelet's kubelet.conf (Run waits for it)
	Node       string         // this node's name
	ConfFile   string         // the CNI configuration to write, e.g. /etc/cni/net.d/10-kiln.conflist
	NodeIP     netip.Addr     // the node's address (source of the service route)
	Services   []netip.Prefix // the cluster's service ranges
	Log        func(format string, args ...any)
	Handle     *netlink.Handle // nil: the current network namespace
	// WatchSeconds bounds each watch request (default 300); after it the
	// node list is read again in full.
	WatchSeconds int
}

// Run keeps the pod network in step until ctx ends.
func Run(ctx context.Context, o Options) error {
	if o.Handle == nil {
		// Routes only: a handle for every family would also open XFRM
		// and netfilter sockets the kernel may not offer.
		h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
		if err != nil {
			return err
		}
		defer h.Close()
		o.Handle = h
	}
	if o.WatchSeconds == 0 {
		o.WatchSeconds = 300
	}
	s := &syncer{o: o, nodes: map[string]Node{}}
	for !exists(o.Kubeconfig) {
		if !sleep(ctx, time.Second) {
			return ctx.Err()
		}
	}
	backoff := time.Second
	for ctx.Err() == nil {
		err := s.cycle(ctx)
		if ctx.Err() != nil {
			break
		}
		if err != nil {
			s.say("pod network: %v (retrying)", err)
			if !sleep(ctx, backoff) {
				break
			}
			backoff = min(2*backoff, 10*time.Second)
			continue
		}
		backoff = time.Second
	}
	return ctx.Err()
}

type syncer struct {
	o     Options
	nodes map[string]Node
	last  string // the last message, said once
}

// cycle lists the nodes, syncs, and follows the watch until it ends. The
// kubeconfig is read again each cycle: the kubelet rotates its certificate.
func (s *syncer) cycle(ctx context.Context) error {
	c, err := loadClient(s.o.Kubeconfig)
	if err != nil {
		return err
	}
	// This node's range first, from its own Node, which the Node
	// authorizer always lets it read: the node's pods need nothing else.
	self, err := c.getNode(ctx, s.o.Node)
	if err != nil {
		return err
	}
	if len(self.PodCIDRs) == 0 {
		return fmt.Errorf("node %s has no pod range yet (spec.podCIDRs)", s.o.Node)
	}
	if err := s.writeConf(self); err != nil {
		return err
	}
	// Listing every Node needs the RBAC grant kiln:pod-network, which the
	// init node applies right after kubeadm init.
	nodes, rv, err := c.list(ctx)
	if err != nil {
		return err
	}
	clear(s.nodes)
	for _, n := range nodes {
		s.nodes[n.Name] = n
	}
	if err := s.sync(); err != nil {
		return err
	}
	var syncErr error
	_, err = c.watch(ctx, rv, s.o.WatchSeconds, func(n Node, deleted bool) {
		if deleted {
			delete(s.nodes, n.Name)
		} else {
			s.nodes[n.Name] = n
		}
		if err := s.sync(); err != nil && syncErr == nil {
			syncErr = err
		}
	})
	if syncErr != nil {
		return syncErr
	}
	return err
}

// sync writes the CNI configuration for this node's range and reconciles
// the routes to the others.
func (s *syncer) sync() error {
	all := make([]Node, 0, len(s.nodes))
	for _, n := range s.nodes {
		all = append(all, n)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Name < all[j].Name })
	if self, ok := s.nodes[s.o.Node]; ok {
		if err := s.writeConf(self); err != nil {
			return err
		}
	}
	want := Routes(s.o.Node, all)
	if s.o.NodeIP.IsValid() {
		svc, err := ServiceRoutes(s.o.Handle, s.o.Services, s.o.NodeIP)
		if err != nil {
			return err
		}
		want = append(want, svc...)
	}
	ch, err := Reconcile(s.o.Handle, want)
	for _, r := range ch.Added {
		s.o.Log("pod network: route %s", r)
	}
	for _, r := range ch.Removed {
		s.o.Log("pod network: route %s removed", r)
	}
	if len(ch.Unreachable) > 0 {
		s.say("pod network: no host-gateway route for %s", strings.Join(ch.Unreachable, "; "))
	}
	return err
}

// writeConf writes the CNI configuration for the node's range, if it has one.
func (s *syncer) writeConf(self Node) error {
	if len(self.PodCIDRs) == 0 {
		return nil
	}
	wrote, err := WriteConf(s.o.ConfFile, self.PodCIDRs)
	if err == nil && wrote {
		s.o.Log("pod network: bridge cni0, pods of node %s in %s", s.o.Node, prefixes(self.PodCIDRs))
	}
	return err
}

// say logs msg unless it is the last thing said (an API server that is not
// up yet is retried every few seconds for minutes on a first boot).
func (s *syncer) say(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if msg != s.last {
		s.o.Log("%s", msg)
		s.last = msg
	}
}

// WriteConf writes the bridge configuration for ranges to path unless the
// file already says exactly that; it reports whether it wrote. The write
// is a rename, so the kubelet and the CNI plugins never read half a file.
func WriteConf(path string, ranges []netip.Prefix) (bool, error) {
	conf, err := BridgeConfList(ranges)
	if err != nil {
		return false, err
	}
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, conf) {
		return false, nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return false, err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, conf, 0o644); err != nil {
		return false, err
	}
	return true, os.Rename(tmp, path)
}

func prefixes(ps []netip.Prefix) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(slices.Compact(s), ",")
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func sleep(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}
