// Package qemu_test boots the images kiln builds under QEMU and asserts on
// what the machines print and do. TestMain builds the minimal profile once
// (for amd64 and arm64, every format) with the real kiln binary.
package qemu_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/kilnproject/kiln/arch"
	"github.com/kilnproject/kiln/qemu"
)

var (
	repoRoot string
	kilnBin  string
	outDir   string // the minimal profile's images
	artDir   string // console logs of failed boots
	cleanups []func()
)

const minimalVersion = "0.1.0"

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	wd, _ := os.Getwd()
	repoRoot = filepath.Join(wd, "..", "..")
	tmp, err := os.MkdirTemp("", "kiln-qemu-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(tmp)
	artDir = os.Getenv("KILN_TEST_ARTIFACTS")
	if artDir == "" {
		artDir = filepath.Join(repoRoot, "out", "test-artifacts")
	}
	kilnBin = filepath.Join(tmp, "kiln")
	if out, err := goCmd("build", "-o", kilnBin, "./cmd/kiln").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building kiln: %v\n%s", err, out)
		return 1
	}
	outDir = filepath.Join(tmp, "out")
	t0 := time.Now()
	cmd := exec.Command(kilnBin, "build", "-p", filepath.Join(repoRoot, "profiles/minimal.yaml"), "-o", outDir)
	cmd.Dir = repoRoot
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "kiln build of the minimal profile failed: %v\n", err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "minimal profile built in %.1fs\n", time.Since(t0).Seconds())
	code := m.Run()
	for _, c := range cleanups {
		c()
	}
	return code
}

func goCmd(args ...string) *exec.Cmd {
	c := exec.Command("go", args...)
	c.Dir = repoRoot
	c.Env = append(os.Environ(), "CGO_ENABLED=0")
	return c
}

func image(archName, ext string) string {
	return filepath.Join(outDir, fmt.Sprintf("minimal-%s-%s.%s", minimalVersion, archName, ext))
}

var readyRe = regexp.MustCompile(`kiln: ready in ([0-9.]+)s`)

// bootTimeout bounds one boot. TCG is slow and arm64 is emulated: budget minutes.
func bootTimeout(a string) time.Duration {
	if a == "arm64" {
		return 6 * time.Minute
	}
	return 4 * time.Minute
}

// boot starts m, waits for the ready line and returns the VM (still running)
// and the ready line. On failure the console log is kept as an artifact.
func boot(t *testing.T, m *qemu.Machine, timeout time.Duration) (*qemu.VM, string) {
	t.Helper()
	if m.MemoryMiB == 0 {
		m.MemoryMiB = 1024
	}
	vm, err := m.Start(context.Background())
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(vm.Kill)
	line, err := vm.WaitFor(context.Background(), readyRe, timeout)
	if err != nil {
		saveLog(t, vm.Log())
		t.Fatalf("%s: %v", t.Name(), err)
	}
	t.Logf("%s: %q after %.1fs wall clock", t.Name(), strings.TrimSpace(line), vm.Elapsed().Seconds())
	return vm, line
}

func saveLog(t *testing.T, log string) {
	t.Helper()
	if err := os.MkdirAll(artDir, 0o755); err != nil {
		return
	}
	p := filepath.Join(artDir, strings.ReplaceAll(t.Name(), "/", "_")+".console.log")
	if os.WriteFile(p, []byte(log), 0o644) == nil {
		t.Logf("console log kept at %s", p)
	}
}

func mustArch(t *testing.T, name string) arch.Info {
	a, err := arch.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

var _ = runtime.GOARCH
