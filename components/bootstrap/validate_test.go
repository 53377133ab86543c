package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"
	"k8s.io/klog/v2"
)

// fakeCluster is client-go's fake clientset plus the little of a kubelet
// and of the controllers the checks depend on: run-once probe pods end
// as told, the web Deployment becomes ready (or its pod cannot start),
// and a deleted namespace terminates, taking its objects with it.
type fakeCluster struct {
	t  *testing.T
	cs *fake.Clientset

	mu       sync.Mutex
	outcome  map[string]corev1.ContainerStateTerminated // probe pod name -> how it ends
	logs     map[string]string                          // container -> log
	webReady bool
	created  map[string]runtime.Object // "resource/name" -> what was created last
	all      []runtime.Object          // everything created, in order

	stuckNamespace []corev1.NamespaceCondition // a deleted namespace stays with these
	finalized      int                         // namespaces/finalize calls
}

const testProbe = "localhost/kiln-probe:v0.1.0" // testdata/cluster.json's

func newFakeCluster(t *testing.T, objs ...runtime.Object) *fakeCluster {
	f := &fakeCluster{
		t:  t,
		cs: fake.NewClientset(objs...),
		outcome: map[string]corev1.ContainerStateTerminated{
			"dns":    {Reason: "Completed", ExitCode: 0},
			"client": {Reason: "Completed", ExitCode: 0},
		},
		logs: map[string]string{
			"dns":    "kubernetes.default: 10.96.0.1\n",
			"client": "http://web.kiln-validation.svc/: 200 kiln-probe web-5d8f-abcde\n",
		},
		webReady: true,
		created:  map[string]runtime.Object{},
	}
	f.cs.PrependReactor("create", "*", func(a clienttesting.Action) (bool, runtime.Object, error) {
		obj := a.(clienttesting.CreateAction).GetObject()
		m, _ := metaName(obj)
		f.mu.Lock()
		f.created[a.GetResource().Resource+"/"+m] = obj.DeepCopyObject()
		f.all = append(f.all, obj.DeepCopyObject())
		f.mu.Unlock()
		return false, nil, nil
	})
	f.cs.PrependReactor("get", "pods", func(a clienttesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() != "log" {
			return false, nil, nil
		}
		opts := a.(clienttesting.GenericAction).GetValue().(*corev1.PodLogOptions)
		f.mu.Lock()
		defer f.mu.Unlock()
		return true, &runtime.Unknown{Raw: []byte(f.logs[opts.Container])}, nil
	})
	f.cs.PrependReactor("delete", "namespaces", f.deleteNamespace)
	f.cs.PrependReactor("create", "namespaces", f.finalizeNamespace)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); f.kubelet(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return f
}

func metaName(obj runtime.Object) (string, error) {
	type named interface{ GetName() string }
	if n, ok := obj.(named); ok {
		return n.GetName(), nil
	}
	return "", nil
}

var namespacesGVR = schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}

// deleteNamespace marks the namespace Terminating, as the API server
// does; a moment later its contents and then the namespace are gone.
func (f *fakeCluster) deleteNamespace(a clienttesting.Action) (bool, runtime.Object, error) {
	name := a.(clienttesting.DeleteAction).GetName()
	obj, err := f.cs.Tracker().Get(namespacesGVR, "", name)
	if err != nil {
		return true, nil, err
	}
	ns := obj.(*corev1.Namespace).DeepCopy()
	if ns.DeletionTimestamp != nil {
		return true, ns, nil
	}
	now := metav1.Now()
	ns.DeletionTimestamp = &now
	ns.Status.Phase = corev1.NamespaceTerminating
	if err := f.cs.Tracker().Update(namespacesGVR, ns, ""); err != nil {
		return true, nil, err
	}
	go func() {
		time.Sleep(20 * time.Millisecond)
		ctx := context.Background()
		core := f.cs.CoreV1()
		if l, err := core.Pods(name).List(ctx, metav1.ListOptions{}); err == nil {
			for _, p := range l.Items {
				core.Pods(name).Delete(ctx, p.Name, metav1.DeleteOptions{})
			}
		}
		if l, err := core.Services(name).List(ctx, metav1.ListOptions{}); err == nil {
			for _, s := range l.Items {
				core.Services(name).Delete(ctx, s.Name, metav1.DeleteOptions{})
			}
		}
		if l, err := core.ServiceAccounts(name).List(ctx, metav1.ListOptions{}); err == nil {
			for _, s := range l.Items {
				core.ServiceAccounts(name).Delete(ctx, s.Name, metav1.DeleteOptions{})
			}
		}
		if l, err := f.cs.AppsV1().Deployments(name).List(ctx, metav1.ListOptions{}); err == nil {
			for _, d := range l.Items {
				f.cs.AppsV1().Deployments(name).Delete(ctx, d.Name, metav1.DeleteOptions{})
			}
		}
		f.mu.Lock()
		stuck := f.stuckNamespace
		f.mu.Unlock()
		if stuck == nil {
			f.cs.Tracker().Delete(namespacesGVR, "", name)
			return
		}
		// The namespace controller could not list an API group: the
		// namespace stays, saying why.
		obj, err := f.cs.Tracker().Get(namespacesGVR, "", name)
		if err != nil {
			return
		}
		ns := obj.(*corev1.Namespace).DeepCopy()
		ns.Status.Conditions = stuck
		f.cs.Tracker().Update(namespacesGVR, ns, "")
	}()
	return true, ns, nil
}

// finalizeNamespace is the API server's namespaces/finalize: a
// terminating namespace left with no finalizer is gone.
func (f *fakeCluster) finalizeNamespace(a clienttesting.Action) (bool, runtime.Object, error) {
	if a.GetSubresource() != "finalize" {
		return false, nil, nil
	}
	ns := a.(clienttesting.CreateAction).GetObject().(*corev1.Namespace)
	f.mu.Lock()
	f.finalized++
	f.mu.Unlock()
	if ns.DeletionTimestamp != nil && len(ns.Spec.Finalizers) == 0 {
		return true, ns, f.cs.Tracker().Delete(namespacesGVR, "", ns.Name)
	}
	return true, ns, f.cs.Tracker().Update(namespacesGVR, ns, "")
}

// kubelet ends the probe pods and readies the web Deployment (or gives it
// a pod that cannot start).
func (f *fakeCluster) kubelet(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(2 * time.Millisecond):
		}
		pods := f.cs.CoreV1().Pods(metav1.NamespaceAll)
		if l, err := pods.List(ctx, metav1.ListOptions{}); err == nil {
			for _, p := range l.Items {
				f.mu.Lock()
				end, ok := f.outcome[p.Name]
				f.mu.Unlock()
				if !ok || p.Status.Phase != "" || p.Namespace == metav1.NamespaceSystem {
					continue
				}
				p.Status.Phase = corev1.PodSucceeded
				if end.ExitCode != 0 {
					p.Status.Phase = corev1.PodFailed
				}
				p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: p.Name, State: corev1.ContainerState{Terminated: &end}}}
				f.cs.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, &p, metav1.UpdateOptions{})
			}
		}
		l, err := f.cs.AppsV1().Deployments(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
		if err != nil {
			continue
		}
		f.mu.Lock()
		ready := f.webReady
		f.mu.Unlock()
		for _, d := range l.Items {
			if d.Name != webName {
				continue
			}
			if ready && d.Status.ReadyReplicas < *d.Spec.Replicas {
				d.Status.ReadyReplicas = *d.Spec.Replicas
				f.cs.AppsV1().Deployments(d.Namespace).UpdateStatus(ctx, &d, metav1.UpdateOptions{})
			}
			if !ready {
				p := &corev1.Pod{
					ObjectMeta: metav1.ObjectMeta{Name: "web-5d8f-abcde", Namespace: d.Namespace, Labels: d.Spec.Template.Labels},
					Status: corev1.PodStatus{Phase: corev1.PodPending, ContainerStatuses: []corev1.ContainerStatus{{
						Name: webName, State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{
							Reason: "ErrImageNeverPull", Message: `Container image "` + testProbe + `" is not present with pull policy of Never`}}}}},
				}
				f.cs.CoreV1().Pods(d.Namespace).Create(ctx, p, metav1.CreateOptions{})
			}
		}
	}
}

// set changes what the fake kubelet does, under its lock.
func (f *fakeCluster) set(change func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	change()
}

func (f *fakeCluster) createdObj(key string) runtime.Object {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.created[key]
}

func (f *fakeCluster) validator() *validator {
	return &validator{cs: f.cs, ns: validationNamespace, probe: testProbe, interval: 5 * time.Millisecond, log: func(format string, args ...any) {
		f.t.Logf(format, args...)
	}}
}

func (f *fakeCluster) createdPod(name string) *corev1.Pod {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, _ := f.created["pods/"+name].(*corev1.Pod)
	return p
}

func readyNode(name string) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{
		{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse},
		{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Message: "kubelet is posting ready status"},
	}}}
}

func notReadyNode(name, msg string) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{
		{Type: corev1.NodeReady, Status: corev1.ConditionFalse, Reason: "KubeletNotReady", Message: msg},
	}}}
}

func systemPod(name string, phase corev1.PodPhase, ready bool, cs ...corev1.ContainerStatus) *corev1.Pod {
	st := corev1.ConditionFalse
	if ready {
		st = corev1.ConditionTrue
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: metav1.NamespaceSystem},
		Status: corev1.PodStatus{Phase: phase, ContainerStatuses: cs,
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: st}}},
	}
}

// healthy is a one-node cluster as kubeadm leaves it, plus a finished pod
// (which the kube-system check ignores).
func healthy() []runtime.Object {
	return []runtime.Object{
		readyNode("cp1"),
		systemPod("etcd-cp1", corev1.PodRunning, true),
		systemPod("coredns-6d4b-x2x7q", corev1.PodRunning, true),
		systemPod("kiln-once-xyz", corev1.PodSucceeded, false),
	}
}

func runFor(t *testing.T, v *validator, d time.Duration) Validation {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	res := v.run(ctx)
	for _, c := range res.Checks {
		t.Log(checkLine(c))
	}
	return res
}

func check(t *testing.T, res Validation, name string) Check {
	t.Helper()
	for _, c := range res.Checks {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no check %s in %+v", name, res)
	return Check{}
}

func TestValidatePasses(t *testing.T) {
	f := newFakeCluster(t, healthy()...)
	res := runFor(t, f.validator(), 30*time.Second)
	if !res.Passed {
		t.Fatalf("validation failed: %+v", res)
	}
	var names []string
	for _, c := range res.Checks {
		names = append(names, c.Name)
		if !c.Passed || c.Seconds < 0 || c.Seconds > res.Seconds {
			t.Errorf("check %+v (total %.3fs)", c, res.Seconds)
		}
	}
	if want := []string{"nodes", "kube-system", "dns", "service"}; !slices.Equal(names, want) {
		t.Errorf("checks %v, want %v", names, want)
	}
	for name, want := range map[string]string{
		"nodes":       "1 Ready: cp1",
		"kube-system": "2 pods Running and Ready",
		"dns":         "kubernetes.default: 10.96.0.1",
		"service":     "2 replicas behind web:80; http://web.kiln-validation.svc/: 200 kiln-probe web-5d8f-abcde",
	} {
		if got := check(t, res, name).Detail; got != want {
			t.Errorf("%s: detail %q, want %q", name, got, want)
		}
	}

	// The probe pods: the baked image, never pulled, run once, allowed on
	// a control-plane node, with the probe's arguments.
	for name, args := range map[string][]string{
		"dns":    {"lookup", "kubernetes.default", "--timeout"},
		"client": {"get", "http://web.kiln-validation.svc/", "--expect", "kiln-probe", "--timeout"},
	} {
		p := f.createdPod(name)
		if p == nil {
			t.Fatalf("no pod %s created", name)
		}
		if p.Namespace != validationNamespace || p.Spec.RestartPolicy != corev1.RestartPolicyNever {
			t.Errorf("pod %s: namespace %q restartPolicy %q", name, p.Namespace, p.Spec.RestartPolicy)
		}
		assertProbeSpec(t, "pod "+name, p.Spec, args)
		timeout := p.Spec.Containers[0].Args[len(args)]
		if d, err := time.ParseDuration(timeout); err != nil || d <= 0 || d > 30*time.Second {
			t.Errorf("pod %s: --timeout %q, want a duration within the 30s deadline", name, timeout)
		}
	}
	dep, _ := f.createdObj("deployments/web").(*appsv1.Deployment)
	svc, _ := f.createdObj("services/web").(*corev1.Service)
	if dep == nil || svc == nil {
		t.Fatalf("web Deployment %v, Service %v: not both created", dep != nil, svc != nil)
	}
	if *dep.Spec.Replicas != 2 {
		t.Errorf("web replicas %d, want 2", *dep.Spec.Replicas)
	}
	assertProbeSpec(t, "deployment web", dep.Spec.Template.Spec, []string{"serve", "--listen", ":8080"})
	if p := svc.Spec.Ports; svc.Spec.Type != corev1.ServiceTypeClusterIP || len(p) != 1 || p[0].Port != 80 || p[0].TargetPort.IntValue() != 8080 {
		t.Errorf("service web: type %q ports %+v, want ClusterIP 80 -> 8080", svc.Spec.Type, p)
	}
	for k, v := range svc.Spec.Selector {
		if dep.Spec.Template.Labels[k] != v || dep.Spec.Selector.MatchLabels[k] != v {
			t.Errorf("service selector %s=%s does not select the deployment's pods %v", k, v, dep.Spec.Template.Labels)
		}
	}
	if len(svc.Spec.Selector) == 0 {
		t.Error("service web has no selector")
	}

	// The namespace is being deleted, not waited for.
	ns, err := f.cs.CoreV1().Namespaces().Get(context.Background(), validationNamespace, metav1.GetOptions{})
	if err == nil && ns.DeletionTimestamp == nil {
		t.Errorf("namespace %s still active after the run", validationNamespace)
	} else if err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
}

func assertProbeSpec(t *testing.T, what string, spec corev1.PodSpec, argsPrefix []string) {
	t.Helper()
	if len(spec.Containers) != 1 {
		t.Fatalf("%s: %d containers", what, len(spec.Containers))
	}
	c := spec.Containers[0]
	if c.Image != testProbe || c.ImagePullPolicy != corev1.PullNever {
		t.Errorf("%s: image %q pull %q, want %q Never", what, c.Image, c.ImagePullPolicy, testProbe)
	}
	if len(c.Command) != 0 || len(c.Args) < len(argsPrefix) || !slices.Equal(c.Args[:len(argsPrefix)], argsPrefix) {
		t.Errorf("%s: command %q args %q, want the image's entrypoint with %q...", what, c.Command, c.Args, argsPrefix)
	}
	tolerated := false
	for _, tol := range spec.Tolerations {
		taint := corev1.Taint{Key: "node-role.kubernetes.io/control-plane", Effect: corev1.TaintEffectNoSchedule}
		tolerated = tolerated || tol.ToleratesTaint(klog.Background(), &taint, false)
	}
	if !tolerated {
		t.Errorf("%s: tolerations %+v do not tolerate the control-plane taint", what, spec.Tolerations)
	}
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		t.Errorf("%s: mounts a service account token", what)
	}
}

func TestValidateNodeNotReady(t *testing.T) {
	objs := append(healthy(), notReadyNode("w1", "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady"))
	f := newFakeCluster(t, objs...)
	res := runFor(t, f.validator(), time.Second)
	c := check(t, res, "nodes")
	if res.Passed || c.Passed {
		t.Fatalf("passed with a NotReady node: %+v", res)
	}
	if !strings.Contains(c.Detail, "not Ready: w1 (Ready=False: container runtime network not ready") || strings.Contains(c.Detail, "cp1") {
		t.Errorf("nodes detail %q: want w1 named with its Ready message, and only w1", c.Detail)
	}
	if !strings.HasPrefix(c.Detail, "not after ") {
		t.Errorf("nodes detail %q: want it to say the deadline passed", c.Detail)
	}
}

func TestValidateCrashLoop(t *testing.T) {
	crash := corev1.ContainerStatus{
		Name:         "metrics-server",
		RestartCount: 4,
		State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff",
			Message: "back-off 40s restarting failed container=metrics-server pod=metrics-server-7d9c-q8z2k_kube-system"}},
		LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: "Error", ExitCode: 1}},
	}
	objs := append(healthy(), systemPod("metrics-server-7d9c-q8z2k", corev1.PodRunning, false, crash))
	f := newFakeCluster(t, objs...)
	res := runFor(t, f.validator(), time.Second)
	c := check(t, res, "kube-system")
	if c.Passed {
		t.Fatalf("kube-system passed with a pod in CrashLoopBackOff: %+v", c)
	}
	for _, want := range []string{"1 of 3 not Running and Ready", "metrics-server-7d9c-q8z2k: Running", "container metrics-server waiting: CrashLoopBackOff: back-off 40s",
		"4 restarts (last: Error, exit 1)"} {
		if !strings.Contains(c.Detail, want) {
			t.Errorf("kube-system detail %q: no %q", c.Detail, want)
		}
	}
	if strings.Contains(c.Detail, "etcd") || strings.Contains(c.Detail, "coredns") {
		t.Errorf("kube-system detail %q names ready pods", c.Detail)
	}
	if !check(t, res, "nodes").Passed {
		t.Error("nodes failed on a healthy node")
	}
}

func TestValidatePendingSystemPod(t *testing.T) {
	p := systemPod("coredns-6d4b-zz9", corev1.PodPending, false)
	p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{Type: corev1.PodScheduled, Status: corev1.ConditionFalse,
		Reason: "Unschedulable", Message: "0/1 nodes are available: 1 node(s) had untolerated taint {node.kubernetes.io/not-ready: }."})
	f := newFakeCluster(t, append(healthy(), p)...)
	c := check(t, runFor(t, f.validator(), 500*time.Millisecond), "kube-system")
	if c.Passed || !strings.Contains(c.Detail, "coredns-6d4b-zz9: Pending, not scheduled: Unschedulable: 0/1 nodes are available") {
		t.Errorf("kube-system %+v: want the pending pod and why", c)
	}
}

func TestValidateProbePodsFail(t *testing.T) {
	f := newFakeCluster(t, healthy()...)
	f.set(func() {
		f.outcome["dns"] = corev1.ContainerStateTerminated{Reason: "Error", ExitCode: 1, Message: "lookup kubernetes.default: i/o timeout"}
		f.outcome["client"] = corev1.ContainerStateTerminated{Reason: "Error", ExitCode: 2}
		f.logs["dns"] = "kiln-probe: lookup kubernetes.default: i/o timeout\n"
		f.logs["client"] = "starting\nkiln-probe: GET http://web.kiln-validation.svc/: connection refused\n"
	})
	res := runFor(t, f.validator(), 30*time.Second)
	if res.Passed {
		t.Fatal("passed with failed probe pods")
	}
	dns, svc := check(t, res, "dns"), check(t, res, "service")
	for _, c := range []struct {
		check Check
		want  []string
	}{
		{dns, []string{"pod dns: Failed", "terminated: Error, exit 1: lookup kubernetes.default: i/o timeout", "log: kiln-probe: lookup kubernetes.default: i/o timeout"}},
		{svc, []string{"pod client: Failed", "terminated: Error, exit 2", "log: kiln-probe: GET http://web.kiln-validation.svc/: connection refused"}},
	} {
		if c.check.Passed {
			t.Errorf("%s passed", c.check.Name)
		}
		for _, w := range c.want {
			if !strings.Contains(c.check.Detail, w) {
				t.Errorf("%s detail %q: no %q", c.check.Name, c.check.Detail, w)
			}
		}
		// A pod that failed is a verdict: no waiting for the deadline.
		if strings.HasPrefix(c.check.Detail, "not after") {
			t.Errorf("%s waited for the deadline: %q", c.check.Name, c.check.Detail)
		}
	}
	if !check(t, res, "nodes").Passed || !check(t, res, "kube-system").Passed {
		t.Errorf("nodes or kube-system failed on a healthy cluster: %+v", res)
	}
}

func TestValidateWebNotReady(t *testing.T) {
	f := newFakeCluster(t, healthy()...)
	f.set(func() { f.webReady = false })
	c := check(t, runFor(t, f.validator(), time.Second), "service")
	if c.Passed {
		t.Fatal("service passed with no ready replica")
	}
	for _, w := range []string{"not after", "deployment web: 0/2 ready", "web-5d8f-abcde: Pending, container web waiting: ErrImageNeverPull"} {
		if !strings.Contains(c.Detail, w) {
			t.Errorf("service detail %q: no %q", c.Detail, w)
		}
	}
	if f.createdPod("client") != nil {
		t.Error("the client pod was started before the Deployment was ready")
	}
}

// A namespace left over by a run that crashed (with its pods) is deleted
// and waited for; running twice in a row works.
func TestValidateRerun(t *testing.T) {
	stale := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "dns", Namespace: validationNamespace},
		Status:     corev1.PodStatus{Phase: corev1.PodFailed},
	}
	leftover := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: validationNamespace}}
	f := newFakeCluster(t, append(healthy(), leftover, stale)...)
	for run := 1; run <= 2; run++ {
		res := runFor(t, f.validator(), 30*time.Second)
		if !res.Passed {
			t.Fatalf("run %d: %+v", run, res)
		}
		if p := f.createdPod("dns"); p == nil || p.Status.Phase != "" {
			t.Fatalf("run %d: no fresh dns pod created", run)
		}
		f.set(func() { f.created = map[string]runtime.Object{} })
	}
}

// An aggregated API that does not answer keeps an emptied namespace from
// going: validate finalizes it. One that still has content is left to
// the namespace controller, and the failure says why.
func TestValidateStuckNamespace(t *testing.T) {
	discovery := corev1.NamespaceCondition{Type: corev1.NamespaceDeletionDiscoveryFailure, Status: corev1.ConditionTrue,
		Message: "Discovery failed for some groups, 1 failing: unable to retrieve the complete list of server APIs: metrics.k8s.io/v1beta1: stale GroupVersion discovery: metrics.k8s.io/v1beta1"}
	emptied := []corev1.NamespaceCondition{discovery,
		{Type: corev1.NamespaceContentRemaining, Status: corev1.ConditionFalse},
		{Type: corev1.NamespaceFinalizersRemaining, Status: corev1.ConditionFalse}}
	busy := []corev1.NamespaceCondition{discovery,
		{Type: corev1.NamespaceContentRemaining, Status: corev1.ConditionTrue, Message: "Some resources are remaining: pods. has 1 resource instances"},
		{Type: corev1.NamespaceFinalizersRemaining, Status: corev1.ConditionFalse}}

	leftover := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: validationNamespace}, Spec: corev1.NamespaceSpec{Finalizers: []corev1.FinalizerName{corev1.FinalizerKubernetes}}}
	f := newFakeCluster(t, append(healthy(), leftover)...)
	f.set(func() { f.stuckNamespace = emptied })
	res := runFor(t, f.validator(), 30*time.Second)
	if !res.Passed || f.finalized == 0 {
		t.Fatalf("emptied stuck namespace: %d finalize calls, %+v", f.finalized, res)
	}

	f = newFakeCluster(t, append(healthy(), leftover)...)
	f.set(func() { f.stuckNamespace = busy })
	res = runFor(t, f.validator(), time.Second)
	c := check(t, res, "dns")
	if c.Passed || f.finalized != 0 {
		t.Fatalf("namespace with content: %d finalize calls, dns %+v", f.finalized, c)
	}
	if want := "left over from an earlier run, being deleted: NamespaceDeletionDiscoveryFailure: Discovery failed"; !strings.Contains(c.Detail, want) {
		t.Errorf("dns detail %q: no %q", c.Detail, want)
	}
}

// Two nodes validating at once, each in its own namespace, do not delete
// each other's pods.
func TestValidateTwoNodesAtOnce(t *testing.T) {
	f := newFakeCluster(t, healthy()...)
	var wg sync.WaitGroup
	results := map[string]Validation{}
	var mu sync.Mutex
	for _, ns := range []string{"kiln-validation-cp1", "kiln-validation-cp2"} {
		v := f.validator()
		v.ns = ns
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			res := v.run(ctx)
			mu.Lock()
			results[ns] = res
			mu.Unlock()
		})
	}
	wg.Wait()
	for ns, res := range results {
		if !res.Passed {
			t.Errorf("%s: %+v", ns, res)
		}
	}
	// Each client asked its own namespace's Service.
	f.mu.Lock()
	defer f.mu.Unlock()
	asked := map[string]string{}
	for _, o := range f.all {
		if p, ok := o.(*corev1.Pod); ok && p.Name == "client" {
			asked[p.Namespace] = p.Spec.Containers[0].Args[1]
		}
	}
	want := map[string]string{
		"kiln-validation-cp1": "http://web.kiln-validation-cp1.svc/",
		"kiln-validation-cp2": "http://web.kiln-validation-cp2.svc/",
	}
	if !maps.Equal(asked, want) {
		t.Errorf("client pods asked %v, want %v", asked, want)
	}
}

func TestValidateNoProbeImage(t *testing.T) {
	f := newFakeCluster(t, healthy()...)
	v := f.validator()
	ci, err := readClusterInfo("testdata/cluster-noprobe.json")
	if err != nil {
		t.Fatal(err)
	}
	v.probe, v.probeErr = ci.image(probeImage)
	if v.probeErr == nil {
		t.Fatalf("found a probe image %q in testdata/cluster-noprobe.json", v.probe)
	}
	res := runFor(t, v, 30*time.Second)
	for _, name := range []string{"dns", "service"} {
		c := check(t, res, name)
		if c.Passed || c.Detail != "testdata/cluster-noprobe.json: images: no kiln-probe image among 2" {
			t.Errorf("%s: %+v, want a failure naming the file and the image", name, c)
		}
	}
	if !check(t, res, "nodes").Passed || !check(t, res, "kube-system").Passed {
		t.Errorf("the other checks did not run: %+v", res)
	}
	if _, err := f.cs.CoreV1().Namespaces().Get(context.Background(), validationNamespace, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("namespace made with nothing to run in it (err %v)", err)
	}
}

// The result file and the stdout lines initd reads.
func TestReport(t *testing.T) {
	dir := t.TempDir()
	result := filepath.Join(dir, "validation.json")
	for _, pass := range []bool{true, false} {
		objs := healthy()
		if !pass {
			objs = append(objs, notReadyNode("w1", "PLEG is not healthy"))
		}
		f := newFakeCluster(t, objs...)
		var out bytes.Buffer
		deadline := 30 * time.Second // passing takes milliseconds
		if !pass {
			deadline = time.Second // the NotReady node fails at the deadline
		}
		ctx, cancel := context.WithTimeout(context.Background(), deadline)
		err := f.validator().report(ctx, result, &out)
		cancel()
		if (err == nil) != pass {
			t.Fatalf("pass=%v: report returned %v", pass, err)
		}
		if !pass && (!strings.HasPrefix(err.Error(), "validation failed after ") || !strings.HasSuffix(err.Error(), "s: nodes")) {
			t.Errorf("error %q: want the failed check named", err)
		}
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		want := 4
		if pass {
			want = 5
		}
		if len(lines) != want {
			t.Errorf("pass=%v: stdout %q: want %d lines", pass, out.String(), want)
		}
		for i, name := range []string{"nodes", "kube-system", "dns", "service"} {
			if !strings.HasPrefix(lines[i], "kiln-bootstrap: check "+name+" ") {
				t.Errorf("line %d %q: want check %s", i, lines[i], name)
			}
		}

		data, err := os.ReadFile(result)
		if err != nil {
			t.Fatal(err)
		}
		var shape map[string]json.RawMessage
		if err := json.Unmarshal(data, &shape); err != nil {
			t.Fatal(err)
		}
		if keys := sortedKeys(shape); !slices.Equal(keys, []string{"checks", "passed", "seconds"}) {
			t.Errorf("result keys %v", keys)
		}
		var checks []map[string]json.RawMessage
		if err := json.Unmarshal(shape["checks"], &checks); err != nil || len(checks) != 4 {
			t.Fatalf("checks %s: %v", shape["checks"], err)
		}
		for _, c := range checks {
			if keys := sortedKeys(c); !slices.Equal(keys, []string{"detail", "name", "passed", "seconds"}) {
				t.Errorf("check keys %v", keys)
			}
		}
		var res Validation
		if err := json.Unmarshal(data, &res); err != nil || res.Passed != pass || res.Checks[0].Passed != pass {
			t.Errorf("pass=%v: result %s (%v)", pass, data, err)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("temporary files left beside the result: %v", entries)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func TestClusterInfo(t *testing.T) {
	ci, err := readClusterInfo("testdata/cluster.json")
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		"kiln-probe":     testProbe,
		"metrics-server": "registry.example.test/metrics-server/metrics-server:v0.9.0",
		"pause":          "registry.example.test/pause:3.10",
	} {
		if got, err := ci.image(name); got != want || err != nil {
			t.Errorf("image(%q) = %q, %v; want %q", name, got, err, want)
		}
	}
	if _, err := ci.image("kube"); err == nil || !strings.Contains(err.Error(), "testdata/cluster.json: images: no kube image") {
		t.Errorf("image(kube): %v", err)
	}
	for ref, want := range map[string]string{
		"host.example.test:5000/a/b:v1":     "b",
		"b@sha256:0123456789abcdef":         "b",
		"host.example.test:5000/kiln-probe": "kiln-probe",
		"a/b:v1@sha256:0123456789abcdef":    "b",
	} {
		if got := repoBase(ref); got != want {
			t.Errorf("repoBase(%q) = %q, want %q", ref, got, want)
		}
	}
	dir := t.TempDir()
	for content, want := range map[string]string{
		`{"images": [`:    "bad.json: unexpected end of JSON input",
		`{"images": []}`:  "bad.json: images: empty",
		`{"images": "a"}`: "bad.json: json: cannot unmarshal string",
	} {
		p := filepath.Join(dir, "bad.json")
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := readClusterInfo(p); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want %q", content, err, want)
		}
	}
}

// The metrics check waits until the metrics API reports every node, and
// its detail is each node's usage.
func TestMetricsCheck(t *testing.T) {
	f := newFakeCluster(t, readyNode("cp1"), readyNode("w1"))
	v := f.validator()
	var mu sync.Mutex
	answers := []string{
		"", // the APIService is not available yet
		`{"items":[{"metadata":{"name":"cp1"},"usage":{"cpu":"250m","memory":"943718400"}}]}`,
		`{"items":[{"metadata":{"name":"cp1"},"usage":{"cpu":"250m","memory":"943718400"}},{"metadata":{"name":"w1"},"usage":{"cpu":"31415n","memory":"512Mi"}}]}`,
	}
	calls := 0
	v.metricsAPI = func(context.Context) ([]byte, error) {
		mu.Lock()
		defer mu.Unlock()
		a := answers[min(calls, len(answers)-1)]
		calls++
		if a == "" {
			return nil, errors.New("the server is currently unable to handle the request")
		}
		return []byte(a), nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	detail, err := v.metrics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := "cp1 cpu 250m memory 900Mi; w1 cpu 1m memory 512Mi"; detail != want {
		t.Errorf("detail %q, want %q", detail, want)
	}
	if calls != 3 {
		t.Errorf("%d calls to the metrics API, want 3 (passed before every node had metrics?)", calls)
	}
	// A metrics API that never answers fails the check at the deadline, saying so.
	v.metricsAPI = func(context.Context) ([]byte, error) { return nil, errors.New("503 Service Unavailable") }
	short, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel2()
	if _, err := v.metrics(short); err == nil || !strings.Contains(err.Error(), "503 Service Unavailable") {
		t.Errorf("unavailable metrics API: %v", err)
	}
}
