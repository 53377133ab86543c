package images

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestContainerdImport hands the layout to a real containerd (Debian's,
// in a private root, state and socket) the way `ctr images import` does:
// every image must come out named by its full reference, unpack, keep
// coredns' file capability, and run its entrypoint under runc.
func TestContainerdImport(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a containerd daemon")
	}
	if os.Geteuid() != 0 {
		t.Skip("containerd needs root")
	}
	needTool(t, "containerd", "containerd")
	needTool(t, "ctr", "containerd")
	needTool(t, "getcap", "libcap2-bin")
	o := testOptions(t, runtime.GOARCH)
	res, err := Build(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}

	dir, err := os.MkdirTemp("", "kiln-ctrd-") // short: the socket path has a length limit
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unmountBelow(t, dir); os.RemoveAll(dir) })
	sock := filepath.Join(dir, "sock")
	cfg := fmt.Sprintf("version = 2\nroot = %q\nstate = %q\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n[grpc]\n  address = %q\n",
		filepath.Join(dir, "root"), filepath.Join(dir, "state"), sock)
	if err := os.WriteFile(filepath.Join(dir, "config.toml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "containerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	daemon := exec.Command("containerd", "--config", filepath.Join(dir, "config.toml"))
	daemon.Stdout, daemon.Stderr = logf, logf
	if err := daemon.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		daemon.Process.Kill()
		daemon.Wait()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("containerd log:\n%s", firstLines(string(b), 40))
		}
	}()
	ctr := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("ctr", append([]string{"--address", sock, "--namespace", "kiln-test"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("ctr %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	deadline := time.Now().Add(30 * time.Second)
	for exec.Command("ctr", "--address", sock, "version").Run() != nil {
		if time.Now().After(deadline) {
			t.Fatal("containerd did not answer on its socket within 30s")
		}
		time.Sleep(200 * time.Millisecond)
	}

	archive := filepath.Join(dir, "layout.tar")
	if out, err := exec.Command("tar", "-C", o.Dir, "-cf", archive, ".").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v\n%s", err, out)
	}
	ctr("images", "import", archive)

	// Name and digest of every image, as containerd recorded them.
	got := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(ctr("images", "ls")))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 3 && f[0] != "REF" {
			got[f[0]] = f[2]
		}
	}
	want := map[string]string{}
	for _, r := range res {
		want[r.Ref] = r.Digest
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("containerd's images:\n got %v\nwant %v", got, want)
	}
	check := ctr("images", "check")
	if n := strings.Count(check, "complete"); n != len(res) {
		t.Errorf("images check: %d of %d complete:\n%s", n, len(res), check)
	}

	// The file capability survives containerd's unpacking.
	caps, _ := filepath.Glob(filepath.Join(dir, "root/io.containerd.snapshotter.v1.*/snapshots/*/fs/coredns"))
	if len(caps) == 0 {
		t.Fatal("coredns not found in containerd's snapshots")
	}
	for _, p := range caps {
		out, err := exec.Command("getcap", p).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "cap_net_bind_service=ep") {
			t.Errorf("getcap %s: %q %v", p, out, err)
		}
	}

	// The entrypoint runs under runc as the image's user with the image's
	// default arguments: the stand-in prints its arguments and user ID.
	for i, r := range res {
		tag, _ := parseTag(r.Ref)
		uid, _, _ := strings.Cut(wantImages[repoBase(tag)].user, ":")
		if uid == "" {
			uid = "0"
		}
		out := ctr("run", "--rm", r.Ref, fmt.Sprintf("run-%d", i))
		if want := fmt.Sprint("kiln stand-in ", wantImages[repoBase(tag)].cmd, " uid ", uid); !strings.Contains(out, want) {
			t.Errorf("ctr run %s: %q, want %q", r.Ref, out, want)
		}
	}
}

// unmountBelow detaches whatever containerd left mounted under dir.
func unmountBelow(t *testing.T, dir string) {
	b, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return
	}
	var mnts []string
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 1 && strings.HasPrefix(f[1], dir+"/") {
			mnts = append(mnts, f[1])
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(mnts)))
	for _, m := range mnts {
		if err := unix.Unmount(m, unix.MNT_DETACH); err != nil {
			t.Logf("unmount %s: %v", m, err)
		}
	}
}
