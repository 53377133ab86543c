package components

import (
	"bufio"
	"context"
	"os/exec"
	"regexp"
	"runtime"
	"syscall"
	"testing"
	"time"
)

// TestBuildProbe builds kiln-probe the way images get it (stdlib only:
// seconds) and runs the artifact: static ELF, stamped version, and a
// serve/get round trip on loopback ended by SIGTERM with exit 0. The
// subcommands' own tests are in components/probe.
func TestBuildProbe(t *testing.T) {
	outs, err := Build(context.Background(), Options{ComponentsDir: componentsDir, Arch: runtime.GOARCH,
		CacheDir: t.TempDir(), Names: []string{"kiln-probe"}})
	if err != nil {
		t.Fatal(err)
	}
	o := outs[0]
	if len(outs) != 1 || o.Name != "kiln-probe" || o.Module != ProbeModule || o.Version != "v0.1.0" || o.Sum != "" {
		t.Fatalf("outputs: %+v", outs)
	}
	checkStaticELF(t, o, runtime.GOARCH)
	checkVersion(t, o)

	serve := exec.Command(o.Path, "serve", "--listen", "127.0.0.1:0")
	stderr, err := serve.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	defer serve.Process.Kill()
	lines := bufio.NewScanner(stderr)
	lines.Scan()
	m := regexp.MustCompile(`^kiln-probe: serving on (127\.0\.0\.1:\d+) as (\S+)$`).FindStringSubmatch(lines.Text())
	if m == nil {
		t.Fatalf("serve's first line: %q", lines.Text())
	}
	out, err := exec.Command(o.Path, "get", "http://"+m[1]+"/", "--expect", "kiln-probe "+m[2], "--timeout", "20s").CombinedOutput()
	if err != nil || string(out) != "kiln-probe "+m[2]+"\n" {
		t.Errorf("get: %v, output %q", err, out)
	}
	serve.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() {
		for lines.Scan() { // to EOF: Wait must not close the pipe under the reader
		}
		done <- serve.Wait()
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve after SIGTERM: %v, want exit 0", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve ignored SIGTERM")
	}
}
