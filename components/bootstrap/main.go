// Command kiln-bootstrap forms the cluster on a kiln node with kubeadm's own
// code, in this process: initd writes the kubeadm configuration from the
// machine config and runs this once, as a one-shot service, after the
// network and containerd are up. It is not linked into initd, which lives in
// the initramfs, where every megabyte is boot time.
//
//	kiln-bootstrap init --config FILE [--result FILE] [--ready-timeout 30m]
//	kiln-bootstrap join --config FILE [--result FILE] [--ready-timeout 30m]
//	kiln-bootstrap ready --kubeconfig FILE --node NAME [--result FILE] [--ready-timeout 30m]
//	kiln-bootstrap validate --kubeconfig FILE [--info FILE] [--result FILE] [--timeout 20m] [--namespace NS]
//	kiln-bootstrap addons --kubeconfig FILE [--info FILE] [--timeout 10m]
//	kiln-bootstrap version
//	kubeadm ...   (invoked through the kubeadm symlink: kubeadm's own command)
//
// init checks the configuration with kubeadm's loader (defaulting and
// validation, before anything on the node changes), runs `kubeadm init`'s
// phase workflow through kubeadm's command tree, then waits until the node
// is Ready. ready only waits (later boots, where nothing is initialised
// again). Both write their timings as JSON to --result for initd's console
// line.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	kubeversion "k8s.io/component-base/version"
	kubeadmapp "k8s.io/kubernetes/cmd/kubeadm/app"
	kubeadmcmd "k8s.io/kubernetes/cmd/kubeadm/app/cmd"
	kubeadmconstants "k8s.io/kubernetes/cmd/kubeadm/app/constants"
	configutil "k8s.io/kubernetes/cmd/kubeadm/app/util/config"
)

// version is stamped by the build (-X main.version=...).
var version = "dev"

// Result is what --result receives.
type Result struct {
	Node           string  `json:"node"`
	Kubernetes     string  `json:"kubernetes,omitempty"`
	KubeadmSeconds float64 `json:"kubeadmSeconds,omitempty"` // kubeadm init, all phases
	ReadySeconds   float64 `json:"readySeconds"`             // from then until the node is Ready
}

func main() {
	// Installed under kubeadm's name too (a symlink): the image carries
	// kubeadm's code once, and `kubeadm ...` on a node is kubeadm itself.
	if filepath.Base(os.Args[0]) == "kubeadm" {
		if err := kubeadmapp.Run(); err != nil {
			os.Exit(1)
		}
		return
	}
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "init":
		err = runInit(os.Args[2:])
	case "join":
		err = runJoin(os.Args[2:])
	case "ready":
		err = runReady(os.Args[2:])
	case "validate":
		err = runValidate(os.Args[2:])
	case "addons":
		err = runAddons(os.Args[2:])
	case "version", "-v", "--version":
		fmt.Println("kiln-bootstrap", version)
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "kiln-bootstrap %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: kiln-bootstrap init --config FILE [--result FILE] [--ready-timeout D]\n"+
		"       kiln-bootstrap join --config FILE [--result FILE] [--ready-timeout D]\n"+
		"       kiln-bootstrap ready --kubeconfig FILE --node NAME [--result FILE] [--ready-timeout D]\n"+
		"       kiln-bootstrap validate --kubeconfig FILE [--info FILE] [--result FILE] [--timeout D] [--namespace NS]\n"+
		"       kiln-bootstrap addons --kubeconfig FILE [--info FILE] [--timeout D]\n"+
		"       kiln-bootstrap version")
	os.Exit(2)
}

// phaseFlags are init's and join's flags: kubeadm's configuration file,
// where the timings go and how long to wait for the node.
func phaseFlags(verb string, args []string) (config, result string, timeout time.Duration, err error) {
	fs := flag.NewFlagSet(verb, flag.ContinueOnError)
	fs.StringVar(&config, "config", "", "kubeadm configuration written by initd")
	fs.StringVar(&result, "result", "", "write the timings here (JSON)")
	fs.DurationVar(&timeout, "ready-timeout", 30*time.Minute, "how long to wait for the node to be Ready after kubeadm "+verb)
	if err = fs.Parse(args); err == nil && config == "" {
		err = errors.New("--config is required")
	}
	return config, result, timeout, err
}

// runKubeadm runs kubeadm's command tree in this process with args (e.g.
// "init --config FILE") and returns how long its phases took.
func runKubeadm(args ...string) (float64, error) {
	start := time.Now()
	cmd := kubeadmcmd.NewKubeadmCommand(os.Stdin, os.Stdout, os.Stderr)
	cmd.SetArgs(args)
	cmd.SilenceUsage = true
	if err := cmd.Execute(); err != nil {
		return 0, fmt.Errorf("kubeadm %s: %w", args[0], err)
	}
	took := time.Since(start).Seconds()
	fmt.Printf("kiln-bootstrap: kubeadm %s done in %.1fs\n", args[0], took)
	return took, nil
}

// readyThenResult waits until the node is Ready, read with kubeconfig,
// and writes res with that wait's time to result.
func readyThenResult(res Result, kubeconfig string, timeout time.Duration, result string) error {
	start := time.Now()
	if err := waitReady(kubeconfig, res.Node, timeout); err != nil {
		return err
	}
	res.ReadySeconds = time.Since(start).Seconds()
	return writeResult(result, res)
}

func runInit(args []string) error {
	config, result, timeout, err := phaseFlags("init", args)
	if err != nil {
		return err
	}
	// kubeadm's own loader: unknown fields, bad values and version skew are
	// reported here, before any phase touches the node.
	cfg, err := configutil.LoadInitConfigurationFromFile(config, configutil.LoadOrDefaultConfigurationOptions{SkipCRIDetect: true})
	if err != nil {
		return fmt.Errorf("%s: %w", config, err)
	}
	node := cfg.NodeRegistration.Name
	fmt.Printf("kiln-bootstrap %s: kubeadm init of node %s, Kubernetes %s, endpoint %s\n",
		version, node, cfg.KubernetesVersion, cfg.ControlPlaneEndpoint)
	// The token and the certificate key are the machine config's secrets:
	// kubeadm would print them (and the join commands) into this log.
	took, err := runKubeadm("init", "--config", config, "--skip-token-print", "--skip-certificate-key-print")
	if err != nil {
		return err
	}
	admin := filepath.Join(kubeadmconstants.KubernetesDir, kubeadmconstants.AdminKubeConfigFileName)
	if err := applyPodNetworkRBAC(admin, 10*time.Minute); err != nil {
		return err
	}
	return readyThenResult(Result{Node: node, Kubernetes: cfg.KubernetesVersion, KubeadmSeconds: took}, admin, timeout, result)
}

// runJoin joins a worker or a control-plane node: kubeadm join's phase
// workflow with the JoinConfiguration initd wrote, then the wait until
// the node is Ready, read with the kubelet's own credentials (a worker has
// no admin kubeconfig).
func runJoin(args []string) error {
	config, result, timeout, err := phaseFlags("join", args)
	if err != nil {
		return err
	}
	cfg, err := configutil.LoadJoinConfigurationFromFile(config, configutil.LoadOrDefaultConfigurationOptions{SkipCRIDetect: true})
	if err != nil {
		return fmt.Errorf("%s: %w", config, err)
	}
	node := cfg.NodeRegistration.Name
	what := "worker"
	if cfg.ControlPlane != nil {
		what = "control-plane node"
	}
	endpoint := ""
	if cfg.Discovery.BootstrapToken != nil {
		endpoint = cfg.Discovery.BootstrapToken.APIServerEndpoint
	}
	fmt.Printf("kiln-bootstrap %s: kubeadm join of %s %s to %s\n", version, what, node, endpoint)
	took, err := runKubeadm("join", "--config", config)
	if err != nil {
		return err
	}
	kubelet := filepath.Join(kubeadmconstants.KubernetesDir, kubeadmconstants.KubeletKubeConfigFileName)
	return readyThenResult(Result{Node: node, Kubernetes: kubeversion.Get().GitVersion, KubeadmSeconds: took}, kubelet, timeout, result)
}

func runReady(args []string) error {
	fs := flag.NewFlagSet("ready", flag.ContinueOnError)
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig to read the node with")
	node := fs.String("node", "", "node name")
	result := fs.String("result", "", "write the timings here (JSON)")
	timeout := fs.Duration("ready-timeout", 30*time.Minute, "how long to wait")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *kubeconfig == "" || *node == "" {
		return errors.New("--kubeconfig and --node are required")
	}
	return readyThenResult(Result{Node: *node}, *kubeconfig, *timeout, *result)
}

// waitReady polls the node until its Ready condition is True, saying what
// it sees whenever that changes.
func waitReady(kubeconfig, node string, timeout time.Duration) error {
	rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return fmt.Errorf("%s: %w", kubeconfig, err)
	}
	rc.Timeout = time.Minute
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	last := ""
	for {
		n, err := cs.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
		seen := ""
		if err != nil {
			seen = err.Error()
		} else {
			seen = "no Ready condition yet"
			for _, c := range n.Status.Conditions {
				if c.Type == corev1.NodeReady {
					if c.Status == corev1.ConditionTrue {
						fmt.Printf("kiln-bootstrap: node %s is Ready\n", node)
						return nil
					}
					seen = fmt.Sprintf("Ready=%s: %s", c.Status, c.Message)
				}
			}
		}
		if seen != last {
			fmt.Printf("kiln-bootstrap: node %s: %s\n", node, seen)
			last = seen
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("node %s not Ready after %v (last: %s)", node, timeout, last)
		case <-time.After(2 * time.Second):
		}
	}
}

// writeResult writes r to path (when asked) through a temporary file and
// a rename.
func writeResult(path string, r Result) error {
	if path == "" {
		return nil
	}
	return writeJSONFile(path, r)
}
