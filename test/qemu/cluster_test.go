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

// The first cluster: the default image boots twice from disks with machine
// configs from `kiln gen config` in NoCloud seeds: cp1 (init) forms the
// cluster by itself (containerd, the baked images, kubeadm init in
// kiln-bootstrap, the kubelet under initd), w1 (worker) joins it over a
// virtual Ethernet segment (a qemu.Switch on loopback). The host then
// checks it the way a user would: `kiln health` and `kiln kubeconfig`, and
// the image's own kubectl through cp1's forwarded API port: both nodes
// Ready, kube-system running, a Deployment behind a Service answering from
// another pod, DNS, pod-to-pod traffic between the nodes over the
// host-gateway routes, no image pulled. Last, cp1 reboots and the cluster
// comes back as it was, with no second kubeadm init.
//
// Under TCG this takes most of an hour: it runs only with KILN_E2E=1
// (make e2e).

const apiPort = 6443

// The cluster's segment: it exists only between the test's switch and the VMs.
const (
	cp1IP = "192.168.76.10"
	w1IP  = "192.168.76.11"
)

var (
	clusterUpRe  = regexp.MustCompile(`kiln: cluster: up: .*|kiln: ERROR: cluster: .*`)
	clusterSecRe = regexp.MustCompile(`([0-9.]+)s after power-on`)
	validatedRe  = regexp.MustCompile(`kiln: cluster: validation .*|kiln: ERROR: cluster: .*`)
)

// clusterNode is one VM of the test cluster.
type clusterNode struct {
	name, ip string
	vm       *qemu.VM
	ready    string // its first "kiln: ready" line
	nodeAPI  string // 127.0.0.1:PORT, forwarded to the node API
	kubePort int    // forwarded to 6443 (cp1 only)
}

// startClusterNode boots the default qcow2 (a fresh overlay) with two
// NICs: a user-network one (DHCP, the host's forwarded ports) and one on
// sw with the node's static address, which the cluster uses.
func startClusterNode(t *testing.T, sw *qemu.Switch, qcow2, name, ip string, machineConfig []byte, cpus, memMiB int, api bool) *clusterNode {
	t.Helper()
	natMAC, lanMAC := qemu.MACFor(name+"-nat"), qemu.MACFor(name+"-lan")
	netcfg := fmt.Sprintf("version: 2\nethernets:\n  nat:\n    match: {macaddress: %q}\n    dhcp4: true\n  lan:\n    match: {macaddress: %q}\n    addresses: [%s/24]\n",
		natMAC.String(), lanMAC.String(), ip)
	dir := seedFiles(t, map[string]string{"user-data": string(machineConfig), "network-config": netcfg})
	seed := kilnSeed(t, "--kind", "nocloud", "--hostname", name, "--network-config", filepath.Join(dir, "network-config"), filepath.Join(dir, "user-data"))
	disk := filepath.Join(t.TempDir(), name+".qcow2")
	runTool(t, "qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", qcow2, disk, "16G")
	m := amd64Machine(t, disk, "qcow2", seed)
	m.MemoryMiB, m.CPUs, m.MAC = memMiB, cpus, natMAC.String()
	n := &clusterNode{name: name, ip: ip}
	nodePort := freePort(t)
	n.nodeAPI = "127.0.0.1:" + strconv.Itoa(nodePort)
	m.Forwards = []qemu.Forward{{Host: nodePort, Guest: nodeAPIPort}}
	if api {
		n.kubePort = freePort(t)
		m.Forwards = append(m.Forwards, qemu.Forward{Host: n.kubePort, Guest: apiPort})
	}
	addSwitchNIC(t, m, sw, name, 1, lanMAC)
	n.vm, n.ready = bootKept(t, m)
	wantReady(t, n.ready, name, ip+"/24")
	// The console is quiet for minutes while images import and kubeadm
	// runs: that is not a stuck machine here.
	n.vm.SilenceLimit = 0
	return n
}

func TestCluster(t *testing.T) {
	if os.Getenv("KILN_E2E") == "" {
		t.Skip("forms a two-node Kubernetes cluster under TCG (most of an hour): run with KILN_E2E=1 (make e2e)")
	}
	qcow2 := defaultImage(t, "amd64", "qcow2")
	root := extractSystem(t, defaultISO(t, "amd64"))
	kubectl := filepath.Join(root, "usr/bin/kubectl")
	probe := bakedImage(t, root, "kiln-probe")
	dir := filepath.Join(t.TempDir(), "e2e")
	if out, err := kiln(t, nil, "gen", "config", "--cluster-name", "e2e", "--endpoint", "https://"+cp1IP+":6443", "-o", dir); err != nil {
		t.Fatalf("kiln gen config: %v\n%s", err, out)
	}
	kilnconfig := filepath.Join(dir, "kilnconfig")
	read := func(name string) []byte {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	sw := newSwitch(t)

	start := time.Now()
	cp := startClusterNode(t, sw, qcow2, "cp1", cp1IP, read("init.yaml"), 2, 4096, true)
	w := startClusterNode(t, sw, qcow2, "w1", w1IP, read("worker.yaml"), 2, 3072, false)
	nodes := []*clusterNode{cp, w}
	stopProgress := clusterProgress(t, start, kilnconfig, nodes)
	defer stopProgress()

	failed := func(format string, args ...any) {
		t.Helper()
		for _, n := range nodes {
			logs(t, kilnconfig, n.name, n.nodeAPI)
		}
		t.Fatalf(format, args...)
	}
	upLine := map[string]string{}
	for _, n := range nodes {
		up, err := n.vm.WaitFor(context.Background(), clusterUpRe, 40*time.Minute)
		if err != nil {
			failed("%s: no cluster line: %v", n.name, err)
		}
		if strings.Contains(up, "ERROR") {
			failed("%s: %s", n.name, up)
		}
		upLine[n.name] = strings.TrimSpace(up)
		t.Logf("%6.0fs %s: %s", time.Since(start).Seconds(), n.name, upLine[n.name])
	}
	validated, err := cp.vm.WaitFor(context.Background(), validatedRe, 30*time.Minute)
	if err != nil || !strings.Contains(validated, "validation passed") {
		failed("cp1: validation: %v %s", err, validated)
	}
	validatedAt := time.Since(start)
	t.Logf("%6.0fs cp1: %s", validatedAt.Seconds(), strings.TrimSpace(validated))

	// kiln health: every check passes on both nodes (the validation's on cp1).
	for _, n := range nodes {
		out, err := kilnNode(t, kilnconfig, n.nodeAPI, "health")
		if err != nil {
			t.Errorf("kiln health --node %s: %v\n%s", n.name, err, out)
		} else if !strings.Contains(out, "cluster") || (n == cp && !strings.Contains(out, "validation")) {
			t.Errorf("kiln health --node %s lacks the cluster checks:\n%s", n.name, out)
		}
	}

	kubeconfig := filepath.Join(t.TempDir(), "admin.conf")
	if out, err := kilnNode(t, kilnconfig, cp.nodeAPI, "kubeconfig", "-o", kubeconfig); err != nil {
		t.Fatalf("kiln kubeconfig: %v\n%s", err, out)
	}
	k := &kubectlRunner{t: t, bin: kubectl, kubeconfig: kubeconfig, port: cp.kubePort, serverName: cp1IP}
	// The admin credentials never reach the console or a service log.
	adminConf, err := os.ReadFile(kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	keyLine := regexp.MustCompile(`client-key-data: (\S+)`).FindSubmatch(adminConf)
	if keyLine == nil {
		t.Fatalf("the admin kubeconfig has no client-key-data:\n%s", adminConf)
	}
	secret := string(keyLine[1])[:40]
	if strings.Contains(cp.vm.Log(), secret) {
		t.Error("the admin kubeconfig's key is on cp1's console")
	}
	for _, svc := range []string{"bootstrap", "kubelet", "containerd", "addons", "validate"} {
		if out, _ := kilnNode(t, kilnconfig, cp.nodeAPI, "logs", svc); strings.Contains(out, secret) {
			t.Errorf("the admin kubeconfig's key is in cp1's %s log", svc)
		}
	}

	// Both nodes Ready, Kubernetes v1.37.2, at their segment addresses.
	wantNodes(t, k, map[string]string{"cp1": cp1IP, "w1": w1IP})

	// Every kube-system component runs, kube-proxy on both nodes.
	want := []string{"etcd-cp1", "kube-apiserver-cp1", "kube-controller-manager-cp1", "kube-scheduler-cp1", "kube-proxy-", "coredns-", "metrics-server-"}
	var missing []string
	deadline := time.Now().Add(15 * time.Minute)
	for {
		listing := k.run("get", "pods", "-n", "kube-system", "-o", "json")
		missing = missingPods(t, listing, want)
		if n := countRunning(t, listing, "kube-proxy-"); n != 2 {
			missing = append(missing, fmt.Sprintf("kube-proxy on 2 nodes (running: %d)", n))
		}
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Second)
	}
	if len(missing) > 0 {
		t.Errorf("kube-system pods not running: %v\n%s", missing, k.run("get", "pods", "-n", "kube-system", "-o", "wide"))
	}

	// A Deployment of two replicas, one per node, behind a Service.
	k.apply(webManifest(probe))
	k.run("rollout", "status", "deployment/web", "--timeout", "15m")
	byNode := podsByNode(t, k.run("get", "pods", "-l", "app=web", "-o", "json"))
	if len(byNode["cp1"]) != 1 || len(byNode["w1"]) != 1 {
		t.Fatalf("web replicas by node: %v, want one on cp1 and one on w1", byNode)
	}
	// From a pod on each node: DNS, the Service, and the other node's replica
	// by its pod address (host-gateway routes between the nodes).
	for _, c := range []struct {
		name, node string
		args       []string
	}{
		{"dns-w1", "w1", []string{"lookup", "kubernetes.default"}},
		{"svc-w1", "w1", []string{"get", "http://web.default.svc/", "--expect", "kiln-probe web-"}},
		{"pod-w1-to-cp1", "w1", []string{"get", "http://" + byNode["cp1"][0].ip + ":8080/", "--expect", byNode["cp1"][0].name}},
		{"pod-cp1-to-w1", "cp1", []string{"get", "http://" + byNode["w1"][0].ip + ":8080/", "--expect", byNode["w1"][0].name}},
	} {
		out := k.runPod(c.name, c.node, probe, c.args...)
		t.Logf("pod %s on %s: kiln-probe %s: %s", c.name, c.node, strings.Join(c.args, " "), strings.TrimSpace(out))
	}

	// metrics-server serves the metrics API.
	var top string
	for deadline := time.Now().Add(10 * time.Minute); ; {
		out, err := k.try("top", "nodes", "--no-headers")
		if err == nil && strings.Contains(out, "cp1") && strings.Contains(out, "w1") {
			top = out
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("kubectl top nodes: %v %s\n%s", err, out, k.run("get", "apiservice", "v1beta1.metrics.k8s.io", "-o", "yaml"))
			break
		}
		time.Sleep(15 * time.Second)
	}
	t.Logf("kubectl top nodes (idle):\n%s", top)

	// Nothing was pulled: containerd logs every CRI pull ("PullImage"),
	// the kubelet records a "Pulling" event before one.
	for _, n := range nodes {
		ctrLog, err := kilnNode(t, kilnconfig, n.nodeAPI, "logs", "containerd")
		if err != nil {
			t.Fatalf("kiln logs containerd --node %s: %v", n.name, err)
		}
		if strings.Contains(ctrLog, "PullImage") {
			t.Errorf("containerd on %s pulled an image:\n%s", n.name, grepLines(ctrLog, "PullImage"))
		}
	}
	if ev := k.run("get", "events", "-A", "--field-selector", "reason=Pulling", "-o", "name"); strings.TrimSpace(ev) != "" {
		t.Errorf("the kubelet pulled images: %s", ev)
	}

	// Power-on -> Ready -> validated, from the consoles' own clocks.
	sec := func(re *regexp.Regexp, s string) string {
		if m := re.FindStringSubmatch(s); m != nil {
			return m[1] + "s"
		}
		return "?"
	}
	for _, n := range nodes {
		t.Logf("%s: power-on -> kiln ready %s; -> node Ready %s: %s", n.name, sec(readyRe, n.ready), sec(clusterSecRe, upLine[n.name]), upLine[n.name])
	}
	t.Logf("cp1: power-on -> validation passed %s: %s", sec(clusterSecRe, validated), strings.TrimSpace(validated))

	// Reboot cp1: the same node comes back with its pods, not initialised again.
	from := cp.vm.LineCount()
	if out, err := kilnNode(t, kilnconfig, cp.nodeAPI, "reboot"); err != nil {
		t.Fatalf("kiln reboot: %v\n%s", err, out)
	}
	rebootAt := time.Now()
	if _, err := cp.vm.WaitFrom(context.Background(), readyRe, from, 10*time.Minute); err != nil {
		failed("cp1 after reboot: %v", err)
	}
	up, err := cp.vm.WaitFrom(context.Background(), clusterUpRe, from, 30*time.Minute)
	if err != nil || strings.Contains(up, "ERROR") {
		failed("cp1 after reboot: %v %s", err, up)
	}
	t.Logf("reboot -> cp1 Ready again in %.0fs: %s", time.Since(rebootAt).Seconds(), strings.TrimSpace(up))
	second := strings.Join(cp.vm.Lines()[from:], "\n")
	if !strings.Contains(second, "not initialising or joining again") || strings.Contains(second, "kubeadm init (kiln-bootstrap)") {
		t.Errorf("cp1's second boot initialised again:\n%s", grepLines(second, "cluster"))
	}
	if v, err := cp.vm.WaitFrom(context.Background(), validatedRe, from, 30*time.Minute); err != nil || !strings.Contains(v, "validation passed") {
		failed("cp1 after reboot: validation: %v %s", err, v)
	}
	wantNodes(t, k, map[string]string{"cp1": cp1IP, "w1": w1IP})
	k.run("rollout", "status", "deployment/web", "--timeout", "15m")
	k.runPod("svc-after-reboot", "w1", probe, "get", "http://web.default.svc/", "--expect", "kiln-probe web-")
	t.Logf("after the reboot: %s", strings.Join(strings.Fields(k.run("get", "deployment", "web", "--no-headers")), " "))
}

// clusterProgress logs the nodes' cluster lines as they come, and the last
// line of kiln-bootstrap's log now and then; the returned func stops it.
func clusterProgress(t *testing.T, start time.Time, kilnconfig string, nodes []*clusterNode) func() {
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		seen := map[string]int{}
		last := map[string]string{}
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Second):
			}
			for _, n := range nodes {
				lines := n.vm.Lines()
				for _, l := range lines[min(seen[n.name], len(lines)):] {
					if strings.Contains(l, "cluster") || strings.Contains(l, "service ") || strings.Contains(l, "ERROR") || strings.Contains(l, "pod network") {
						t.Logf("%6.0fs %s %s", time.Since(start).Seconds(), n.name, strings.TrimSpace(l))
					}
				}
				seen[n.name] = len(lines)
				if i%12 == 11 {
					if out, err := kilnNode(t, kilnconfig, n.nodeAPI, "logs", "bootstrap", "--tail", "1"); err == nil && out != last[n.name] {
						t.Logf("%6.0fs %s bootstrap: %s", time.Since(start).Seconds(), n.name, strings.TrimSpace(out))
						last[n.name] = out
					}
				}
			}
		}
	}()
	return func() { close(stop); <-stopped }
}

// bakedImage is the reference of the image whose repository ends in name,
// from the image's own cluster.json.
func bakedImage(t *testing.T, root, name string) string {
	t.Helper()
	var info struct{ Images []string }
	data, err := os.ReadFile(filepath.Join(root, "etc/kiln/cluster.json"))
	if err == nil {
		err = json.Unmarshal(data, &info)
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, ref := range info.Images {
		repo := ref[:strings.LastIndex(ref, ":")]
		if strings.HasSuffix(repo, "/"+name) {
			return ref
		}
	}
	t.Fatalf("no %s image in cluster.json: %v", name, info.Images)
	return ""
}

// kubectlRunner runs the image's kubectl against cp1's API through the
// forwarded port, checking the certificate against the node's name.
type kubectlRunner struct {
	t               *testing.T
	bin, kubeconfig string
	port            int
	serverName      string
}

func (k *kubectlRunner) cmd(ctx context.Context, args ...string) *exec.Cmd {
	all := append([]string{"--kubeconfig", k.kubeconfig, "--server", fmt.Sprintf("https://127.0.0.1:%d", k.port),
		"--tls-server-name", k.serverName, "--request-timeout", "2m"}, args...)
	return exec.CommandContext(ctx, k.bin, all...)
}

func (k *kubectlRunner) try(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	out, err := k.cmd(ctx, args...).Output()
	if ee, ok := err.(*exec.ExitError); ok {
		err = fmt.Errorf("%v: %s", err, ee.Stderr)
	}
	return string(out), err
}

func (k *kubectlRunner) run(args ...string) string {
	k.t.Helper()
	out, err := k.try(args...)
	if err != nil {
		k.t.Fatalf("kubectl %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// apply applies manifest, again while the API server answers that etcd
// timed out (an emulated control plane under load does), up to 3 times.
func (k *kubectlRunner) apply(manifest string) {
	k.t.Helper()
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		c := k.cmd(ctx, "apply", "-f", "-")
		c.Stdin = strings.NewReader(manifest)
		out, err := c.CombinedOutput()
		cancel()
		if err == nil {
			return
		}
		if attempt == 3 || !strings.Contains(string(out), "etcdserver: request timed out") {
			k.t.Fatalf("kubectl apply (attempt %d): %v\n%s", attempt, err, out)
		}
		k.t.Logf("kubectl apply: %s; again in 10s", strings.TrimSpace(string(out)))
		time.Sleep(10 * time.Second)
	}
}

// runPod runs kiln-probe ARGS in a pod on node and returns its log; the
// test fails unless the pod succeeds.
func (k *kubectlRunner) runPod(name, node, image string, args ...string) string {
	k.t.Helper()
	quoted := make([]string, len(args))
	for i, a := range args {
		quoted[i] = strconv.Quote(a)
	}
	k.apply(fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: %s}
spec:
  nodeName: %s
  restartPolicy: Never
  containers:
  - name: probe
    image: %s
    imagePullPolicy: Never
    args: [%s]
`, name, node, image, strings.Join(quoted, ", ")))
	var phase string
	for deadline := time.Now().Add(10 * time.Minute); time.Now().Before(deadline); time.Sleep(3 * time.Second) {
		phase = strings.TrimSpace(k.run("get", "pod", name, "-o", "jsonpath={.status.phase}"))
		if phase == "Succeeded" || phase == "Failed" {
			break
		}
	}
	out, _ := k.try("logs", name)
	if phase != "Succeeded" {
		desc, _ := k.try("describe", "pod", name)
		k.t.Fatalf("pod %s on %s (kiln-probe %s): %s\n%s\n%s", name, node, strings.Join(args, " "), phase, out, desc)
	}
	return out
}

func webManifest(image string) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      topologySpreadConstraints:
      - {maxSkew: 1, topologyKey: kubernetes.io/hostname, whenUnsatisfiable: DoNotSchedule, labelSelector: {matchLabels: {app: web}}}
      tolerations:
      - {key: node-role.kubernetes.io/control-plane, operator: Exists, effect: NoSchedule}
      containers:
      - name: web
        image: %s
        imagePullPolicy: Never
        args: [serve, --listen, ":8080"]
        ports: [{containerPort: 8080}]
        readinessProbe: {httpGet: {path: /healthz, port: 8080}}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
`, image)
}

type podRef struct{ name, ip string }

// podsByNode groups a pod listing by node.
func podsByNode(t *testing.T, listing string) map[string][]podRef {
	t.Helper()
	var pods struct {
		Items []struct {
			Metadata struct{ Name string }
			Spec     struct{ NodeName string }
			Status   struct{ PodIP string }
		}
	}
	if err := json.Unmarshal([]byte(listing), &pods); err != nil {
		t.Fatal(err)
	}
	out := map[string][]podRef{}
	for _, p := range pods.Items {
		out[p.Spec.NodeName] = append(out[p.Spec.NodeName], podRef{p.Metadata.Name, p.Status.PodIP})
	}
	return out
}

// wantNodes checks the cluster has exactly these nodes, Ready, with
// Kubernetes v1.37.2 and the given InternalIP.
func wantNodes(t *testing.T, k *kubectlRunner, want map[string]string) {
	t.Helper()
	var nodes struct {
		Items []struct {
			Metadata struct{ Name string }
			Status   struct {
				Conditions []struct{ Type, Status string }
				Addresses  []struct{ Type, Address string }
				NodeInfo   struct{ KubeletVersion string }
			}
		}
	}
	if err := json.Unmarshal([]byte(k.run("get", "nodes", "-o", "json")), &nodes); err != nil {
		t.Fatal(err)
	}
	if len(nodes.Items) != len(want) {
		t.Errorf("%d nodes, want %v", len(nodes.Items), want)
	}
	for _, n := range nodes.Items {
		ready, ip := false, ""
		for _, c := range n.Status.Conditions {
			ready = ready || (c.Type == "Ready" && c.Status == "True")
		}
		for _, a := range n.Status.Addresses {
			if a.Type == "InternalIP" {
				ip = a.Address
			}
		}
		if !ready || n.Status.NodeInfo.KubeletVersion != "v1.37.2" || ip != want[n.Metadata.Name] {
			t.Errorf("node %s: Ready %v, kubelet %s, InternalIP %s; want Ready, v1.37.2, %s",
				n.Metadata.Name, ready, n.Status.NodeInfo.KubeletVersion, ip, want[n.Metadata.Name])
		}
	}
}

// countRunning counts the Running pods whose name starts with prefix.
func countRunning(t *testing.T, listing, prefix string) int {
	t.Helper()
	var pods struct {
		Items []struct {
			Metadata struct{ Name string }
			Status   struct{ Phase string }
		}
	}
	if err := json.Unmarshal([]byte(listing), &pods); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, p := range pods.Items {
		if strings.HasPrefix(p.Metadata.Name, prefix) && p.Status.Phase == "Running" {
			n++
		}
	}
	return n
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

// logs prints the tails of a node's cluster services' logs (for a failure).
func logs(t *testing.T, kilnconfig, name, node string) {
	t.Helper()
	for _, svc := range []string{"bootstrap", "kubelet", "containerd", "images", "addons", "validate"} {
		out, err := kilnNode(t, kilnconfig, node, "logs", svc, "--tail", "60")
		t.Logf("%s: kiln logs %s (%v):\n%s", name, svc, err, out)
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
