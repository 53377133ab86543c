package cluster

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/kilnproject/kiln/builder/components"
)

// component returns the pinned binary kiln build lays into the image, for
// this host (built once, then from the cache kiln build shares).
func component(t *testing.T, name string) string {
	t.Helper()
	if testing.Short() {
		t.Skipf("needs the %s component (a long build when not cached)", name)
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	outs, err := components.Build(context.Background(), components.Options{ComponentsDir: "../../components", Arch: runtime.GOARCH,
		CacheDir: filepath.Join(cache, "kiln", "components"), Names: []string{name}, Log: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	return outs[0].Path
}

// kubeadm itself judges the configuration initd renders.
func TestKubeadmValidatesInitConfig(t *testing.T) {
	kubeadm := component(t, "kubeadm")
	out, err := KubeadmInit(exampleConfig(t, "init"), testNode())
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "kubeadm.yaml")
	os.WriteFile(p, out, 0o600)
	res, err := exec.Command(kubeadm, "config", "validate", "--config", p).CombinedOutput()
	if err != nil {
		t.Fatalf("kubeadm config validate: %v\n%s", err, res)
	}
	// And refuses what it must: a field kubeadm does not know.
	bad := strings.Replace(string(out), "certificatesDir:", "certificatesDirectory:", 1)
	os.WriteFile(p, []byte(bad), 0o600)
	if res, err := exec.Command(kubeadm, "config", "validate", "--config", p).CombinedOutput(); err == nil {
		t.Errorf("kubeadm accepted an unknown field:\n%s", res)
	}
}

// kubeadm accepts the JoinConfiguration initd renders for a worker and
// for a control-plane node.
func TestKubeadmValidatesJoinConfig(t *testing.T) {
	kubeadm := component(t, "kubeadm")
	n := testNode()
	for _, role := range []string{"worker", "controlplane"} {
		out, err := KubeadmJoin(exampleConfig(t, role), n, PatchDir)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(t.TempDir(), role+".yaml")
		os.WriteFile(p, out, 0o600)
		if res, err := exec.Command(kubeadm, "config", "validate", "--config", p).CombinedOutput(); err != nil {
			t.Errorf("kubeadm config validate (%s): %v\n%s", role, err, res)
		}
	}
}

// containerd reads initd's configuration and keeps every setting.
func TestContainerdReadsConfig(t *testing.T) {
	containerd := component(t, "containerd")
	p := filepath.Join(t.TempDir(), "config.toml")
	os.WriteFile(p, ContainerdTOML("example.test/k8s/pause:3.10.1"), 0o644)
	out, err := exec.Command(containerd, "--config", p, "config", "dump").CombinedOutput()
	if err != nil {
		t.Fatalf("containerd config dump: %v\n%s", err, out)
	}
	dump := string(out)
	for _, want := range []string{
		`sandbox = 'example.test/k8s/pause:3.10.1'`, `snapshotter = 'overlayfs'`, `SystemdCgroup = false`,
		`BinaryName = '/usr/bin/runc'`, `bin_dirs = ['/opt/cni/bin']`, `conf_dir = '/etc/cni/net.d'`,
		`address = '/run/containerd/containerd.sock'`, `root = '/var/lib/containerd'`, `disable_apparmor = true`,
	} {
		if !strings.Contains(dump, want) {
			t.Errorf("containerd config dump lacks %s", want)
		}
	}
	if t.Failed() {
		t.Logf("dump:\n%s", dump)
	}
}
