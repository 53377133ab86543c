package initd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/kilnproject/kiln/initd/cluster"
	"github.com/kilnproject/kiln/initd/kmod"
	"github.com/kilnproject/kiln/initd/machineconfig"
	"github.com/kilnproject/kiln/initd/nodeapi"
	"github.com/kilnproject/kiln/initd/state"
)

// clusterModules are the module directories the pod network and
// kube-proxy need (bridge, br_netfilter, veth, netfilter, IPVS). The kernel
// cannot load them on demand (no modprobe for request_module), so every
// one the image ships under them is loaded before containerd starts.
var clusterModules = []string{
	"kernel/net/bridge/", "kernel/net/netfilter/", "kernel/net/ipv4/netfilter/", "kernel/net/ipv6/netfilter/",
	"kernel/drivers/net/veth.ko", "kernel/drivers/net/vxlan/", "kernel/drivers/net/vxlan.ko", "kernel/net/sched/",
	"kernel/fs/overlayfs/",
}

// startCluster starts the node's Kubernetes in the background when the
// image carries it (/etc/kiln/cluster.json) and the machine config is
// valid. The boot does not wait: the control plane takes minutes, the
// node API and the console stay up meanwhile, and the outcome is one
// console line ("cluster: up ..." or an ERROR).
func (b *Boot) startCluster(ctx context.Context) error {
	info, err := cluster.ReadInfo(cluster.InfoFile)
	if errors.Is(err, os.ErrNotExist) {
		return nil // an image without Kubernetes
	}
	if err != nil {
		b.logf("ERROR: cluster: %v", err)
		return nil
	}
	switch {
	case b.mc == nil:
		b.logf("cluster: not started: the seed has no machine config")
		return nil
	case b.mcErr != nil:
		b.logf("ERROR: cluster: not started: the machine config is invalid (see above)")
		return nil
	case b.Super == nil:
		b.logf("ERROR: cluster: not started: no supervisor")
		return nil
	}
	host := b.hostname
	if host == "" {
		host, _ = os.Hostname()
	}
	addr, err := cluster.NodeAddress(b.mc.Spec.Cluster.ControlPlaneEndpoint, b.addrs)
	if err != nil {
		b.logf("ERROR: %v", err)
		return nil
	}
	o := cluster.Options{
		Super: b.Super, Spawner: b.Reaper, MC: b.mc, Info: info,
		Node:   cluster.Node{Name: strings.ToLower(host), Address: addr, Info: info},
		Uptime: uptime, Log: b.logf, StateDir: state.Dir,
		OnUp: func() {
			b.nodeState.mu.Lock()
			b.clusterUp = true
			b.nodeState.mu.Unlock()
		},
	}
	if b.api != nil {
		b.api.AddCheck(b.clusterCheck)
		if b.mc.Spec.Role != machineconfig.RoleWorker {
			b.api.AddCheck(validationCheck)
		}
	}
	b.logf("cluster: %s node %s (%s), Kubernetes %s", b.mc.Spec.Role, o.Node.Name, addr, info.Kubernetes)
	go func() {
		b.loadClusterModules()
		if err := cluster.Run(context.Background(), o); err != nil {
			b.nodeState.mu.Lock()
			b.clusterErr = err
			b.nodeState.mu.Unlock()
			b.logf("ERROR: cluster: %v", err)
		}
	}()
	return nil
}

// clusterCheck is the node API's "cluster" health check: the node is
// Ready, or why not yet.
func (b *Boot) clusterCheck(context.Context) nodeapi.Check {
	b.nodeState.mu.Lock()
	defer b.nodeState.mu.Unlock()
	c := nodeapi.Check{Name: "cluster", OK: b.clusterUp && b.clusterErr == nil}
	switch {
	case b.clusterErr != nil:
		c.Errors = errorLines(b.clusterErr)
	case !b.clusterUp:
		c.Errors = []string{"the node is not Ready yet (kiln logs bootstrap)"}
	default:
		c.Detail = fmt.Sprintf("node Ready, %s node", b.mc.Spec.Role)
	}
	return c
}

// validationCheck is the cluster validation's result, on control-plane nodes.
func validationCheck(context.Context) nodeapi.Check {
	c := nodeapi.Check{Name: "validation"}
	v, err := cluster.ReadValidation(cluster.ValidationResult)
	switch {
	case errors.Is(err, os.ErrNotExist):
		c.Errors = []string{"the cluster validation has not finished yet (kiln logs validate)"}
	case err != nil:
		c.Errors = []string{err.Error()}
	default:
		c.OK = v.Passed
		for _, ch := range v.Checks {
			if ch.Passed {
				c.Detail += fmt.Sprintf("%s ok (%s); ", ch.Name, ch.Detail)
			} else {
				c.Errors = append(c.Errors, ch.Name+": "+ch.Detail)
			}
		}
		c.Detail = strings.TrimSuffix(c.Detail, "; ")
	}
	return c
}

// loadClusterModules loads the clusterModules the image ships.
func (b *Boot) loadClusterModules() {
	start := time.Now()
	l, err := kmod.Open(filepath.Join("/lib/modules", kernelRelease()))
	if err != nil {
		b.logf("cluster: modules: %v", err)
		return
	}
	l.Log = b.Log.Debugf
	l.Options = moduleOptions()
	if f, err := os.Open("/proc/modules"); err == nil {
		names, _ := kmod.ReadProcModules(f)
		f.Close()
		l.MarkLoaded(names)
	}
	var names []string
	for name, m := range l.Deps {
		for _, p := range clusterModules {
			if strings.HasPrefix(m.Path, p) {
				names = append(names, name)
				break
			}
		}
	}
	sort.Strings(names)
	n := 0
	for _, name := range names {
		if err := l.Load(name); err != nil {
			b.logf("cluster: module %s: %v", name, err)
			continue
		}
		n++
	}
	b.logf("cluster: %d of %d network modules loaded in %s", n, len(names), Millis(time.Since(start)))
}
