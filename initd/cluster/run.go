package cluster

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/kilnproject/kiln/initd/cluster/podnet"
	"github.com/kilnproject/kiln/initd/machineconfig"
	"github.com/kilnproject/kiln/initd/supervisor"
	"golang.org/x/sys/unix"
)

// Binaries the node runs (kiln build lays them into /usr/bin).
const (
	containerdBin = "/usr/bin/containerd"
	ctrBin        = "/usr/bin/ctr"
	kubeletBin    = "/usr/bin/kubelet"
	bootstrapBin  = "/usr/bin/kiln-bootstrap"
)

// Service names (supervisor, /var/log/kiln/NAME.log, kiln logs NAME).
const (
	SvcContainerd = "containerd"
	SvcKubelet    = "kubelet"
	SvcBootstrap  = "bootstrap"
	SvcImages     = "images" // ctr images import, once per boot that needs it
)

// serviceEnv is what every Kubernetes service gets: the supervisor passes
// nothing on by itself.
var serviceEnv = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root"}

// Options tie Run to the node.
type Options struct {
	Super    *supervisor.Supervisor
	Spawner  supervisor.Spawner // runs ctr (PID 1's reaper)
	MC       *machineconfig.MachineConfig
	Info     *Info
	Node     Node
	Uptime   func() time.Duration // since power-on
	Log      func(format string, args ...any)
	ProcSys  string // /proc/sys; tests point it elsewhere
	StateDir string // STATE's mount point (/run/kiln/state): containerd's root lives there directly
	Timeout  time.Duration
	Interval time.Duration // how often to look for the kubelet's config, default 500ms
	// OnUp is called once the node is Ready (for the node API's health report).
	OnUp func()
}

// Run brings the node's Kubernetes up: containerd, the baked images, then
// for an init node on first boot kubeadm init (kiln-bootstrap) with the
// kubelet started as soon as kubeadm has written its configuration; on
// later boots (kubelet.conf on STATE) containerd and the kubelet only, and
// the static pods come back by themselves. It logs every step and ends
// with one "cluster: up" line or the error.
func Run(ctx context.Context, o Options) error {
	if o.Interval == 0 {
		o.Interval = 500 * time.Millisecond
	}
	if o.Timeout == 0 {
		o.Timeout = 45 * time.Minute
	}
	if o.ProcSys == "" {
		o.ProcSys = "/proc/sys"
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	start := o.Uptime()
	var steps []string
	step := func(name string, since time.Duration) time.Duration {
		now := o.Uptime()
		steps = append(steps, fmt.Sprintf("%s %.1fs", name, (now-since).Seconds()))
		return now
	}
	role := o.MC.Spec.Role
	rejoin := exists(KubeletConf)
	if err := sysctls(o.ProcSys); err != nil {
		return err
	}
	pause, err := o.Info.Image("pause")
	if err != nil {
		return err
	}
	if err := WriteFile(ContainerdConfig, ContainerdTOML(pause), 0o644); err != nil {
		return err
	}
	if err := bindFromState(o.StateDir, "containerd", ContainerdRoot); err != nil {
		return err
	}
	if err := o.Super.Launch(ctx, supervisor.Service{
		Name: SvcContainerd, Path: containerdBin, Args: []string{"--config", ContainerdConfig},
		Env: serviceEnv, OOMScoreAdj: -999, Health: socketHealth(ContainerdSocket), StopTimeout: 30 * time.Second,
	}); err != nil {
		return err
	}
	if err := o.Super.WaitHealthy(ctx, SvcContainerd); err != nil {
		return err
	}
	t := step("containerd", start)

	n, err := o.importImages(ctx)
	if err != nil {
		return err
	}
	if n > 0 {
		t = step(fmt.Sprintf("%d images imported", n), t)
	}

	if err := WriteResolvConf(KubeletResolvConf, "/etc/resolv.conf", o.Node.Address); err != nil {
		return err
	}
	o.startPodNet()
	kubelet := supervisor.Service{
		Name: SvcKubelet, Path: kubeletBin, Env: serviceEnv, Deps: []string{SvcContainerd},
		OOMScoreAdj: -999, Health: httpHealth("http://127.0.0.1:10248/healthz"), StopTimeout: 30 * time.Second,
	}
	var res *bootstrapResult
	switch {
	case rejoin:
		if kubelet.Args, err = KubeletArgs(KubeletFlagsEnv); err != nil {
			return err
		}
		if err := o.Super.Launch(ctx, kubelet); err != nil {
			return err
		}
		o.Log("cluster: %s exists: not initialising or joining again; kubelet started", KubeletConf)
		if res, err = o.bootstrap(ctx, []string{"ready", "--kubeconfig", KubeletConf, "--node", o.Node.Name}); err != nil {
			return err
		}
		step("node Ready", t)

	case role == machineconfig.RoleInit:
		if err := WritePKI(PKIDir, o.MC.Spec.Secrets); err != nil {
			return err
		}
		cfg, err := KubeadmInit(o.MC, o.Node)
		if err != nil {
			return err
		}
		o.Log("cluster: kubeadm init (kiln-bootstrap) of node %s, control plane at %s", o.Node.Name, o.MC.Spec.Cluster.ControlPlaneEndpoint)
		if res, err = o.kubeadm(ctx, "init", cfg, kubelet); err != nil {
			return err
		}
		steps = append(steps, fmt.Sprintf("kubeadm init %.1fs", res.KubeadmSeconds), fmt.Sprintf("node Ready %.1fs", res.ReadySeconds))

	default: // a worker or another control-plane node joins
		if role == machineconfig.RoleControlPlane {
			// The shared keys come with the machine config: kubeadm finds
			// them in place and downloads nothing.
			if err := WritePKI(PKIDir, o.MC.Spec.Secrets); err != nil {
				return err
			}
		}
		patchDir := ""
		if name, body, err := KubeletPatch(o.MC); err != nil {
			return err
		} else if body != nil {
			patchDir = PatchDir
			if err := WriteFile(filepath.Join(PatchDir, name), body, 0o644); err != nil {
				return err
			}
		}
		cfg, err := KubeadmJoin(o.MC, o.Node, patchDir)
		if err != nil {
			return err
		}
		o.Log("cluster: kubeadm join (kiln-bootstrap) of %s node %s to %s", role, o.Node.Name, o.MC.Spec.Cluster.ControlPlaneEndpoint)
		if res, err = o.kubeadm(ctx, "join", cfg, kubelet); err != nil {
			return err
		}
		steps = append(steps, fmt.Sprintf("kubeadm join %.1fs", res.KubeadmSeconds), fmt.Sprintf("node Ready %.1fs", res.ReadySeconds))
	}
	o.up(res, start, steps)
	if role != machineconfig.RoleWorker && exists(AdminConf) {
		o.addonsAndValidation(ctx)
	}
	return nil
}

// kubeadm writes kubeadm's configuration cfg and runs kiln-bootstrap verb
// (init or join) with it, starting the kubelet as soon as kubeadm has
// configured it.
func (o *Options) kubeadm(ctx context.Context, verb string, cfg []byte, kubelet supervisor.Service) (*bootstrapResult, error) {
	if err := WriteFile(KubeadmConfig, cfg, 0o600); err != nil {
		return nil, err
	}
	kubeletUp := o.kubeletWhenConfigured(ctx, kubelet)
	res, err := o.bootstrap(ctx, []string{verb, "--config", KubeadmConfig})
	if err != nil {
		return nil, err
	}
	if err := <-kubeletUp; err != nil {
		return nil, fmt.Errorf("kubelet: %w", err)
	}
	return res, nil
}

// kubeletWhenConfigured starts the kubelet the moment kubeadm has written
// its configuration: kubeadm's kubelet-start phase would ask systemd to
// (re)start it, and waits for it (TLS bootstrap on a joining node).
func (o *Options) kubeletWhenConfigured(ctx context.Context, kubelet supervisor.Service) <-chan error {
	up := make(chan error, 1)
	go func() {
		// kubeadm writes the flags file and the config file one after the
		// other, in an order that differs between init and join.
		for !exists(KubeletConfig) || !exists(KubeletFlagsEnv) {
			select {
			case <-ctx.Done():
				up <- ctx.Err()
				return
			case <-time.After(o.Interval):
			}
		}
		args, err := KubeletArgs(KubeletFlagsEnv)
		if err == nil {
			kubelet.Args = args
			err = o.Super.Launch(ctx, kubelet)
		}
		if err == nil {
			o.Log("cluster: kubeadm wrote %s: kubelet started", KubeletConfig)
		}
		up <- err
	}()
	return up
}

// startPodNet keeps the host-gateway pod network (podnet) in step with the
// cluster for as long as the node runs, unless another CNI configuration
// was put in place by the operator.
func (o *Options) startPodNet() {
	if ents, _ := os.ReadDir(CNIConfDir); len(ents) > 0 && !exists(CNIConfFile) {
		o.Log("cluster: %s already holds a CNI configuration: kiln's pod network is not started", CNIConfDir)
		return
	}
	var services []netip.Prefix
	for _, c := range strings.Split(o.MC.Spec.Cluster.Networking.ServiceSubnet, ",") {
		if p, err := netip.ParsePrefix(strings.TrimSpace(c)); err == nil {
			services = append(services, p)
		}
	}
	go func() {
		err := podnet.Run(context.Background(), podnet.Options{
			Kubeconfig: KubeletConf, Node: o.Node.Name, ConfFile: CNIConfFile, Log: o.Log,
			NodeIP: o.Node.Address, Services: services,
		})
		o.Log("ERROR: cluster: pod network stopped: %v", err)
	}()
}

// bootstrapResult is kiln-bootstrap's --result.
type bootstrapResult struct {
	Node           string  `json:"node"`
	Kubernetes     string  `json:"kubernetes"`
	KubeadmSeconds float64 `json:"kubeadmSeconds"`
	ReadySeconds   float64 `json:"readySeconds"`
}

// bootstrap runs kiln-bootstrap once under the supervisor and reads its result.
func (o *Options) bootstrap(ctx context.Context, args []string) (*bootstrapResult, error) {
	os.Remove(BootstrapResult)
	if err := o.Super.Launch(ctx, supervisor.Service{
		Name: SvcBootstrap, Path: bootstrapBin, Args: append(args, "--result", BootstrapResult),
		Env: serviceEnv, Deps: []string{SvcContainerd}, Once: true,
	}); err != nil {
		return nil, err
	}
	if err := o.Super.WaitDone(ctx, SvcBootstrap); err != nil {
		return nil, fmt.Errorf("%v (kiln logs %s)", err, SvcBootstrap)
	}
	data, err := os.ReadFile(BootstrapResult)
	if err != nil {
		return nil, err
	}
	var r bootstrapResult
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", BootstrapResult, err)
	}
	return &r, nil
}

func (o *Options) up(r *bootstrapResult, start time.Duration, steps []string) {
	now := o.Uptime()
	v := r.Kubernetes
	if v == "" {
		v = o.Info.Kubernetes
	}
	if o.OnUp != nil {
		o.OnUp()
	}
	o.Log("cluster: up: node %s Ready, Kubernetes %s, %.1fs after power-on (%.1fs after the cluster phase began: %s)",
		r.Node, v, now.Seconds(), (now - start).Seconds(), strings.Join(steps, ", "))
}

// importImages hands the baked OCI layout to containerd (namespace k8s.io,
// unpacked for the overlayfs snapshotter) through `ctr images import`,
// which reads a tar stream: nothing is pulled, containerd has no registry
// configured. Skipped when this layout was imported before. It returns how
// many images it imported.
func (o *Options) importImages(ctx context.Context) (int, error) {
	dir := o.Info.ImagesDir
	digest, err := LayoutDigest(dir)
	if err != nil {
		return 0, fmt.Errorf("images: %w", err)
	}
	want := o.Info.NodeImages(o.MC.Spec.Role)
	wanted := map[string]bool{}
	for _, ref := range want {
		wanted[ref] = true
	}
	// The marker names the layout and the set: a node imports again when
	// either changes.
	marker := digest + " " + strings.Join(want, " ")
	if old, err := os.ReadFile(ImagesImported); err == nil && strings.TrimSpace(string(old)) == marker {
		missing, err := o.missingImages(ctx, want)
		if err == nil && len(missing) == 0 {
			o.Log("cluster: images: %d already in containerd (layout %s)", len(want), digest[:19])
			return 0, nil
		}
	}
	if skipped := len(o.Info.Images) - len(want); skipped > 0 {
		o.Log("cluster: images: importing %d of %d (a %s runs no control-plane pods)", len(want), len(o.Info.Images), o.MC.Spec.Role)
	}
	// A one-shot service (`kiln logs images`), fed the tar stream on its
	// standard input: if ctr dies, the writes fail and the tar stops.
	pr, pw, err := os.Pipe()
	if err != nil {
		return 0, err
	}
	if err := o.Super.Launch(ctx, supervisor.Service{
		Name: SvcImages, Path: ctrBin, Once: true, Stdin: pr, Env: serviceEnv, Deps: []string{SvcContainerd},
		Args: []string{"--address", ContainerdSocket, "--namespace", CtrNamespace, "images", "import", "-"},
	}); err != nil {
		pr.Close()
		pw.Close()
		return 0, err
	}
	tarErr := TarLayout(pw, dir, func(ref string) bool { return wanted[ref] })
	pw.Close()
	if err := o.Super.WaitDone(ctx, SvcImages); err != nil {
		return 0, fmt.Errorf("images: ctr images import: %v (kiln logs %s)", err, SvcImages)
	}
	if tarErr != nil {
		return 0, fmt.Errorf("images: reading %s: %w", dir, tarErr)
	}
	missing, err := o.missingImages(ctx, want)
	if err != nil {
		return 0, err
	}
	if len(missing) > 0 {
		return 0, fmt.Errorf("images: not in containerd after the import: %s", strings.Join(missing, " "))
	}
	if err := WriteFile(ImagesImported, []byte(marker+"\n"), 0o644); err != nil {
		return 0, err
	}
	return len(want), nil
}

// missingImages lists the references of want containerd does not have.
func (o *Options) missingImages(ctx context.Context, want []string) ([]string, error) {
	// An *os.File for the output: the spawner reaps the child without
	// cmd.Wait, which is what would finish copying into a buffer.
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer pr.Close()
	cmd := exec.Command(ctrBin, "--address", ContainerdSocket, "--namespace", CtrNamespace, "images", "ls", "-q")
	cmd.Env = serviceEnv
	cmd.Stdout, cmd.Stderr = pw, pw
	exit, err := o.Spawner.Start(cmd)
	pw.Close()
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	io.Copy(&out, pr) // until ctr (and anything it started) closes the pipe
	select {
	case st := <-exit:
		if st.ExitStatus() != 0 {
			return nil, fmt.Errorf("ctr images ls: exit status %d: %s", st.ExitStatus(), strings.TrimSpace(out.String()))
		}
	case <-ctx.Done():
		cmd.Process.Kill()
		return nil, ctx.Err()
	}
	have := map[string]bool{}
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		have[strings.TrimSpace(sc.Text())] = true
	}
	var missing []string
	for _, ref := range want {
		if !have[ref] {
			missing = append(missing, ref)
		}
	}
	sort.Strings(missing)
	return missing, nil
}

// bindFromState bind-mounts STATE's directory name onto dir. /var is an
// overlay (the image below, STATE above), and overlayfs refuses an upper
// directory on an overlay: containerd's overlayfs snapshots must sit on
// STATE's own filesystem (ext4, or tmpfs on a live ISO).
func bindFromState(stateDir, name, dir string) error {
	if stateDir == "" {
		return nil
	}
	src := filepath.Join(stateDir, name)
	if err := os.MkdirAll(src, 0o711); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o711); err != nil {
		return err
	}
	if err := unix.Mount(src, dir, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind mount %s on %s: %w", src, dir, err)
	}
	return nil
}

// sysctls are what kubeadm's preflight checks and the pod network need:
// forwarding, and bridged traffic through netfilter (br_netfilter) so
// Services work between pods on the same bridge.
func sysctls(procSys string) error {
	for _, kv := range [][2]string{
		{"net/ipv4/ip_forward", "1"},
		{"net/ipv6/conf/all/forwarding", "1"},
		{"net/bridge/bridge-nf-call-iptables", "1"},
		{"net/bridge/bridge-nf-call-ip6tables", "1"},
	} {
		if err := os.WriteFile(filepath.Join(procSys, kv[0]), []byte(kv[1]), 0o644); err != nil {
			return fmt.Errorf("sysctl %s: %w", strings.ReplaceAll(kv[0], "/", "."), err)
		}
	}
	return nil
}

func socketHealth(path string) func(context.Context) error {
	return func(ctx context.Context) error {
		var d net.Dialer
		c, err := d.DialContext(ctx, "unix", path)
		if err != nil {
			return err
		}
		return c.Close()
	}
}

func httpHealth(url string) func(context.Context) error {
	client := &http.Client{Timeout: 5 * time.Second}
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: %s", url, resp.Status)
		}
		return nil
	}
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// NodeAddress picks the address to advertise: the control-plane endpoint's
// host when the node has it (the init node usually is the endpoint), else
// the node's address on the endpoint's subnet, else the node's first IPv4 address, else its first address. addrs are
// "IP/prefix" as the network setup reports them.
func NodeAddress(endpoint string, addrs []string) (netip.Addr, error) {
	var ips []netip.Addr
	var nets []netip.Prefix
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a); err == nil {
			ips = append(ips, p.Addr())
			nets = append(nets, p)
		} else if ip, err := netip.ParseAddr(a); err == nil {
			ips = append(ips, ip)
		}
	}
	host := endpoint
	if h, _, err := net.SplitHostPort(endpoint); err == nil {
		host = h
	}
	if ep, err := netip.ParseAddr(host); err == nil {
		for _, ip := range ips {
			if ip == ep {
				return ip, nil
			}
		}
		// A joining node talks to the endpoint from the address on its
		// subnet: with a second NIC (e.g. a NAT one), that is the one the
		// other nodes can reach.
		for _, p := range nets {
			if p.Contains(ep) {
				return p.Addr(), nil
			}
		}
	}
	for _, ip := range ips {
		if ip.Is4() && !ip.IsLoopback() {
			return ip, nil
		}
	}
	for _, ip := range ips {
		if !ip.IsLoopback() && !ip.IsLinkLocalUnicast() {
			return ip, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("cluster: no address to advertise among %v", addrs)
}
