package main

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/util/managedfields"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"
	"k8s.io/klog/v2"
)

func bakedMetricsServer(t *testing.T) string {
	t.Helper()
	ci, err := readClusterInfo("testdata/cluster.json")
	if err != nil {
		t.Fatal(err)
	}
	image, err := ci.image(metricsServer)
	if err != nil {
		t.Fatal(err)
	}
	return image
}

func TestMetricsServerObjects(t *testing.T) {
	image := bakedMetricsServer(t)
	var dep *appsv1.Deployment
	kinds := map[string]int{}
	for _, o := range metricsServerObjects(image) {
		kind := o.GetObjectKind().GroupVersionKind().Kind
		kinds[kind]++
		if d, ok := o.(*appsv1.Deployment); ok {
			dep = d
		}
	}
	if want := map[string]int{"ServiceAccount": 1, "ClusterRole": 2, "RoleBinding": 1, "ClusterRoleBinding": 2, "Service": 1, "Deployment": 1, "APIService": 1}; !equality.Semantic.DeepEqual(kinds, want) {
		t.Errorf("kinds %v, want %v", kinds, want)
	}
	spec := dep.Spec.Template.Spec
	c := spec.Containers[0]
	if c.Image != image || c.ImagePullPolicy != corev1.PullNever {
		t.Errorf("image %q pull %q, want %q Never", c.Image, c.ImagePullPolicy, image)
	}
	for _, arg := range []string{"--kubelet-insecure-tls", "--kubelet-preferred-address-types=InternalIP", "--secure-port=10250", "--cert-dir=/tmp"} {
		if !slices.Contains(c.Args, arg) {
			t.Errorf("args %q: no %s", c.Args, arg)
		}
	}
	if len(c.Ports) != 1 || c.Ports[0].ContainerPort != 10250 || c.Ports[0].Name != "https" {
		t.Errorf("ports %+v, want https 10250", c.Ports)
	}
	if c.LivenessProbe.HTTPGet.Path != "/livez" || c.ReadinessProbe.HTTPGet.Path != "/readyz" || c.StartupProbe.HTTPGet.Path != "/livez" ||
		c.LivenessProbe.HTTPGet.Scheme != corev1.URISchemeHTTPS {
		t.Errorf("probes: liveness %+v readiness %+v startup %+v", c.LivenessProbe.HTTPGet, c.ReadinessProbe.HTTPGet, c.StartupProbe.HTTPGet)
	}
	if spec.PriorityClassName != "system-cluster-critical" || spec.ServiceAccountName != metricsServer {
		t.Errorf("priorityClassName %q serviceAccountName %q", spec.PriorityClassName, spec.ServiceAccountName)
	}
	taint := corev1.Taint{Key: "node-role.kubernetes.io/control-plane", Effect: corev1.TaintEffectNoSchedule}
	if !slices.ContainsFunc(spec.Tolerations, func(tol corev1.Toleration) bool { return tol.ToleratesTaint(klog.Background(), &taint, false) }) {
		t.Errorf("tolerations %+v: not the control-plane taint", spec.Tolerations)
	}
	for k, v := range dep.Spec.Selector.MatchLabels {
		if dep.Spec.Template.Labels[k] != v {
			t.Errorf("selector %s=%s does not select the template's labels %v", k, v, dep.Spec.Template.Labels)
		}
	}
}

// fakeAPI is a clientset and a dynamic client whose trackers manage
// fields as the API server does (client-go's field manager, with the
// built-in types' schema; APIService's is deduced from the object).
func fakeAPI(t *testing.T, objs ...runtime.Object) (*fake.Clientset, *dynamicfake.FakeDynamicClient) {
	scheme := runtime.NewScheme()
	gv := apiServiceGVR.GroupVersion()
	scheme.AddKnownTypeWithName(gv.WithKind("APIService"), &unstructured.Unstructured{})
	scheme.AddKnownTypeWithName(gv.WithKind("APIServiceList"), &unstructured.UnstructuredList{})
	dyn := dynamicfake.NewSimpleDynamicClient(scheme)
	tracker := clienttesting.NewFieldManagedObjectTracker(scheme, serializer.NewCodecFactory(scheme).UniversalDecoder(), managedfields.NewDeducedTypeConverter())
	dyn.PrependReactor("*", "*", clienttesting.ObjectReaction(tracker))
	return fake.NewClientset(objs...), dyn
}

// testCtx bounds a test that would otherwise retry for ever.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func newApplier(t *testing.T, cs *fake.Clientset, dyn *dynamicfake.FakeDynamicClient) *applier {
	return &applier{cs: cs, dyn: dyn, interval: 5 * time.Millisecond, log: t.Logf}
}

// snapshot reads back every object addons applies.
func snapshot(t *testing.T, cs *fake.Clientset, dyn *dynamicfake.FakeDynamicClient) []runtime.Object {
	t.Helper()
	ctx := context.Background()
	var out []runtime.Object
	add := func(o runtime.Object, err error) {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, o)
	}
	ns := metav1.NamespaceSystem
	add(cs.CoreV1().ServiceAccounts(ns).Get(ctx, metricsServer, metav1.GetOptions{}))
	add(cs.RbacV1().ClusterRoles().Get(ctx, "system:aggregated-metrics-reader", metav1.GetOptions{}))
	add(cs.RbacV1().ClusterRoles().Get(ctx, "system:metrics-server", metav1.GetOptions{}))
	add(cs.RbacV1().RoleBindings(ns).Get(ctx, "metrics-server-auth-reader", metav1.GetOptions{}))
	add(cs.RbacV1().ClusterRoleBindings().Get(ctx, "metrics-server:system:auth-delegator", metav1.GetOptions{}))
	add(cs.RbacV1().ClusterRoleBindings().Get(ctx, "system:metrics-server", metav1.GetOptions{}))
	add(cs.CoreV1().Services(ns).Get(ctx, metricsServer, metav1.GetOptions{}))
	add(cs.AppsV1().Deployments(ns).Get(ctx, metricsServer, metav1.GetOptions{}))
	add(dyn.Resource(apiServiceGVR).Get(ctx, metricsService, metav1.GetOptions{}))
	return out
}

func TestAddonsIdempotent(t *testing.T) {
	cs, dyn := fakeAPI(t)
	a := newApplier(t, cs, dyn)
	objs := metricsServerObjects(bakedMetricsServer(t))
	if err := a.applyAll(testCtx(t), objs); err != nil {
		t.Fatal(err)
	}
	first := snapshot(t, cs, dyn)
	if err := a.applyAll(testCtx(t), objs); err != nil {
		t.Fatalf("second apply: %v", err)
	}
	second := snapshot(t, cs, dyn)
	for i := range first {
		if !equality.Semantic.DeepEqual(first[i], second[i]) {
			t.Errorf("object %d changed by the second apply:\n%+v\n%+v", i, first[i], second[i])
		}
	}
	// Each object is kiln's, by apply, with its fields as written.
	for _, o := range second {
		m, err := metaAccessor(o)
		if err != nil {
			t.Fatal(err)
		}
		mf := m.GetManagedFields()
		if len(mf) != 1 || mf[0].Manager != fieldManager || mf[0].Operation != metav1.ManagedFieldsOperationApply {
			t.Errorf("%s: managed fields %+v, want one apply by %q", m.GetName(), mf, fieldManager)
		}
		if strings.Contains(string(mf[0].FieldsV1.Raw), `"f:status"`) {
			t.Errorf("%s: kiln owns the status: %s", m.GetName(), mf[0].FieldsV1.Raw)
		}
		if m.GetLabels()["k8s-app"] != metricsServer {
			t.Errorf("%s: labels %v", m.GetName(), m.GetLabels())
		}
	}
	dep := second[7].(*appsv1.Deployment)
	if c := dep.Spec.Template.Spec.Containers[0]; c.Image != bakedMetricsServer(t) || c.ImagePullPolicy != corev1.PullNever {
		t.Errorf("deployment as stored: image %q pull %q", c.Image, c.ImagePullPolicy)
	}
	rb := second[3].(*rbacv1.RoleBinding)
	if rb.RoleRef.Name != "extension-apiserver-authentication-reader" || rb.Subjects[0].Name != metricsServer || rb.Subjects[0].Namespace != metav1.NamespaceSystem {
		t.Errorf("role binding as stored: %+v", rb)
	}
	api := second[8].(*unstructured.Unstructured)
	svc, _, _ := unstructured.NestedStringMap(api.Object, "spec", "service")
	if svc["name"] != metricsServer || svc["namespace"] != metav1.NamespaceSystem {
		t.Errorf("APIService as stored: %v", api.Object)
	}
}

func metaAccessor(o runtime.Object) (metav1.Object, error) {
	m, ok := o.(metav1.Object)
	if !ok {
		return nil, errors.New("no metadata")
	}
	return m, nil
}

// A Deployment someone edited by hand (another field manager) gets the
// baked image and pull policy back.
func TestAddonsUpdate(t *testing.T) {
	cs, dyn := fakeAPI(t)
	old := metricsServerDeployment(bakedMetricsServer(t))
	old.Spec.Template.Spec.Containers[0].Image = "registry.example.test/metrics-server/metrics-server:v0.8.0"
	old.Spec.Template.Spec.Containers[0].ImagePullPolicy = corev1.PullAlways
	if _, err := cs.AppsV1().Deployments(old.Namespace).Create(context.Background(), old, metav1.CreateOptions{FieldManager: "kubectl-edit"}); err != nil {
		t.Fatal(err)
	}
	if err := newApplier(t, cs, dyn).applyAll(testCtx(t), metricsServerObjects(bakedMetricsServer(t))); err != nil {
		t.Fatal(err)
	}
	dep, err := cs.AppsV1().Deployments(old.Namespace).Get(context.Background(), metricsServer, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if c := dep.Spec.Template.Spec.Containers[0]; c.Image != bakedMetricsServer(t) || c.ImagePullPolicy != corev1.PullNever {
		t.Errorf("after apply: image %q pull %q, want the baked one, Never", c.Image, c.ImagePullPolicy)
	}
}

// The API server away for a while is waited for; an invalid object is
// an error at once.
func TestAddonsRetry(t *testing.T) {
	// Unavailable, then an etcd hiccup (500), then answers.
	cs, dyn := fakeAPI(t)
	calls := map[string]int{}
	failFirst := func(n int, err error) clienttesting.ReactionFunc {
		return func(a clienttesting.Action) (bool, runtime.Object, error) {
			calls[a.GetResource().Resource]++
			if calls[a.GetResource().Resource] <= n {
				return true, nil, err
			}
			return false, nil, nil
		}
	}
	cs.PrependReactor("patch", "serviceaccounts", failFirst(3, apierrors.NewServiceUnavailable("etcdserver: leader changed")))
	cs.PrependReactor("patch", "clusterroles", failFirst(1, apierrors.NewInternalError(errors.New("etcdserver: request timed out"))))
	// A just-started API server whose RBAC caches are not filled refuses
	// even the cluster admin for a moment.
	cs.PrependReactor("patch", "clusterrolebindings", failFirst(2, apierrors.NewForbidden(schema.GroupResource{Group: "rbac.authorization.k8s.io", Resource: "clusterrolebindings"}, "x", errors.New(`User "kubernetes-admin" cannot patch resource`))))
	objs := metricsServerObjects(bakedMetricsServer(t))
	if err := newApplier(t, cs, dyn).applyAll(testCtx(t), objs); err != nil {
		t.Fatalf("after 3 unavailable answers, a 500 and 2 forbidden: %v", err)
	}
	if calls["serviceaccounts"] != 4 || calls["clusterroles"] != 3 || calls["clusterrolebindings"] != 4 {
		t.Errorf("calls %v, want 4 for the service account, 3 for the two cluster roles, 4 for the two bindings", calls)
	}
	snapshot(t, cs, dyn) // all there

	// An object the API server refuses: no retry, the error names it.
	cs, dyn = fakeAPI(t)
	clear(calls)
	cs.PrependReactor("patch", "deployments", failFirst(100, apierrors.NewInvalid(schema.GroupKind{Group: "apps", Kind: "Deployment"}, metricsServer, nil)))
	err := newApplier(t, cs, dyn).applyAll(testCtx(t), objs)
	if !apierrors.IsInvalid(err) || calls["deployments"] != 1 || !strings.Contains(err.Error(), "apply Deployment metrics-server") {
		t.Errorf("invalid object: err %v after %d calls, want the Invalid error naming it after 1", err, calls["deployments"])
	}

	// No API server at all: the deadline, with what was seen last.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	cs, dyn = fakeAPI(t)
	cs.PrependReactor("patch", "*", func(clienttesting.Action) (bool, runtime.Object, error) {
		return true, nil, errors.New("connection refused")
	})
	if err := newApplier(t, cs, dyn).applyAll(ctx, objs); !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("API server never up: %v, want the deadline with the last error", err)
	}
}
