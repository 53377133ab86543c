package main

// Cluster validation: after the control plane is up, prove that the
// cluster does what a user will ask of it. Four checks run at once under
// one deadline (an emulated node is many times slower than a real one, and
// a check that waits on pods should not wait for the others first):
//
//	nodes        every Node Ready
//	kube-system  every kube-system pod Running and Ready
//	dns          a pod resolves kubernetes.default
//	service      a pod reaches a 2-replica Deployment through its Service
//
// The pods run the baked kiln-probe image in a namespace of their own
// (kiln-validation, or --namespace: one per node validating at the same
// time), made fresh for every run and deleted at the end.

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"
)

const (
	validationNamespace = "kiln-validation" // default; each validating node may have its own
	validationTimeout   = 20 * time.Minute
	pollInterval        = 2 * time.Second
	probeImage          = "kiln-probe" // repository basename in cluster.json
	probeAccount        = "kiln-probe" // our own ServiceAccount: no wait for the namespace's default one
	webName             = "web"
	webReplicas         = 2
	webPort             = 8080
)

// Check is one check's outcome; Validation is what --result receives.
type Check struct {
	Name    string  `json:"name"`
	Passed  bool    `json:"passed"`
	Detail  string  `json:"detail"`
	Seconds float64 `json:"seconds"`
}

type Validation struct {
	Passed  bool    `json:"passed"`
	Checks  []Check `json:"checks"`
	Seconds float64 `json:"seconds"`
}

func runValidate(args []string) error {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig with the rights to create a namespace and pods")
	info := fs.String("info", defaultInfoFile, "the image's cluster.json (baked image references)")
	result := fs.String("result", "", "write the outcome here (JSON)")
	timeout := fs.Duration("timeout", validationTimeout, "deadline for all checks together")
	namespace := fs.String("namespace", validationNamespace, "namespace made (and deleted) for the pods: one per node that validates at the same time")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *kubeconfig == "" {
		return errors.New("--kubeconfig is required")
	}
	if errs := validation.IsDNS1123Label(*namespace); len(errs) > 0 {
		return fmt.Errorf("--namespace %q: %s", *namespace, strings.Join(errs, "; "))
	}
	if *result != "" {
		// A result file is this run's, or none: not an earlier run's.
		if err := os.Remove(*result); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	_, cs, err := newClient(*kubeconfig)
	if err != nil {
		return err
	}
	v := &validator{cs: cs, ns: *namespace, interval: pollInterval, log: newLogger(os.Stderr)}
	v.metricsAPI = func(ctx context.Context) ([]byte, error) {
		return cs.Discovery().RESTClient().Get().AbsPath("/apis/metrics.k8s.io/v1beta1/nodes").DoRaw(ctx)
	}
	// Without the probe image the pod checks fail, saying why; the others
	// still run.
	if ci, err := readClusterInfo(*info); err != nil {
		v.probeErr = err
	} else if v.probe, err = ci.image(probeImage); err != nil {
		v.probeErr = err
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	return v.report(ctx, *result, os.Stdout)
}

// report runs the checks, prints one line for each, writes the result
// file (when asked) and fails when a check did.
func (v *validator) report(ctx context.Context, result string, out io.Writer) error {
	res := v.run(ctx)
	var failed []string
	for _, c := range res.Checks {
		fmt.Fprintln(out, checkLine(c))
		if !c.Passed {
			failed = append(failed, c.Name)
		}
	}
	if len(failed) == 0 {
		fmt.Fprintf(out, "kiln-bootstrap: validation passed: %d checks in %.1fs\n", len(res.Checks), res.Seconds)
	}
	if result != "" {
		if err := writeJSONFile(result, res); err != nil {
			return err
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("validation failed after %.1fs: %s", res.Seconds, strings.Join(failed, ", "))
	}
	return nil
}

// checkLine is the one line a check gets on stdout.
func checkLine(c Check) string {
	status := "passed"
	if !c.Passed {
		status = "FAILED"
	}
	return fmt.Sprintf("kiln-bootstrap: check %s %s (%.1fs): %s", c.Name, status, c.Seconds, c.Detail)
}

type validator struct {
	cs       kubernetes.Interface
	ns       string // made for the dns and service checks, deleted at the end
	probe    string // kiln-probe's baked reference
	probeErr error  // why there is none
	interval time.Duration
	log      func(format string, args ...any)
	// metricsAPI reads the metrics API's node list (GET
	// /apis/metrics.k8s.io/v1beta1/nodes); nil leaves the metrics check out.
	metricsAPI func(context.Context) ([]byte, error)

	prepareOnce sync.Once
	prepareErr  error
	prepared    bool // the namespace was made: delete it at the end
}

// newLogger serialises progress lines from the checks' goroutines.
func newLogger(w io.Writer) func(string, ...any) {
	var mu sync.Mutex
	return func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(w, "kiln-bootstrap: "+format+"\n", args...)
	}
}

// run runs every check until it passes, fails for good or ctx ends, then
// starts the namespace's deletion.
func (v *validator) run(ctx context.Context) Validation {
	start := time.Now()
	checks := []struct {
		name string
		fn   func(context.Context) (string, error)
	}{
		{"nodes", v.nodes},
		{"kube-system", v.kubeSystem},
		{"dns", v.dns},
		{"service", v.service},
	}
	if v.metricsAPI != nil {
		checks = append(checks, struct {
			name string
			fn   func(context.Context) (string, error)
		}{"metrics", v.metrics})
	}
	res := Validation{Checks: make([]Check, len(checks))}
	var wg sync.WaitGroup
	for i, c := range checks {
		wg.Go(func() {
			t := time.Now()
			detail, err := c.fn(ctx)
			if err != nil {
				detail = err.Error()
			}
			res.Checks[i] = Check{Name: c.name, Passed: err == nil, Detail: detail, Seconds: seconds(time.Since(t))}
		})
	}
	wg.Wait()
	if v.prepared {
		v.cleanup()
	}
	res.Passed = true
	for _, c := range res.Checks {
		res.Passed = res.Passed && c.Passed
	}
	res.Seconds = seconds(time.Since(start))
	return res
}

func seconds(d time.Duration) float64 { return math.Round(d.Seconds()*1000) / 1000 }

// poll calls f every interval until it is done, fails for good (err) or
// ctx ends; progress is logged whenever f's description changes. On
// timeout the error carries the last description.
func (v *validator) poll(ctx context.Context, what string, f func(context.Context) (done bool, detail string, err error)) (string, error) {
	start := time.Now()
	last := ""
	for {
		done, detail, err := f(ctx)
		if err != nil {
			return "", err
		}
		if done {
			return detail, nil
		}
		if ctx.Err() != nil && last != "" {
			detail = last // the call cut short by the deadline says nothing new
		}
		if detail != last {
			v.log("validate: %s: %s", what, detail)
			last = detail
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("not after %s: %s", time.Since(start).Round(100*time.Millisecond), last)
		case <-time.After(v.interval):
		}
	}
}

func (v *validator) nodes(ctx context.Context) (string, error) {
	return v.poll(ctx, "nodes", func(ctx context.Context) (bool, string, error) {
		list, err := v.cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err.Error(), nil
		}
		if len(list.Items) == 0 {
			return false, "no node registered", nil
		}
		var ready, not []string
		for _, n := range list.Items {
			if ok, why := nodeReady(&n); ok {
				ready = append(ready, n.Name)
			} else {
				not = append(not, n.Name+" ("+why+")")
			}
		}
		if len(not) > 0 {
			return false, "not Ready: " + strings.Join(not, "; "), nil
		}
		return true, fmt.Sprintf("%d Ready: %s", len(ready), strings.Join(ready, ", ")), nil
	})
}

// metrics passes when the metrics API (metrics-server behind the API
// server's aggregation layer) reports usage for every node: the add-on
// runs, the API server reaches its Service, and it reaches every kubelet.
// The detail gives each node's usage: the cluster's idle footprint.
func (v *validator) metrics(ctx context.Context) (string, error) {
	return v.poll(ctx, "metrics", func(ctx context.Context) (bool, string, error) {
		data, err := v.metricsAPI(ctx)
		if err != nil {
			return false, clip("metrics API: " + err.Error()), nil
		}
		var list struct {
			Items []struct {
				Metadata struct{ Name string }
				Usage    map[string]resource.Quantity
			}
		}
		if err := json.Unmarshal(data, &list); err != nil {
			return false, "metrics API: " + err.Error(), nil
		}
		nodes, err := v.cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err.Error(), nil
		}
		have := map[string]string{}
		for _, it := range list.Items {
			cpu, mem := it.Usage["cpu"], it.Usage["memory"]
			have[it.Metadata.Name] = fmt.Sprintf("%s cpu %dm memory %dMi", it.Metadata.Name, cpu.MilliValue(), mem.Value()>>20)
		}
		var got, missing []string
		for _, n := range nodes.Items {
			if u, ok := have[n.Name]; ok {
				got = append(got, u)
			} else {
				missing = append(missing, n.Name)
			}
		}
		sort.Strings(got)
		if len(missing) > 0 || len(got) == 0 {
			return false, fmt.Sprintf("no metrics yet for %s", strings.Join(missing, ", ")), nil
		}
		return true, strings.Join(got, "; "), nil
	})
}

func nodeReady(n *corev1.Node) (bool, string) {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue, clip(fmt.Sprintf("Ready=%s: %s", c.Status, c.Message))
		}
	}
	return false, "no Ready condition"
}

func (v *validator) kubeSystem(ctx context.Context) (string, error) {
	return v.poll(ctx, "kube-system", func(ctx context.Context) (bool, string, error) {
		list, err := v.cs.CoreV1().Pods(metav1.NamespaceSystem).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err.Error(), nil
		}
		n := 0
		var not []string
		for _, p := range list.Items {
			if p.Status.Phase == corev1.PodSucceeded {
				continue // a finished job's pod is not expected to run
			}
			n++
			if !podReady(&p) {
				not = append(not, describePod(&p))
			}
		}
		if n == 0 {
			return false, "no pod", nil
		}
		if len(not) > 0 {
			return false, fmt.Sprintf("%d of %d not Running and Ready: %s", len(not), n, strings.Join(not, "; ")), nil
		}
		return true, fmt.Sprintf("%d pods Running and Ready", n), nil
	})
}

func podReady(p *corev1.Pod) bool {
	if p.Status.Phase != corev1.PodRunning {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// describePod says in one line why a pod is not (yet) what was wanted:
// its phase, an unmet condition's reason, each container's state.
func describePod(p *corev1.Pod) string {
	var b strings.Builder
	b.WriteString(p.Name + ": " + string(p.Status.Phase))
	if p.Status.Phase == "" {
		b.WriteString("no status yet")
	}
	if p.Status.Reason != "" || p.Status.Message != "" {
		fmt.Fprintf(&b, " (%s: %s)", p.Status.Reason, clip(p.Status.Message))
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status != corev1.ConditionTrue {
			fmt.Fprintf(&b, ", not scheduled: %s: %s", c.Reason, clip(c.Message))
		}
	}
	statuses := append(append([]corev1.ContainerStatus(nil), p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...)
	for _, s := range statuses {
		fmt.Fprintf(&b, ", container %s ", s.Name)
		switch st := s.State; {
		case st.Waiting != nil:
			fmt.Fprintf(&b, "waiting: %s", st.Waiting.Reason)
			if st.Waiting.Message != "" {
				b.WriteString(": " + clip(st.Waiting.Message))
			}
		case st.Terminated != nil:
			fmt.Fprintf(&b, "terminated: %s, exit %d", st.Terminated.Reason, st.Terminated.ExitCode)
			if st.Terminated.Message != "" {
				b.WriteString(": " + clip(st.Terminated.Message))
			}
		case st.Running != nil && !s.Ready:
			b.WriteString("running, not ready")
		case st.Running != nil:
			b.WriteString("ready")
		default:
			b.WriteString("not started")
		}
		if s.RestartCount > 0 {
			fmt.Fprintf(&b, ", %d restarts", s.RestartCount)
			if t := s.LastTerminationState.Terminated; t != nil {
				fmt.Fprintf(&b, " (last: %s, exit %d)", t.Reason, t.ExitCode)
			}
		}
	}
	return b.String()
}

// clip keeps one long message from burying the others.
func clip(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 240 {
		return s[:240] + "..."
	}
	return s
}

func (v *validator) dns(ctx context.Context) (string, error) {
	if err := v.prepare(ctx); err != nil {
		return "", err
	}
	pod := v.probePod("dns", "lookup", "kubernetes.default", "--timeout", probeTimeout(ctx))
	if err := v.create(ctx, "dns", func(ctx context.Context) error {
		_, err := v.cs.CoreV1().Pods(v.ns).Create(ctx, pod, metav1.CreateOptions{})
		return err
	}); err != nil {
		return "", err
	}
	return v.waitPod(ctx, "dns", pod.Name)
}

func (v *validator) service(ctx context.Context) (string, error) {
	if err := v.prepare(ctx); err != nil {
		return "", err
	}
	dep, svc := v.web()
	if err := v.create(ctx, "service", func(ctx context.Context) error {
		_, err := v.cs.AppsV1().Deployments(v.ns).Create(ctx, dep, metav1.CreateOptions{})
		return err
	}); err != nil {
		return "", err
	}
	if err := v.create(ctx, "service", func(ctx context.Context) error {
		_, err := v.cs.CoreV1().Services(v.ns).Create(ctx, svc, metav1.CreateOptions{})
		return err
	}); err != nil {
		return "", err
	}
	if _, err := v.poll(ctx, "service", v.webReady); err != nil {
		return "", err
	}
	client := v.probePod("client", "get", v.webURL(), "--expect", "kiln-probe", "--timeout", probeTimeout(ctx))
	if err := v.create(ctx, "service", func(ctx context.Context) error {
		_, err := v.cs.CoreV1().Pods(v.ns).Create(ctx, client, metav1.CreateOptions{})
		return err
	}); err != nil {
		return "", err
	}
	out, err := v.waitPod(ctx, "service", client.Name)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%d replicas behind %s:80; %s", webReplicas, webName, out), nil
}

// webURL reaches the Service by name: DNS and the Service's virtual IP
// both take part.
func (v *validator) webURL() string { return "http://" + webName + "." + v.ns + ".svc/" }

// webReady is done when both replicas are ready (their readiness probe
// answered), so the Service has endpoints when the client asks.
func (v *validator) webReady(ctx context.Context) (bool, string, error) {
	d, err := v.cs.AppsV1().Deployments(v.ns).Get(ctx, webName, metav1.GetOptions{})
	if err != nil {
		return false, err.Error(), nil
	}
	if d.Status.ReadyReplicas >= webReplicas {
		return true, "", nil
	}
	detail := fmt.Sprintf("deployment %s: %d/%d ready", webName, d.Status.ReadyReplicas, webReplicas)
	pods, err := v.cs.CoreV1().Pods(v.ns).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=" + webName})
	if err == nil {
		for _, p := range pods.Items {
			if !podReady(&p) {
				detail += "; " + describePod(&p)
			}
		}
	}
	return false, detail, nil
}

// probeTimeout is what a probe pod gets to retry for: it gives up a
// minute before the deadline, so its own words reach the result.
func probeTimeout(ctx context.Context) string {
	d := 10 * time.Minute
	if dl, ok := ctx.Deadline(); ok {
		d = time.Until(dl) - time.Minute
	}
	return max(d, 20*time.Second).Truncate(time.Second).String()
}

// waitPod waits until a run-once pod ends: Succeeded passes with its log
// line, Failed fails with its state and log.
func (v *validator) waitPod(ctx context.Context, what, name string) (string, error) {
	var final *corev1.Pod
	_, err := v.poll(ctx, what, func(ctx context.Context) (bool, string, error) {
		p, err := v.cs.CoreV1().Pods(v.ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error(), nil
		}
		switch p.Status.Phase {
		case corev1.PodSucceeded, corev1.PodFailed:
			final = p
			return true, "", nil
		}
		return false, describePod(p), nil
	})
	if err != nil {
		return "", fmt.Errorf("%w%s", err, v.events(name))
	}
	logLine := v.lastLogLine(name)
	if final.Status.Phase == corev1.PodFailed {
		return "", fmt.Errorf("pod %s; log: %s%s", describePod(final), logLine, v.events(name))
	}
	return logLine, nil
}

// lastLogLine is the probe's verdict: the last line it printed.
func (v *validator) lastLogLine(pod string) string {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tail := int64(5)
	raw, err := v.cs.CoreV1().Pods(v.ns).GetLogs(pod, &corev1.PodLogOptions{Container: pod, TailLines: &tail}).Do(ctx).Raw()
	if err != nil {
		return "(no log: " + clip(err.Error()) + ")"
	}
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	return clip(lines[len(lines)-1])
}

// events are the last few things the cluster said about a pod, for a
// failure's detail.
func (v *validator) events(pod string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	list, err := v.cs.CoreV1().Events(v.ns).List(ctx, metav1.ListOptions{
		FieldSelector: "involvedObject.name=" + pod})
	if err != nil {
		return ""
	}
	var out []string
	for _, e := range list.Items {
		line := e.Reason + ": " + clip(e.Message)
		if e.InvolvedObject.Name == pod && !slices.Contains(out, line) {
			out = append(out, line)
		}
	}
	if len(out) > 3 {
		out = out[len(out)-3:]
	}
	if len(out) == 0 {
		return ""
	}
	return "; events: " + strings.Join(out, "; ")
}

// prepare makes the namespace once for dns and service. One left over
// from a run that did not finish is deleted first and waited for: its
// pods would answer for this run.
func (v *validator) prepare(ctx context.Context) error {
	v.prepareOnce.Do(func() { v.prepareErr = v.makeNamespace(ctx) })
	if v.probeErr != nil {
		return v.probeErr
	}
	return v.prepareErr
}

func (v *validator) makeNamespace(ctx context.Context) error {
	if v.probeErr != nil {
		return nil
	}
	nsc := v.cs.CoreV1().Namespaces()
	if _, err := v.poll(ctx, "namespace "+v.ns, func(ctx context.Context) (bool, string, error) {
		ns, err := nsc.Get(ctx, v.ns, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			return true, "", nil
		case err != nil:
			return false, err.Error(), nil
		case ns.DeletionTimestamp == nil:
			bg := metav1.DeletePropagationBackground
			if err := nsc.Delete(ctx, v.ns, metav1.DeleteOptions{PropagationPolicy: &bg}); err != nil && !apierrors.IsNotFound(err) {
				return false, "deleting the one left over: " + err.Error(), nil
			}
		case namespaceEmptied(ns) && namespaceStuck(ns) != "":
			// Emptied, but the namespace controller keeps it until
			// discovery of every API group works again: an aggregated
			// API that is not up (metrics-server starting, or broken)
			// holds it for ever. Its content was ours and is gone, so
			// its finalizer is removed here, as the controller would.
			ns.Spec.Finalizers = nil
			if _, err := nsc.Finalize(ctx, ns, metav1.UpdateOptions{}); err != nil && !apierrors.IsNotFound(err) {
				return false, "finalizing the one left over: " + err.Error(), nil
			}
			v.log("validate: namespace %s: emptied, finalized (%s)", v.ns, namespaceStuck(ns))
		}
		why := "left over from an earlier run, being deleted"
		if stuck := namespaceStuck(ns); stuck != "" {
			why += ": " + stuck
		}
		return false, why, nil
	}); err != nil {
		return err
	}
	v.prepared = true
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: v.ns, Labels: managedLabels(validationNamespace)}}
	if err := v.create(ctx, "namespace "+v.ns, func(ctx context.Context) error {
		_, err := nsc.Create(ctx, ns, metav1.CreateOptions{})
		return err
	}); err != nil {
		return err
	}
	sa := &corev1.ServiceAccount{
		ObjectMeta:                   metav1.ObjectMeta{Name: probeAccount, Namespace: v.ns, Labels: managedLabels(probeAccount)},
		AutomountServiceAccountToken: ptr(false),
	}
	return v.create(ctx, "namespace "+v.ns, func(ctx context.Context) error {
		_, err := v.cs.CoreV1().ServiceAccounts(v.ns).Create(ctx, sa, metav1.CreateOptions{})
		return err
	})
}

// namespaceEmptied says the namespace controller removed everything in a
// terminating namespace and nothing waits on a finalizer of its content.
func namespaceEmptied(ns *corev1.Namespace) bool {
	if ns == nil || ns.DeletionTimestamp == nil {
		return false
	}
	seen := 0
	for _, c := range ns.Status.Conditions {
		switch c.Type {
		case corev1.NamespaceContentRemaining, corev1.NamespaceFinalizersRemaining:
			if c.Status != corev1.ConditionFalse {
				return false
			}
			seen++
		}
	}
	return seen == 2
}

// namespaceStuck is why the namespace controller cannot finish: its
// failure conditions that hold.
func namespaceStuck(ns *corev1.Namespace) string {
	if ns == nil {
		return ""
	}
	var out []string
	for _, c := range ns.Status.Conditions {
		switch c.Type {
		case corev1.NamespaceDeletionDiscoveryFailure, corev1.NamespaceDeletionContentFailure, corev1.NamespaceDeletionGVParsingFailure:
			if c.Status == corev1.ConditionTrue {
				out = append(out, string(c.Type)+": "+clip(c.Message))
			}
		}
	}
	return strings.Join(out, "; ")
}

// create retries an object's creation through the API server's hiccups
// until ctx ends; an object already there (a retry whose first answer was
// lost) counts as created.
func (v *validator) create(ctx context.Context, what string, f func(context.Context) error) error {
	_, err := v.poll(ctx, what, func(ctx context.Context) (bool, string, error) {
		err := f(ctx)
		switch {
		case err == nil || apierrors.IsAlreadyExists(err):
			return true, "", nil
		case apierrors.IsInvalid(err) || apierrors.IsBadRequest(err):
			return false, "", err // ours to fix, not the cluster's
		}
		return false, err.Error(), nil
	})
	return err
}

// cleanup starts the namespace's deletion and does not wait for it.
func (v *validator) cleanup() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	bg := metav1.DeletePropagationBackground
	if err := v.cs.CoreV1().Namespaces().Delete(ctx, v.ns, metav1.DeleteOptions{PropagationPolicy: &bg}); err != nil && !apierrors.IsNotFound(err) {
		v.log("validate: deleting namespace %s: %v", v.ns, err)
	}
}

func managedLabels(name string) map[string]string {
	return map[string]string{"app.kubernetes.io/name": name, "app.kubernetes.io/managed-by": "kiln"}
}

// controlPlaneTolerations let a pod run on a one-node cluster, whose only
// node carries kubeadm's control-plane taint.
func controlPlaneTolerations() []corev1.Toleration {
	return []corev1.Toleration{{Key: "node-role.kubernetes.io/control-plane", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}}
}

// podSpec runs the probe image with args (its entrypoint is /kiln-probe)
// in one container; a probe pod's container has the pod's name.
// The node has no registry: the image is baked or the pod fails.
func (v *validator) podSpec(container string, restart corev1.RestartPolicy, args ...string) corev1.PodSpec {
	return corev1.PodSpec{
		RestartPolicy:                 restart,
		ServiceAccountName:            probeAccount,
		AutomountServiceAccountToken:  ptr(false),
		Tolerations:                   controlPlaneTolerations(),
		TerminationGracePeriodSeconds: ptr(int64(1)),
		Containers: []corev1.Container{{
			Name:            container,
			Image:           v.probe,
			ImagePullPolicy: corev1.PullNever,
			Args:            args,
		}},
	}
}

func (v *validator) probePod(name string, args ...string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: v.ns, Labels: managedLabels("kiln-probe-" + name)},
		Spec:       v.podSpec(name, corev1.RestartPolicyNever, args...),
	}
}

// web is the Deployment and the Service the service check reaches.
func (v *validator) web() (*appsv1.Deployment, *corev1.Service) {
	labels := managedLabels(webName)
	selector := map[string]string{"app.kubernetes.io/name": webName}
	spec := v.podSpec(webName, corev1.RestartPolicyAlways, "serve", "--listen", fmt.Sprintf(":%d", webPort))
	c := &spec.Containers[0]
	c.Ports = []corev1.ContainerPort{{Name: "http", ContainerPort: webPort, Protocol: corev1.ProtocolTCP}}
	// Ready only once it answers: the Service then sends the client to
	// a replica that listens. Generous timeout: emulated nodes are slow.
	c.ReadinessProbe = &corev1.Probe{
		ProbeHandler:   corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/", Port: intstr.FromInt32(webPort)}},
		PeriodSeconds:  2,
		TimeoutSeconds: 5,
	}
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: webName, Namespace: v.ns, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr(int32(webReplicas)),
			Selector: &metav1.LabelSelector{MatchLabels: selector},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: spec},
		},
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: webName, Namespace: v.ns, Labels: labels},
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeClusterIP,
			Selector: selector,
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(webPort), Protocol: corev1.ProtocolTCP}},
		},
	}
	return dep, svc
}

func ptr[T any](v T) *T { return &v }
