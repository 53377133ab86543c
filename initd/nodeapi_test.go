package initd

import (
	"bytes"
	"context"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kilnproject/kiln/initd/bootlog"
	"github.com/kilnproject/kiln/initd/cmdline"
	"github.com/kilnproject/kiln/initd/machineconfig"
	"github.com/kilnproject/kiln/initd/nodeapi"
	"github.com/kilnproject/kiln/initd/nodeconfig"
	"github.com/kilnproject/kiln/initd/power"
	"github.com/kilnproject/kiln/initd/secrets"
)

type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *lockedBuf) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// The seed phase checks the machine config and says what is wrong on the
// console; the node-api phase serves it anyway, and health, the phase
// results and the power actions reach the node API.
func TestNodeAPIPhases(t *testing.T) {
	now := time.Now()
	bundle, err := secrets.Generate("unit", now)
	if err != nil {
		t.Fatal(err)
	}
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	mc := machineconfig.ForRole(machineconfig.RoleWorker, machineconfig.Cluster{ClusterName: "unit", ControlPlaneEndpoint: "10.0.0.10:6443"}, &bundle.Secrets)
	mc.Spec.NodeAPI.Port = port
	mc.Spec.Role = "master"
	data, err := machineconfig.Marshal("", mc)
	if err != nil {
		t.Fatal(err)
	}

	var console lockedBuf
	actions := make(chan power.Action, 1)
	b := &Boot{Log: bootlog.New(&console), actions: actions}
	b.Seed = func(context.Context, cmdline.Cmdline, func(string, ...any)) (*nodeconfig.Result, error) {
		return &nodeconfig.Result{Source: "test", Hostname: "n1", Addresses: []string{"127.0.0.1/8"}, MachineConfig: data}, nil
	}
	phases := b.recorded([]Phase{{"seed", b.seed}, {"node-api", b.startNodeAPI}})
	if err := RunPhases(context.Background(), b.Log, phases); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.api.Close() })
	for _, want := range []string{
		"kiln: ERROR: machine config from test has 1 error(s); the node stays up for repair:",
		`kiln: ERROR: machine config: spec.role: "master" is not one of init, control-plane, worker (line 4)`,
		"kiln: node API: listening on :",
	} {
		if !strings.Contains(console.String(), want) {
			t.Errorf("console lacks %q:\n%s", want, console.String())
		}
	}

	cert, key, err := secrets.IssueClient(bundle, "kiln", now)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &nodeapi.ClientConfig{CA: bundle.Secrets.NodeAPI.CA.Cert, Cert: string(cert), Key: string(key)}
	cl, err := nodeapi.NewClient(cfg, "127.0.0.1:"+itoa(port))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	h, err := cl.Health(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]nodeapi.Check{}
	for _, c := range h.Checks {
		got[c.Name] = c
	}
	if h.Healthy || got["seed"].OK != true || got["machine-config"].OK || got["boot"].OK ||
		!strings.Contains(strings.Join(got["machine-config"].Errors, "\n"), `spec.role: "master"`) ||
		!strings.Contains(got["boot"].Detail, "seed ") || got["boot"].Errors[0] != "boot not finished" {
		t.Errorf("health before ready: %+v", h)
	}
	b.markReady()
	if h, err = cl.Health(ctx); err != nil {
		t.Fatal(err)
	}
	if failed := h.Failed(); len(failed) != 1 || !strings.HasPrefix(failed[0], "machine-config:") {
		t.Errorf("failed checks after ready: %v", failed)
	}
	v, err := cl.Version(ctx)
	if err != nil || v.Role != "" {
		t.Errorf("an invalid config must give no role: %+v %v", v, err)
	}
	if err := cl.Power(ctx, nodeapi.Reboot); err != nil {
		t.Fatal(err)
	}
	select {
	case a := <-actions:
		if a != power.Reboot {
			t.Errorf("action %v", a)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("reboot never reached PID 1's action channel")
	}
}

// No machine config: no node API, and the console says so.
func TestNodeAPIWithoutMachineConfig(t *testing.T) {
	var console lockedBuf
	b := &Boot{Log: bootlog.New(&console)}
	b.Seed = func(context.Context, cmdline.Cmdline, func(string, ...any)) (*nodeconfig.Result, error) {
		return &nodeconfig.Result{Source: "none"}, nil
	}
	if err := RunPhases(context.Background(), b.Log, []Phase{{"seed", b.seed}, {"node-api", b.startNodeAPI}}); err != nil {
		t.Fatal(err)
	}
	if b.api != nil || !strings.Contains(console.String(), "node API: not started: the seed has no machine config") {
		t.Errorf("console:\n%s", console.String())
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
