package supervisor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

type logSink struct {
	mu    sync.Mutex
	lines []string
}

func (l *logSink) Log(f string, a ...any) {
	l.mu.Lock()
	l.lines = append(l.lines, fmt.Sprintf(f, a...))
	l.mu.Unlock()
}

func (l *logSink) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

func sh(t *testing.T) string {
	p, err := exec.LookPath("sh")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func eventually(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestEnvDirLogAndStopOrder(t *testing.T) {
	dir := t.TempDir()
	logs := filepath.Join(dir, "log")
	var sink logSink
	s := New(Options{LogDir: logs, Log: sink.Log, HealthInterval: 20 * time.Millisecond})
	work := t.TempDir()
	marker := filepath.Join(dir, "db-ready")
	// "api" depends on "db": db becomes healthy only when its marker exists.
	must(t, s.Add(Service{Name: "api", Path: sh(t), Deps: []string{"db"},
		Args: []string{"-c", `echo "api sees $(cat ` + marker + `)"; trap 'echo api-term; exit 0' TERM; while :; do sleep 0.05; done`}}))
	must(t, s.Add(Service{Name: "db", Path: sh(t), Env: []string{"GREETING=hello"}, Dir: work, OOMScoreAdj: 500,
		Args: []string{"-c", `echo "$GREETING from $(pwd)"; sleep 0.2; echo up > ` + marker + `; trap 'echo db-term; exit 0' TERM; while :; do sleep 0.05; done`},
		Health: func(context.Context) error {
			if _, err := os.Stat(marker); err != nil {
				return errors.New("not yet")
			}
			return nil
		}}))
	must(t, s.Start(context.Background()))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	must(t, s.WaitHealthy(ctx, "api"))
	st, pid := s.Status("db")
	if st != Healthy || pid == 0 {
		t.Fatalf("db %s pid %d", st, pid)
	}
	if b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/oom_score_adj"); strings.TrimSpace(string(b)) != "500" {
		t.Errorf("oom_score_adj = %q", b)
	}
	eventually(t, "api log", func() bool {
		b, _ := os.ReadFile(filepath.Join(logs, "api.log"))
		return strings.Contains(string(b), "api sees up")
	})
	s.Stop()
	db, _ := os.ReadFile(filepath.Join(logs, "db.log"))
	if !strings.Contains(string(db), "hello from "+work) || !strings.Contains(string(db), "db-term") {
		t.Errorf("db.log = %q", db)
	}
	out := sink.String()
	if a, d := strings.Index(out, "service api stopped"), strings.Index(out, "service db stopped"); a < 0 || d < a {
		t.Errorf("stop order wrong:\n%s", out)
	}
	if st, _ := s.Status("db"); st != Stopped {
		t.Errorf("db state %s after Stop", st)
	}
}

func TestRestartBackoff(t *testing.T) {
	var sink logSink
	s := New(Options{Log: sink.Log, BackoffMin: 50 * time.Millisecond, BackoffMax: 200 * time.Millisecond})
	must(t, s.Add(Service{Name: "flaky", Path: sh(t), Args: []string{"-c", "exit 3"}}))
	start := time.Now()
	must(t, s.Start(context.Background()))
	eventually(t, "3 restarts", func() bool { return s.Restarts("flaky") >= 3 })
	// 50 + 100 + 200 ms of backoff at least.
	if el := time.Since(start); el < 350*time.Millisecond {
		t.Errorf("3 restarts after %v: backoff not exponential", el)
	}
	s.Stop()
	if !strings.Contains(sink.String(), "service flaky exited: exit status 3") {
		t.Errorf("log:\n%s", sink.String())
	}
}

func TestStopKillsStubborn(t *testing.T) {
	s := New(Options{})
	must(t, s.Add(Service{Name: "stubborn", Path: sh(t), StopTimeout: 200 * time.Millisecond,
		Args: []string{"-c", "trap '' TERM; sleep 30 & wait; sleep 30"}}))
	must(t, s.Start(context.Background()))
	eventually(t, "running", func() bool { st, _ := s.Status("stubborn"); return st == Healthy })
	_, pid := s.Status("stubborn")
	start := time.Now()
	s.Stop()
	if el := time.Since(start); el > 3*time.Second {
		t.Errorf("stop took %v", el)
	}
	if err := unix.Kill(pid, 0); err == nil {
		t.Errorf("pid %d still alive", pid)
	}
}

func TestGraphErrors(t *testing.T) {
	s := New(Options{})
	must(t, s.Add(Service{Name: "a", Path: "/bin/true", Deps: []string{"b"}}))
	must(t, s.Add(Service{Name: "b", Path: "/bin/true", Deps: []string{"a"}}))
	if err := s.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "cycle") {
		t.Errorf("cycle: %v", err)
	}
	s = New(Options{})
	must(t, s.Add(Service{Name: "a", Path: "/bin/true", Deps: []string{"nope"}}))
	if err := s.Start(context.Background()); err == nil || !strings.Contains(err.Error(), `unknown service "nope"`) {
		t.Errorf("unknown dep: %v", err)
	}
	if err := s.Add(Service{Name: "a", Path: "/bin/true"}); err == nil {
		t.Error("duplicate accepted")
	}
}

func TestLogRotation(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.log")
	l := &logFile{Path: p, Max: 10, Keep: 2}
	for _, s := range []string{"aaaaaaaa\n", "bbbbbbbb\n", "cccccccc\n", "dddddddd\n"} {
		l.Write([]byte(s))
	}
	l.Close()
	for name, want := range map[string]string{"x.log": "dddddddd\n", "x.log.1": "cccccccc\n", "x.log.2": "bbbbbbbb\n"} {
		b, _ := os.ReadFile(filepath.Join(filepath.Dir(p), name))
		if string(b) != want {
			t.Errorf("%s = %q, want %q", name, b, want)
		}
	}
	if _, err := os.Stat(p + ".3"); err == nil {
		t.Error("kept more than 2 rotated files")
	}
}

// The cgroup test needs root and a writable cgroup2: it mounts its own
// cgroup2 hierarchy in a temp dir so the host's cgroups are untouched.
func TestCgroup(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipping: creating cgroups needs root")
	}
	mnt := t.TempDir()
	if err := unix.Mount("cgroup2", mnt, "cgroup2", 0, ""); err != nil {
		t.Skipf("skipping: cannot mount cgroup2 here: %v", err)
	}
	defer unix.Unmount(mnt, unix.MNT_DETACH)
	root := filepath.Join(mnt, "kiln-test-"+strconv.Itoa(os.Getpid()))
	s := New(Options{CgroupRoot: root})
	must(t, s.Add(Service{Name: "svc", Path: sh(t), Args: []string{"-c", "sleep 30"}}))
	must(t, s.Start(context.Background()))
	eventually(t, "running", func() bool { st, _ := s.Status("svc"); return st == Healthy })
	_, pid := s.Status("svc")
	b, err := os.ReadFile(filepath.Join(root, "svc", "cgroup.procs"))
	if err != nil || !strings.Contains(string(b), strconv.Itoa(pid)) {
		t.Errorf("cgroup.procs = %q, %v; want pid %d", b, err, pid)
	}
	s.Stop()
	os.Remove(filepath.Join(root, "svc"))
	os.Remove(root)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// List reports every service: by name before Start, in start order after,
// with state and pid as Status has them.
func TestList(t *testing.T) {
	s := New(Options{HealthInterval: 20 * time.Millisecond})
	must(t, s.Add(Service{Name: "web", Path: sh(t), Deps: []string{"base"}, Args: []string{"-c", "sleep 30"}}))
	must(t, s.Add(Service{Name: "base", Path: sh(t), Args: []string{"-c", "sleep 30"}}))
	if l := s.List(); len(l) != 2 || l[0].Name != "base" || l[1].Name != "web" || l[0].State != Waiting || l[1].Deps[0] != "base" {
		t.Fatalf("before Start: %+v", l)
	}
	must(t, s.Start(context.Background()))
	defer s.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	must(t, s.WaitHealthy(ctx, "web"))
	for _, i := range s.List() {
		st, pid := s.Status(i.Name)
		if i.State != st || i.PID != pid || pid == 0 || i.State != Healthy {
			t.Errorf("%s: listed %s pid %d, status %s pid %d", i.Name, i.State, i.PID, st, pid)
		}
	}
}

// A one-shot runs once: exit 0 is Done and releases its dependents, a
// failure is Failed with the exit status and is not restarted.
func TestOnceAndLaunch(t *testing.T) {
	dir := t.TempDir()
	var sink logSink
	s := New(Options{LogDir: dir, Log: sink.Log, HealthInterval: 20 * time.Millisecond, BackoffMin: 10 * time.Millisecond})
	runs := filepath.Join(dir, "runs")
	must(t, s.Add(Service{Name: "setup", Path: sh(t), Once: true,
		Args: []string{"-c", `echo run >> ` + runs + `; sleep 0.1; echo configured > ` + filepath.Join(dir, "conf")}}))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Launch(ctx, Service{Name: "early", Path: sh(t)}); err == nil || !strings.Contains(err.Error(), "Launch before Start") {
		t.Errorf("Launch before Start: %v", err)
	}
	must(t, s.Start(ctx))
	// Launched after Start, waiting for the one-shot.
	must(t, s.Launch(ctx, Service{Name: "daemon", Path: sh(t), Deps: []string{"setup"},
		Args: []string{"-c", `cat ` + filepath.Join(dir, "conf") + `; while :; do sleep 0.05; done`}}))
	if err := s.Launch(ctx, Service{Name: "orphan", Path: sh(t), Deps: []string{"nothing"}}); err == nil || !strings.Contains(err.Error(), `unknown service "nothing"`) {
		t.Errorf("Launch with an unknown dependency: %v", err)
	}
	must(t, s.WaitDone(ctx, "setup"))
	must(t, s.WaitHealthy(ctx, "daemon"))
	if st, pid := s.Status("setup"); st != Done || pid != 0 {
		t.Errorf("setup: %s pid %d, want done", st, pid)
	}
	eventually(t, "daemon's log", func() bool {
		b, _ := os.ReadFile(filepath.Join(dir, "daemon.log"))
		return strings.Contains(string(b), "configured")
	})

	// A one-shot fed through a pipe: it reads to the end, the writer sees it go.
	pr, pw, err := os.Pipe()
	must(t, err)
	must(t, s.Launch(ctx, Service{Name: "reader", Path: sh(t), Once: true, Stdin: pr, Args: []string{"-c", "wc -c"}}))
	fmt.Fprint(pw, "twelve bytes")
	pw.Close()
	must(t, s.WaitDone(ctx, "reader"))
	if b, _ := os.ReadFile(filepath.Join(dir, "reader.log")); strings.TrimSpace(string(b)) != "12" {
		t.Errorf("reader read %q, want 12 bytes", b)
	}

	must(t, s.Launch(ctx, Service{Name: "broken", Path: sh(t), Once: true, Args: []string{"-c", "echo run >> " + runs + "; exit 3"}}))
	err = s.WaitDone(ctx, "broken")
	if err == nil || !strings.Contains(err.Error(), "exit status 3") {
		t.Errorf("broken: %v, want exit status 3", err)
	}
	if st, _ := s.Status("broken"); st != Failed {
		t.Errorf("broken: %s, want failed", st)
	}
	if err := s.WaitDone(ctx, "nosuch"); err == nil {
		t.Error("WaitDone of an unknown service succeeded")
	}
	time.Sleep(100 * time.Millisecond) // a restart would have happened by now
	if b, _ := os.ReadFile(runs); string(b) != "run\nrun\n" || s.Restarts("broken") != 0 {
		t.Errorf("one-shots ran %q, restarts %d: want each once", b, s.Restarts("broken"))
	}
	var names []string
	for _, i := range s.List() {
		names = append(names, i.Name+"="+string(i.State))
	}
	if got := strings.Join(names, " "); got != "setup=done daemon=healthy reader=done broken=failed" {
		t.Errorf("List: %s", got)
	}
	s.Stop()
	if st, _ := s.Status("daemon"); st != Stopped {
		t.Errorf("daemon after Stop: %s", st)
	}
	if err := s.Launch(ctx, Service{Name: "late", Path: sh(t)}); err == nil || !strings.Contains(err.Error(), "stopped") {
		t.Errorf("Launch after Stop: %v", err)
	}
}
