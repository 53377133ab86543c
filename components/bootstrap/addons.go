package main

// The add-ons kubeadm does not deploy itself: metrics-server, from the
// image baked into the node. The objects are those of metrics-server
// v0.9.0's release manifest (manifests/base in its repository, the
// "release" kustomize component: label k8s-app=metrics-server on
// everything), written here as typed objects, with what a kiln node needs
// on top (see metricsServerDeployment). They are applied server-side with
// the field manager "kiln": applying again changes nothing, and a field
// someone changed by hand is set back.

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
)

const (
	fieldManager   = "kiln"
	metricsServer  = "metrics-server" // repository basename in cluster.json, and every object's name
	metricsPort    = 10250            // upstream's --secure-port; the pod has its own network namespace
	addonsTimeout  = 10 * time.Minute
	metricsService = "v1beta1.metrics.k8s.io"
)

// apiServiceGVR is the aggregator's APIService, which k8s.io/api does not
// have: it goes through the dynamic client.
var apiServiceGVR = schema.GroupVersionResource{Group: "apiregistration.k8s.io", Version: "v1", Resource: "apiservices"}

func runAddons(args []string) error {
	fs := flag.NewFlagSet("addons", flag.ContinueOnError)
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig with cluster-admin rights")
	info := fs.String("info", defaultInfoFile, "the image's cluster.json (baked image references)")
	timeout := fs.Duration("timeout", addonsTimeout, "how long to retry while the API server does not answer")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *kubeconfig == "" {
		return errors.New("--kubeconfig is required")
	}
	ci, err := readClusterInfo(*info)
	if err != nil {
		return err
	}
	image, err := ci.image(metricsServer)
	if err != nil {
		return err
	}
	rc, cs, err := newClient(*kubeconfig)
	if err != nil {
		return err
	}
	dyn, err := dynamic.NewForConfig(rc)
	if err != nil {
		return fmt.Errorf("%s: %w", *kubeconfig, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	start := time.Now()
	a := &applier{cs: cs, dyn: dyn, interval: pollInterval, log: newLogger(os.Stderr)}
	// The pod network's RBAC again (kiln-bootstrap init applied it first):
	// every boot of a control-plane node puts it back as it should be.
	objs := append(podNetworkObjects(), metricsServerObjects(image)...)
	if err := a.applyAll(ctx, objs); err != nil {
		return err
	}
	fmt.Printf("kiln-bootstrap: addons: metrics-server (%s): %d objects applied in %.1fs\n", image, len(objs), time.Since(start).Seconds())
	return nil
}

// metricsServerObjects are metrics-server's objects, in the order they
// are applied (what the Deployment runs as before the Deployment).
func metricsServerObjects(image string) []runtime.Object {
	sa := rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: metricsServer, Namespace: metav1.NamespaceSystem}
	return []runtime.Object{
		&corev1.ServiceAccount{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"},
			ObjectMeta: metricsMeta(metricsServer, metav1.NamespaceSystem),
		},
		// Lets the view, edit and admin roles read metrics.
		&rbacv1.ClusterRole{
			TypeMeta: metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRole"},
			ObjectMeta: withLabels(metricsMeta("system:aggregated-metrics-reader", ""), map[string]string{
				"rbac.authorization.k8s.io/aggregate-to-view":  "true",
				"rbac.authorization.k8s.io/aggregate-to-edit":  "true",
				"rbac.authorization.k8s.io/aggregate-to-admin": "true",
			}),
			Rules: []rbacv1.PolicyRule{{APIGroups: []string{"metrics.k8s.io"}, Resources: []string{"pods", "nodes"}, Verbs: []string{"get", "list", "watch"}}},
		},
		&rbacv1.ClusterRole{
			TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRole"},
			ObjectMeta: metricsMeta("system:metrics-server", ""),
			Rules: []rbacv1.PolicyRule{
				{APIGroups: []string{""}, Resources: []string{"nodes/metrics"}, Verbs: []string{"get"}},
				{APIGroups: []string{""}, Resources: []string{"pods", "nodes"}, Verbs: []string{"get", "list", "watch"}},
			},
		},
		// Reads the client CA the API server publishes in kube-system.
		&rbacv1.RoleBinding{
			TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "RoleBinding"},
			ObjectMeta: metricsMeta("metrics-server-auth-reader", metav1.NamespaceSystem),
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "extension-apiserver-authentication-reader"},
			Subjects:   []rbacv1.Subject{sa},
		},
		// Delegates authentication and authorization to the API server.
		&rbacv1.ClusterRoleBinding{
			TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRoleBinding"},
			ObjectMeta: metricsMeta("metrics-server:system:auth-delegator", ""),
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "system:auth-delegator"},
			Subjects:   []rbacv1.Subject{sa},
		},
		&rbacv1.ClusterRoleBinding{
			TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRoleBinding"},
			ObjectMeta: metricsMeta("system:metrics-server", ""),
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "system:metrics-server"},
			Subjects:   []rbacv1.Subject{sa},
		},
		&corev1.Service{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
			ObjectMeta: metricsMeta(metricsServer, metav1.NamespaceSystem),
			Spec: corev1.ServiceSpec{
				Selector: metricsSelector(),
				Ports: []corev1.ServicePort{{Name: "https", Port: 443, Protocol: corev1.ProtocolTCP,
					TargetPort: intstr.FromString("https"), AppProtocol: ptr("https")}},
			},
		},
		metricsServerDeployment(image),
		metricsAPIService(),
	}
}

func metricsSelector() map[string]string { return map[string]string{"k8s-app": metricsServer} }

func metricsMeta(name, namespace string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: metricsSelector()}
}

func withLabels(m metav1.ObjectMeta, labels map[string]string) metav1.ObjectMeta {
	for k, v := range labels {
		m.Labels[k] = v
	}
	return m
}

// metricsServerDeployment is upstream's Deployment with these changes:
//   - the baked image, imagePullPolicy Never (the node has no registry);
//   - --kubelet-insecure-tls: a kiln node's kubelet serves a certificate
//     it signed itself, which metrics-server cannot verify (docs/cluster.md:
//     kubelet serverTLSBootstrap and CSR approval would remove it);
//   - --kubelet-preferred-address-types=InternalIP: a node's name is not in
//     any DNS metrics-server can ask, its InternalIP always answers;
//   - a toleration of the control-plane taint (a one-node cluster);
//   - probe timeouts of 5s and a startup probe giving it 5 minutes: on an
//     emulated node the first TLS handshake alone can take longer than
//     upstream's 1s, and the liveness probe would kill it while it starts.
func metricsServerDeployment(image string) *appsv1.Deployment {
	https := intstr.FromString("https")
	probe := func(path string) *corev1.Probe {
		return &corev1.Probe{
			ProbeHandler:     corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: https, Scheme: corev1.URISchemeHTTPS}},
			PeriodSeconds:    10,
			FailureThreshold: 3,
			TimeoutSeconds:   5,
		}
	}
	readiness := probe("/readyz")
	readiness.InitialDelaySeconds = 20
	startup := probe("/livez")
	startup.PeriodSeconds, startup.FailureThreshold = 5, 60
	return &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metricsMeta(metricsServer, metav1.NamespaceSystem),
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: metricsSelector()},
			Strategy: appsv1.DeploymentStrategy{RollingUpdate: &appsv1.RollingUpdateDeployment{MaxUnavailable: ptr(intstr.FromInt32(0))}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: metricsSelector()},
				Spec: corev1.PodSpec{
					ServiceAccountName: metricsServer,
					PriorityClassName:  "system-cluster-critical",
					NodeSelector:       map[string]string{corev1.LabelOSStable: "linux"},
					Tolerations:        controlPlaneTolerations(),
					// From-scratch image with a read-only root: its
					// serving certificate goes to /tmp.
					Volumes: []corev1.Volume{{Name: "tmp-dir", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
					Containers: []corev1.Container{{
						Name:            metricsServer,
						Image:           image,
						ImagePullPolicy: corev1.PullNever,
						Args: []string{
							"--cert-dir=/tmp",
							fmt.Sprintf("--secure-port=%d", metricsPort),
							"--kubelet-preferred-address-types=InternalIP",
							"--kubelet-use-node-status-port",
							"--metric-resolution=15s",
							"--kubelet-insecure-tls",
						},
						Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
							corev1.ResourceCPU:    resource.MustParse("100m"),
							corev1.ResourceMemory: resource.MustParse("200Mi"),
						}},
						Ports:          []corev1.ContainerPort{{Name: "https", ContainerPort: metricsPort, Protocol: corev1.ProtocolTCP}},
						StartupProbe:   startup,
						ReadinessProbe: readiness,
						LivenessProbe:  probe("/livez"),
						SecurityContext: &corev1.SecurityContext{
							ReadOnlyRootFilesystem:   ptr(true),
							RunAsNonRoot:             ptr(true),
							RunAsUser:                ptr(int64(1000)),
							AllowPrivilegeEscalation: ptr(false),
							SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
							Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
						},
						VolumeMounts: []corev1.VolumeMount{{Name: "tmp-dir", MountPath: "/tmp"}},
					}},
				},
			},
		},
	}
}

// metricsAPIService puts metrics-server behind the API server's
// aggregation layer. The API server does not verify metrics-server's
// self-signed serving certificate, as upstream's manifest says.
func metricsAPIService() *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiregistration.k8s.io/v1",
		"kind":       "APIService",
		"metadata": map[string]any{
			"name":   metricsService,
			"labels": map[string]any{"k8s-app": metricsServer},
		},
		"spec": map[string]any{
			"service":               map[string]any{"name": metricsServer, "namespace": metav1.NamespaceSystem},
			"group":                 "metrics.k8s.io",
			"version":               "v1beta1",
			"insecureSkipTLSVerify": true,
			"groupPriorityMinimum":  int64(100),
			"versionPriority":       int64(100),
		},
	}}
}

// applier applies objects server-side as the field manager "kiln".
type applier struct {
	cs       kubernetes.Interface
	dyn      dynamic.Interface
	interval time.Duration
	log      func(format string, args ...any)
}

func (a *applier) applyAll(ctx context.Context, objs []runtime.Object) error {
	for _, o := range objs {
		if err := a.applyRetrying(ctx, o); err != nil {
			return err
		}
	}
	return nil
}

// applyRetrying retries while the API server is away or slow; an error
// in the object itself is returned at once.
func (a *applier) applyRetrying(ctx context.Context, obj runtime.Object) error {
	last := ""
	for {
		err := a.apply(ctx, obj)
		if err == nil {
			return nil
		}
		if errors.Is(err, errUnknownKind) || !transient(err) {
			return err
		}
		if msg := err.Error(); msg != last {
			a.log("addons: %v (retrying)", err)
			last = msg
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %s)", ctx.Err(), last)
		case <-time.After(a.interval):
		}
	}
}

var errUnknownKind = errors.New("no client for this kind")

// transient errors are worth another try: no answer at all (the API
// server restarting, a connection refused or cut), or one saying "later".
// An answer about the object itself (invalid) is final.
func transient(err error) bool {
	var st apierrors.APIStatus
	if !errors.As(err, &st) {
		return true
	}
	// Forbidden too: an API server that has just started authorizes with
	// RBAC caches it has not filled yet, and refuses the cluster admin
	// itself for a while (seen after a control-plane node's reboot). A
	// real refusal still ends the wait at the deadline, naming it.
	return apierrors.IsServiceUnavailable(err) || apierrors.IsTimeout(err) || apierrors.IsServerTimeout(err) ||
		apierrors.IsTooManyRequests(err) || apierrors.IsInternalError(err) || apierrors.IsForbidden(err)
}

// apply sends one object as an apply patch.
func (a *applier) apply(ctx context.Context, obj runtime.Object) error {
	if u, ok := obj.(*unstructured.Unstructured); ok {
		if u.GetKind() != "APIService" {
			return fmt.Errorf("%s %s: %w", u.GetKind(), u.GetName(), errUnknownKind)
		}
		_, err := a.dyn.Resource(apiServiceGVR).Apply(ctx, u.GetName(), u, metav1.ApplyOptions{FieldManager: fieldManager, Force: true})
		return wrapApply(err, u.GetKind(), u.GetName())
	}
	data, err := applyPatch(obj)
	if err != nil {
		return err
	}
	opts := metav1.PatchOptions{FieldManager: fieldManager, Force: ptr(true)}
	pt := types.ApplyPatchType
	var kind, name string
	switch o := obj.(type) {
	case *corev1.ServiceAccount:
		kind, name = "ServiceAccount", o.Name
		_, err = a.cs.CoreV1().ServiceAccounts(o.Namespace).Patch(ctx, o.Name, pt, data, opts)
	case *corev1.Service:
		kind, name = "Service", o.Name
		_, err = a.cs.CoreV1().Services(o.Namespace).Patch(ctx, o.Name, pt, data, opts)
	case *appsv1.Deployment:
		kind, name = "Deployment", o.Name
		_, err = a.cs.AppsV1().Deployments(o.Namespace).Patch(ctx, o.Name, pt, data, opts)
	case *rbacv1.ClusterRole:
		kind, name = "ClusterRole", o.Name
		_, err = a.cs.RbacV1().ClusterRoles().Patch(ctx, o.Name, pt, data, opts)
	case *rbacv1.ClusterRoleBinding:
		kind, name = "ClusterRoleBinding", o.Name
		_, err = a.cs.RbacV1().ClusterRoleBindings().Patch(ctx, o.Name, pt, data, opts)
	case *rbacv1.RoleBinding:
		kind, name = "RoleBinding", o.Name
		_, err = a.cs.RbacV1().RoleBindings(o.Namespace).Patch(ctx, o.Name, pt, data, opts)
	default:
		return fmt.Errorf("%T: %w", obj, errUnknownKind)
	}
	return wrapApply(err, kind, name)
}

func wrapApply(err error, kind, name string) error {
	if err != nil {
		return fmt.Errorf("apply %s %s: %w", kind, name, err)
	}
	return nil
}

// applyPatch is the object as an apply configuration, without the zero
// status a typed object carries: the status is the cluster's to write.
func applyPatch(obj runtime.Object) ([]byte, error) {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, err
	}
	delete(m, "status")
	return json.Marshal(m)
}
