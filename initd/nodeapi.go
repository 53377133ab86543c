package initd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/kilnproject/kiln/initd/machineconfig"
	"github.com/kilnproject/kiln/initd/nodeapi"
	"github.com/kilnproject/kiln/initd/nodeconfig"
	"github.com/kilnproject/kiln/initd/power"
	"github.com/kilnproject/kiln/initd/supervisor"
)

// AdminKubeconfig is where kubeadm writes the admin kubeconfig; the node
// API serves it to kiln and nobody ever prints it.
const AdminKubeconfig = "/etc/kubernetes/admin.conf"

// nodeState is what the node API reports: the machine config and how it
// checked out, and the result of every boot phase.
type nodeState struct {
	mu         sync.Mutex
	phases     []phaseResult
	ready      bool
	seedErr    error
	seedSource string

	mcSource string // where the machine config came from, "" = none
	mc       *machineconfig.MachineConfig
	mcErr    error
	api      *nodeapi.Server

	clusterUp  bool  // the node is Ready
	clusterErr error // the cluster phase failed
}

type phaseResult struct {
	name string
	took time.Duration
	err  error
}

// recorded wraps phases so their results are kept for the health report.
func (b *Boot) recorded(ps []Phase) []Phase {
	out := make([]Phase, len(ps))
	for i, p := range ps {
		out[i] = Phase{p.Name, func(ctx context.Context) error {
			start := time.Now()
			err := p.Run(ctx)
			b.nodeState.mu.Lock()
			b.phases = append(b.phases, phaseResult{p.Name, time.Since(start), err})
			b.nodeState.mu.Unlock()
			return err
		}}
	}
	return out
}

func (b *Boot) markReady() {
	b.nodeState.mu.Lock()
	b.ready = true
	b.nodeState.mu.Unlock()
}

// loadMachineConfig parses and checks the seed's machine config and says
// on the console what is wrong with it, one line per field. A bad config
// never stops the boot.
func (b *Boot) loadMachineConfig(r *nodeconfig.Result) {
	if len(r.MachineConfig) == 0 {
		return
	}
	b.mcSource = r.Source
	mc, err := machineconfig.Parse("machine config", r.MachineConfig)
	if mc != nil && filepath.IsAbs(mc.Spec.SecretsFile) {
		if ferr := mc.LoadSecretsFile(os.ReadFile); ferr != nil {
			err = errors.Join(err, ferr)
		}
	}
	b.mc, b.mcErr = mc, err
	if err != nil {
		lines := errorLines(err)
		b.logf("ERROR: machine config from %s has %d error(s); the node stays up for repair:", r.Source, len(lines))
		for _, l := range lines {
			b.logf("ERROR: %s", l)
		}
		return
	}
	b.logf("machine config: role %s, cluster %s, endpoint %s", mc.Spec.Role, mc.Spec.Cluster.ClusterName, mc.Spec.Cluster.ControlPlaneEndpoint)
}

// errorLines splits an error into its lines (strictyaml.Errors has one per field).
func errorLines(err error) []string {
	if err == nil {
		return nil
	}
	var out []string
	for _, l := range strings.Split(err.Error(), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// startNodeAPI starts the node API when the machine config's node-API
// part is usable (the CA, the issuer and the port), even if other parts
// are wrong: that is how `kiln health` reports them. Without a machine
// config, or with an unusable node-API part, there is no node API; the
// console says why, and the node is repaired by a new seed and a reboot.
func (b *Boot) startNodeAPI(ctx context.Context) error {
	if b.mcSource == "" {
		b.logf("node API: not started: the seed has no machine config")
		return nil
	}
	if b.mc == nil {
		b.logf("ERROR: node API: not started: the machine config could not be read")
		return nil
	}
	ca, issuer, err := b.mc.Spec.Secrets.NodeAPIMaterial()
	if err != nil {
		for _, l := range errorLines(err) {
			b.logf("ERROR: node API: not started: %s", l)
		}
		return nil
	}
	port := b.mc.Spec.NodeAPI.Port
	if port < 1 || port > 65535 {
		b.logf("ERROR: node API: not started: spec.nodeAPI.port %d is not a TCP port", port)
		return nil
	}
	role := ""
	if b.mcErr == nil {
		role = b.mc.Spec.Role // an invalid config gets no kubeconfig
	}
	host := b.hostname
	if host == "" {
		host, _ = os.Hostname()
	}
	srv, err := nodeapi.Listen(fmt.Sprintf(":%d", port), nodeapi.Options{
		CA: ca, Issuer: issuer, Hostname: host, Addresses: b.addrs,
		Version:    func() nodeapi.Version { return b.version(role) },
		Checks:     []func(context.Context) nodeapi.Check{b.bootCheck, b.seedCheck, b.machineConfigCheck},
		Services:   b.services,
		LogDir:     ServiceLogDir,
		InitdLog:   LogFile,
		Role:       role,
		Kubeconfig: AdminKubeconfig,
		Power:      b.requestPower,
		Debugf:     b.Log.Debugf,
	})
	if err != nil {
		b.logf("ERROR: node API: not started: %v", err)
		return nil
	}
	b.api = srv
	b.logf("node API: listening on :%d (mutual TLS; certificate for %s %s)", port, host, strings.Join(b.addrs, ","))
	return nil
}

func (b *Boot) services() []supervisor.Info {
	if b.Super == nil {
		return nil
	}
	return b.Super.List()
}

func (b *Boot) requestPower(action string) {
	a := power.Poweroff
	if action == nodeapi.Reboot {
		a = power.Reboot
	}
	b.logf("node API: %s requested", a)
	if b.actions != nil {
		b.actions <- a
	}
}

func (b *Boot) version(role string) nodeapi.Version {
	v := nodeapi.Version{Kernel: kernelRelease(), Arch: runtime.GOARCH, Role: role}
	v.Hostname, _ = os.Hostname()
	if data, err := os.ReadFile("/etc/os-release"); err == nil {
		for _, l := range strings.Split(string(data), "\n") {
			k, val, _ := strings.Cut(l, "=")
			val = strings.Trim(val, `"`)
			switch k {
			case "VERSION_ID":
				v.Version = val
			case "PRETTY_NAME":
				v.OS = val
			}
		}
	}
	return v
}

func (b *Boot) bootCheck(context.Context) nodeapi.Check {
	b.nodeState.mu.Lock()
	defer b.nodeState.mu.Unlock()
	c := nodeapi.Check{Name: "boot", OK: b.ready}
	var done []string
	for _, p := range b.phases {
		if p.err != nil {
			c.OK = false
			c.Errors = append(c.Errors, fmt.Sprintf("phase %s: %v", p.name, p.err))
		}
		done = append(done, p.name+" "+Millis(p.took))
	}
	c.Detail = "phases: " + strings.Join(done, ", ")
	if !b.ready && len(c.Errors) == 0 {
		c.Errors = append(c.Errors, "boot not finished")
	}
	return c
}

func (b *Boot) seedCheck(context.Context) nodeapi.Check {
	c := nodeapi.Check{Name: "seed", OK: b.seedErr == nil, Detail: "source " + b.seedSource}
	c.Errors = errorLines(b.seedErr)
	return c
}

func (b *Boot) machineConfigCheck(context.Context) nodeapi.Check {
	c := nodeapi.Check{Name: "machine-config", OK: b.mcErr == nil}
	if b.mc != nil {
		c.Detail = fmt.Sprintf("role %s, cluster %s", b.mc.Spec.Role, b.mc.Spec.Cluster.ClusterName)
	}
	c.Errors = errorLines(b.mcErr)
	return c
}
