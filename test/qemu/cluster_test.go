package qemu_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kilnproject/kiln/qemu"
)

// The first cluster: the default image boots from a disk with an init
// machine config from `kiln gen config` in a NoCloud seed and forms a
// one-node Kubernetes cluster by itself (containerd, the baked images,
// kubeadm init in kiln-bootstrap, the kubelet under initd). The host then
// checks it the way a user would: `kiln kubeconfig`, and the image's own
// kubectl through the forwarded API port.
//
// Under TCG the control plane takes many minutes: the test runs only with
// KILN_E2E=1 (make e2e).

const apiPort = 6443

// clusterUpRe is initd's console line once the node is Ready.
var (
	clusterUpRe  = regexp.MustCompile(`kiln: cluster: up: .*|kiln: ERROR: cluster: .*`)
	clusterSecRe = regexp.MustCompile(`([0-9.]+)s after power-on`)
)

func TestClusterInit(t *testing.T) {
	if os.Getenv("KILN_E2E") == "" {
		t.Skip("forms a Kubernetes cluster under TCG (20+ minutes): run with KILN_E2E=1 (make e2e)")
	}
	qcow2 := defaultImage(t, "amd64", "qcow2")
	kubectl := filepath.Join(extractSystem(t, defaultISO(t, "amd64")), "usr/bin/kubectl")
	dir := genCluster(t, "e2e")
	initCfg, err := os.ReadFile(filepath.Join(dir, "init.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	userData := filepath.Join(t.TempDir(), "user-data")
	if err := os.WriteFile(userData, initCfg, 0o600); err != nil {
		t.Fatal(err)
	}
	seed := kilnSeed(t, "--kind", "nocloud", "--hostname", "cp1", userData)

	disk := filepath.Join(t.TempDir(), "disk.qcow2")
	runTool(t, "qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", qcow2, disk, "16G")
	m := amd64Machine(t, disk, "qcow2", seed)
	m.MemoryMiB, m.CPUs = 4096, 2
	nodePort, kubePort := freePort(t), freePort(t)
	m.Forwards = []qemu.Forward{{Host: nodePort, Guest: nodeAPIPort}, {Host: kubePort, Guest: apiPort}}
	node := "127.0.0.1:" + strconv.Itoa(nodePort)

	start := time.Now()
	vm, line := bootKept(t, m)
	wantReady(t, line, "cp1", "10.0.2.15/24")
	readyAt := vm.Elapsed()
	// The console is quiet for minutes while images import and kubeadm
	// runs: that is not a stuck machine here.
	vm.SilenceLimit = 0
	// Progress while the control plane comes up: the cluster phase's
	// console lines, and the last line of kiln-bootstrap's log.
	stop, stopped := make(chan struct{}), make(chan struct{})
	defer func() { close(stop); <-stopped }()
	go func() {
		defer close(stopped)
		seen, last := 0, ""
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Second):
			}
			lines := vm.Lines()
			for _, l := range lines[min(seen, len(lines)):] {
				if strings.Contains(l, "cluster") || strings.Contains(l, "service ") || strings.Contains(l, "ERROR") {
					t.Logf("%6.0fs %s", time.Since(start).Seconds(), strings.TrimSpace(l))
				}
			}
			seen = len(lines)
			if i%6 == 5 {
				if out, err := kilnNode(t, filepath.Join(dir, "kilnconfig"), node, "logs", "bootstrap", "--tail", "1"); err == nil && out != last {
					t.Logf("%6.0fs bootstrap: %s", time.Since(start).Seconds(), strings.TrimSpace(out))
					last = out
				}
			}
		}
	}()
	up, err := vm.WaitFor(context.Background(), clusterUpRe, 30*time.Minute)
	if err != nil {
		logs(t, dir, node)
		t.Fatalf("no cluster line: %v", err)
	}
	upAt := vm.Elapsed()
	if strings.Contains(up, "ERROR") {
		logs(t, dir, node)
		t.Fatalf("cluster: %s", up)
	}
	t.Logf("%s", strings.TrimSpace(up))

	kubeconfig := filepath.Join(t.TempDir(), "admin.conf")
	if out, err := kilnNode(t, filepath.Join(dir, "kilnconfig"), node, "kubeconfig", "-o", kubeconfig); err != nil {
		t.Fatalf("kiln kubeconfig: %v\n%s", err, out)
	}
	// The kubeconfig names the API at 10.0.2.15:6443, inside the VM: reach
	// it through the forward, checking the certificate against that name.
	kc := func(args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		all := append([]string{"--kubeconfig", kubeconfig, "--server", fmt.Sprintf("https://127.0.0.1:%d", kubePort),
			"--tls-server-name", "10.0.2.15", "--request-timeout", "2m"}, args...)
		out, err := exec.CommandContext(ctx, kubectl, all...).Output()
		if err != nil {
			msg := ""
			if ee, ok := err.(*exec.ExitError); ok {
				msg = string(ee.Stderr)
			}
			t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, msg)
		}
		return string(out)
	}

	var nodes struct {
		Items []struct {
			Metadata struct{ Name string }
			Status   struct {
				Conditions []struct{ Type, Status string }
				NodeInfo   struct{ KubeletVersion string }
			}
		}
	}
	if err := json.Unmarshal([]byte(kc("get", "nodes", "-o", "json")), &nodes); err != nil {
		t.Fatal(err)
	}
	if len(nodes.Items) != 1 || nodes.Items[0].Metadata.Name != "cp1" {
		t.Fatalf("nodes: %+v, want cp1 alone", nodes.Items)
	}
	n := nodes.Items[0]
	ready := false
	for _, c := range n.Status.Conditions {
		ready = ready || (c.Type == "Ready" && c.Status == "True")
	}
	if !ready || n.Status.NodeInfo.KubeletVersion != "v1.37.2" {
		t.Errorf("node cp1: Ready %v, kubelet %s; want Ready, v1.37.2", ready, n.Status.NodeInfo.KubeletVersion)
	}

	// Every kube-system component runs (CoreDNS and kube-proxy may still
	// be starting when the node turns Ready: give them time).
	want := []string{"etcd-cp1", "kube-apiserver-cp1", "kube-controller-manager-cp1", "kube-scheduler-cp1", "kube-proxy-", "coredns-"}
	var missing []string
	deadline := time.Now().Add(15 * time.Minute)
	for {
		missing = missingPods(t, kc("get", "pods", "-n", "kube-system", "-o", "json"), want)
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Second)
	}
	allRunning := vm.Elapsed()
	if len(missing) > 0 {
		t.Errorf("kube-system pods not running: %v\n%s", missing, kc("get", "pods", "-n", "kube-system", "-o", "wide"))
	}

	// Nothing was pulled: containerd logs every CRI pull ("PullImage"),
	// the kubelet records a "Pulling" event before one.
	ctrLog, err := kilnNode(t, filepath.Join(dir, "kilnconfig"), node, "logs", "containerd")
	if err != nil {
		t.Fatalf("kiln logs containerd: %v", err)
	}
	if strings.Contains(ctrLog, "PullImage") {
		t.Errorf("containerd pulled an image:\n%s", grepLines(ctrLog, "PullImage"))
	}
	if ev := kc("get", "events", "-A", "--field-selector", "reason=Pulling", "-o", "name"); strings.TrimSpace(ev) != "" {
		t.Errorf("the kubelet pulled images: %s", ev)
	}
	imported, _ := kilnNode(t, filepath.Join(dir, "kilnconfig"), node, "logs", "images")
	t.Logf("ctr images import said: %s", strings.TrimSpace(lastLines(imported, 3)))

	// Power-on -> Ready breakdown, from the console's own clocks.
	sec := func(re *regexp.Regexp, s string) string {
		if m := re.FindStringSubmatch(s); m != nil {
			return m[1] + "s"
		}
		return "?"
	}
	t.Logf("power-on -> kiln ready %s (%s); -> node Ready %s (%s); wall clock: ready %.0fs, cluster up %.0fs, all kube-system pods running %.0fs",
		sec(readyRe, line), strings.TrimSpace(line), sec(clusterSecRe, up), strings.TrimSpace(up),
		readyAt.Seconds(), upAt.Seconds(), allRunning.Seconds())
}

// missingPods returns the wanted pod name prefixes with no Running and
// Ready pod in a `kubectl get pods -o json` listing.
func missingPods(t *testing.T, listing string, want []string) []string {
	t.Helper()
	var pods struct {
		Items []struct {
			Metadata struct{ Name string }
			Status   struct {
				Phase      string
				Conditions []struct{ Type, Status string }
			}
		}
	}
	if err := json.Unmarshal([]byte(listing), &pods); err != nil {
		t.Fatal(err)
	}
	var missing []string
	for _, w := range want {
		ok := false
		for _, p := range pods.Items {
			if !strings.HasPrefix(p.Metadata.Name, w) || p.Status.Phase != "Running" {
				continue
			}
			for _, c := range p.Status.Conditions {
				ok = ok || (c.Type == "Ready" && c.Status == "True")
			}
		}
		if !ok {
			missing = append(missing, w)
		}
	}
	return missing
}

// logs prints the tails of the cluster services' logs (for a failure).
func logs(t *testing.T, dir, node string) {
	t.Helper()
	for _, svc := range []string{"bootstrap", "kubelet", "containerd", "images"} {
		out, err := kilnNode(t, filepath.Join(dir, "kilnconfig"), node, "logs", svc, "--tail", "60")
		t.Logf("kiln logs %s (%v):\n%s", svc, err, out)
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
