package components

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// buildPauseForTest builds components/pause for the host.
func buildPauseForTest(t *testing.T) string {
	t.Helper()
	outs, err := Build(context.Background(), Options{ComponentsDir: componentsDir, Arch: runtime.GOARCH,
		CacheDir: t.TempDir(), Names: []string{"pause"}})
	if err != nil {
		t.Fatal(err)
	}
	return outs[0].Path
}

func TestPauseExitsOnSignal(t *testing.T) {
	pause := buildPauseForTest(t)
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		cmd := exec.Command(pause)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		// It must keep running until told to stop.
		select {
		case err := <-done:
			t.Fatalf("pause exited by itself: %v", err)
		case <-time.After(300 * time.Millisecond):
		}
		cmd.Process.Signal(sig)
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("pause after %v: %v, want exit 0", sig, err)
			}
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			t.Fatalf("pause ignored %v", sig)
		}
	}
}

// TestPauseReapsAsPID1 runs pause as PID 1 of a new PID namespace, leaves an
// orphan in it (the kernel reparents it to pause) and checks that once the
// orphan exits it does not stay a zombie child of pause.
func TestPauseReapsAsPID1(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for a PID namespace")
	}
	nsenter, err := exec.LookPath("nsenter")
	if err != nil {
		t.Skip("no nsenter")
	}
	pause := buildPauseForTest(t)
	cmd := exec.Command(pause)
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID}
	if err := cmd.Start(); err != nil {
		t.Skipf("cannot create a PID namespace: %v", err)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()
	children := filepath.Join("/proc", strconv.Itoa(cmd.Process.Pid), "task", strconv.Itoa(cmd.Process.Pid), "children")
	// sh starts a sleeper in the background and exits: the sleeper is orphaned.
	// (Its output goes elsewhere, or CombinedOutput would wait for it.)
	out, err := exec.Command(nsenter, "-t", strconv.Itoa(cmd.Process.Pid), "-p", "--", "sh", "-c", "sleep 2 >/dev/null 2>&1 & echo started").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "started") {
		t.Fatalf("nsenter: %v %s", err, out)
	}
	deadline := time.Now().Add(1500 * time.Millisecond)
	adopted := false
	for time.Now().Before(deadline) && !adopted {
		data, _ := os.ReadFile(children)
		adopted = strings.TrimSpace(string(data)) != ""
		time.Sleep(20 * time.Millisecond)
	}
	if !adopted {
		t.Fatalf("the orphan was not reparented to pause (%s stayed empty)", children)
	}
	deadline = time.Now().Add(10 * time.Second)
	for {
		data, err := os.ReadFile(children)
		if err != nil {
			t.Fatal(err)
		}
		if strings.TrimSpace(string(data)) == "" {
			return // reaped
		}
		if time.Now().After(deadline) {
			t.Fatalf("child %s of pause was not reaped: %s", strings.TrimSpace(string(data)), zombieState(strings.Fields(string(data))[0]))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func zombieState(pid string) string {
	data, err := os.ReadFile("/proc/" + pid + "/stat")
	if errors.Is(err, os.ErrNotExist) {
		return "gone"
	}
	return string(data)
}
