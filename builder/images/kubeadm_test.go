package images

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const testK8sVersion = "v1.37.2"

// wantKubeadmRefs is what testdata/kubeadm-images.json lists.
var wantKubeadmRefs = []string{
	"registry.example.test/kube-apiserver:v1.37.2",
	"registry.example.test/kube-controller-manager:v1.37.2",
	"registry.example.test/kube-scheduler:v1.37.2",
	"registry.example.test/kube-proxy:v1.37.2",
	"registry.example.test/coredns/coredns:v1.14.6",
	"registry.example.test/pause:3.10.2",
	"registry.example.test/etcd:3.7.0-0",
}

func fakeKubeadm(t *testing.T) string {
	t.Helper()
	p, err := filepath.Abs("testdata/fake-kubeadm")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestKubeadmList(t *testing.T) {
	refs, err := KubeadmList(context.Background(), fakeKubeadm(t), testK8sVersion)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(refs, wantKubeadmRefs) {
		t.Fatalf("refs:\n got %q\nwant %q", refs, wantKubeadmRefs)
	}
	// The fake refuses any other command line: the version is passed through.
	if _, err := KubeadmList(context.Background(), fakeKubeadm(t), "v1.36.0"); err == nil || !strings.Contains(err.Error(), "unexpected arguments") {
		t.Fatalf("other version: err = %v, want kubeadm's stderr in it", err)
	}
}

// script writes an executable shell script standing in for kubeadm.
func script(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "kubeadm")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestKubeadmListErrors(t *testing.T) {
	for _, tc := range []struct{ name, body, want string }{
		{"fails", `echo "unknown flag: --kubernetes-version" >&2; exit 1`, "unknown flag: --kubernetes-version"},
		{"text output", `echo registry.example.test/kube-apiserver:v1.37.2`, "not an Images JSON object"},
		{"wrong kind", `echo '{"kind":"Pods","apiVersion":"v1","images":["registry.example.test/pause:3.10.2"]}'`, `kind "Pods"`},
		{"empty", `echo '{"kind":"Images","apiVersion":"output.kubeadm.k8s.io/v1alpha3","images":[]}'`, "no images"},
		{"no registry", `echo '{"kind":"Images","apiVersion":"output.kubeadm.k8s.io/v1alpha3","images":["kube-apiserver:v1.37.2"]}'`, `images[0]: image reference "kube-apiserver:v1.37.2"`},
		{"no tag", `echo '{"kind":"Images","apiVersion":"output.kubeadm.k8s.io/v1alpha3","images":["registry.example.test/pause"]}'`, `"registry.example.test/pause"`},
		{"twice", `echo '{"kind":"Images","apiVersion":"output.kubeadm.k8s.io/v1alpha3","images":["registry.example.test/pause:3.10.2","registry.example.test/pause:3.10.2"]}'`, "listed twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := KubeadmList(context.Background(), script(t, tc.body), testK8sVersion)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
	if _, err := KubeadmList(context.Background(), filepath.Join(t.TempDir(), "missing"), testK8sVersion); err == nil {
		t.Fatal("missing kubeadm: no error")
	}
	if _, err := KubeadmList(context.Background(), fakeKubeadm(t), ""); err == nil {
		t.Fatal("empty version: no error")
	}
}

func TestAddons(t *testing.T) {
	got, err := Addons(wantKubeadmRefs)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"registry.example.test/metrics-server/metrics-server:" + MetricsServerVersion, "localhost/kiln-probe:v0.1.0"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	// A registry with a port and a deeper repository path keep their shape.
	got, err = Addons([]string{"mirror.example.test:5000/k8s/kube-apiserver:v1.37.2"})
	if err != nil {
		t.Fatal(err)
	}
	if want := "mirror.example.test:5000/k8s/metrics-server/metrics-server:" + MetricsServerVersion; got[0] != want {
		t.Fatalf("got %q, want %q", got[0], want)
	}
	if _, err := Addons([]string{"registry.example.test/pause:3.10.2"}); err == nil || !strings.Contains(err.Error(), "no kube-apiserver") {
		t.Fatalf("no apiserver: err = %v", err)
	}
}

func TestBinaries(t *testing.T) {
	refs := append(append([]string(nil), wantKubeadmRefs...), "registry.example.test/metrics-server/metrics-server:"+MetricsServerVersion, ProbeRef)
	got, err := Binaries(refs)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"coredns", "etcd", "etcdctl", "kiln-probe", "kube-apiserver", "kube-controller-manager", "kube-proxy", "kube-scheduler", "metrics-server", "pause"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	if _, err := Binaries([]string{"registry.example.test/kube-state-metrics:v2.0.0"}); err == nil || !strings.Contains(err.Error(), `no recipe for image "kube-state-metrics"`) {
		t.Fatalf("unknown image: err = %v", err)
	}
}

func TestRefParts(t *testing.T) {
	repo, base, tag, err := RefParts("registry.example.test/coredns/coredns:v1.14.6")
	if err != nil || repo != "registry.example.test/coredns/coredns" || base != "coredns" || tag != "v1.14.6" {
		t.Fatalf("RefParts = %q %q %q %v", repo, base, tag, err)
	}
	// "localhost" is a registry name (no dot or port needed), as in
	// containerd's and the CRI's reference parsing.
	repo, base, tag, err = RefParts(ProbeRef)
	if err != nil || repo != "localhost/kiln-probe" || base != "kiln-probe" || tag != ProbeVersion {
		t.Fatalf("RefParts(%s) = %q %q %q %v", ProbeRef, repo, base, tag, err)
	}
	if _, _, _, err := RefParts("coredns:v1.14.6"); err == nil {
		t.Fatal("a reference without a registry host was accepted")
	}
}
