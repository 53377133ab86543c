package main

import (
	"context"
	"fmt"
	"os"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/dynamic"
)

// podNetworkRole is what every node's pod network (initd's podnet) needs:
// to list and watch all Nodes, for their pod ranges and addresses. The
// Node authorizer lets a kubelet's identity read only its own Node, so the
// permission is granted to the group of all nodes through RBAC.
const podNetworkRole = "kiln:pod-network"

func podNetworkObjects() []runtime.Object {
	meta := metav1.ObjectMeta{Name: podNetworkRole, Labels: map[string]string{"app.kubernetes.io/managed-by": "kiln"}}
	return []runtime.Object{
		&rbacv1.ClusterRole{
			TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRole"},
			ObjectMeta: meta,
			Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"nodes"}, Verbs: []string{"get", "list", "watch"}}},
		},
		&rbacv1.ClusterRoleBinding{
			TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRoleBinding"},
			ObjectMeta: meta,
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: podNetworkRole},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: "system:nodes"}},
		},
	}
}

// applyPodNetworkRBAC applies podNetworkObjects with the admin kubeconfig,
// right after kubeadm init: the nodes' routes should not wait for the node
// to be Ready and the add-ons to run.
func applyPodNetworkRBAC(kubeconfig string, timeout time.Duration) error {
	rc, cs, err := newClient(kubeconfig)
	if err != nil {
		return err
	}
	dyn, err := dynamic.NewForConfig(rc)
	if err != nil {
		return fmt.Errorf("%s: %w", kubeconfig, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	a := &applier{cs: cs, dyn: dyn, interval: pollInterval, log: newLogger(os.Stderr)}
	if err := a.applyAll(ctx, podNetworkObjects()); err != nil {
		return fmt.Errorf("pod network RBAC: %w", err)
	}
	fmt.Printf("kiln-bootstrap: pod network: nodes may list and watch Nodes (ClusterRole and ClusterRoleBinding %s)\n", podNetworkRole)
	return nil
}
