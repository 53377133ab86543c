package reaper

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

func TestRoutesStatus(t *testing.T) {
	r := New()
	r.Grace = 200 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.Run(ctx)
	ch, err := r.Start(exec.Command("sh", "-c", "exit 7"))
	if err != nil {
		t.Fatal(err)
	}
	select {
	case ws := <-ch:
		if ws.ExitStatus() != 7 {
			t.Fatalf("exit status %d", ws.ExitStatus())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no status")
	}
}

// A child someone else waits for keeps its status; an abandoned one is
// reaped after the grace period.
func TestDoesNotSteal(t *testing.T) {
	r := New()
	r.Grace = 300 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.Run(ctx)
	for i := 0; i < 5; i++ {
		out, err := exec.Command("sh", "-c", "echo hi; exit 3").Output()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 3 || string(out) != "hi\n" {
			t.Fatalf("run %d: %q, %v (status stolen?)", i, out, err)
		}
	}
	abandoned := exec.Command("true")
	if err := abandoned.Start(); err != nil {
		t.Fatal(err)
	}
	pid := abandoned.Process.Pid
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := os.Stat("/proc/" + itoa(pid)); os.IsNotExist(err) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("zombie %d not reaped", pid)
}

func itoa(i int) string { return strconv.Itoa(i) }

// anyExited sees an exited child without reaping it, and nothing when no
// child has exited.
func TestAnyExited(t *testing.T) {
	if anyExited() {
		t.Skip("the test process has an unreaped child already")
	}
	sleeper := exec.Command("sleep", "10")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	defer sleeper.Process.Kill()
	if anyExited() {
		t.Error("a running child counted as exited")
	}
	quick := exec.Command("true")
	if err := quick.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !anyExited() {
		if time.Now().After(deadline) {
			t.Fatal("the exited child was never seen")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Not reaped: its owner still gets its status.
	if err := quick.Wait(); err != nil {
		t.Errorf("Wait after anyExited: %v", err)
	}
	if anyExited() {
		t.Error("still an exited child after Wait")
	}
}
