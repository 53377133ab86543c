// Package supervisor runs initd's long-lived services: started in
// dependency order (after their dependencies are healthy), each in its own
// cgroup v2, with output captured to a rotated log file, restarted with
// exponential backoff when they exit, and stopped cleanly (SIGTERM, then
// SIGKILL) in reverse order.
package supervisor

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// Service describes one supervised process.
type Service struct {
	Name        string
	Path        string   // executable
	Args        []string // argv[1:]
	Env         []string // KEY=VALUE; nothing is inherited
	Dir         string   // working directory, default /
	Deps        []string // services that must be healthy first
	OOMScoreAdj int      // -1000..1000, 0 leaves the inherited value
	// Health reports whether the service works; nil means "running is
	// healthy". It is polled every HealthInterval until it first succeeds.
	Health      func(ctx context.Context) error
	StopTimeout time.Duration // SIGTERM -> SIGKILL, default 10s
	// Once runs the service to completion instead of keeping it up: exit
	// status 0 makes it Done (and counts as healthy for its dependents),
	// anything else Failed; it is never restarted. WaitDone reports how
	// it ended.
	Once bool
	// Stdin is the process's standard input (default: none). The
	// supervisor closes its copy once the process started, so it suits a
	// Once service fed through a pipe.
	Stdin *os.File
}

// Spawner starts a command and reports its exit status exactly once. PID 1
// passes its reaper; the default waits for the process itself.
type Spawner interface {
	Start(cmd *exec.Cmd) (<-chan syscall.WaitStatus, error)
}

// Options configure a Supervisor.
type Options struct {
	LogDir         string // /var/log/kiln
	CgroupRoot     string // /sys/fs/cgroup/kiln; "" runs without cgroups
	Spawner        Spawner
	MaxLogSize     int64         // default 10 MiB
	LogFiles       int           // rotated files kept, default 3
	BackoffMin     time.Duration // default 1s
	BackoffMax     time.Duration // default 1m
	StableAfter    time.Duration // a run this long resets the backoff, default 30s
	HealthInterval time.Duration // default 1s
	Log            func(format string, args ...any)
}

// State of a service.
type State string

const (
	Waiting State = "waiting" // for dependencies
	Running State = "running"
	Healthy State = "healthy"
	Backoff State = "backoff" // exited, restarting soon
	Stopped State = "stopped"
	Failed  State = "failed" // could not be started at all, or a Once service failed
	Done    State = "done"   // a Once service exited 0
)

// Supervisor owns a set of services.
type Supervisor struct {
	o       Options
	mu      sync.Mutex
	order   []string
	started bool // Start ran: Launch may add services
	svcs    map[string]*service
	stop    chan struct{}
	wg      sync.WaitGroup
}

type service struct {
	Service
	state    State
	pid      int
	ready    chan struct{} // closed when first healthy
	readyOK  bool
	exited   chan struct{} // closed when the run loop ends
	stop     chan struct{} // closed by Stop for this service
	restarts int
	result   error // how a Once service ended
}

// New returns an empty supervisor.
func New(o Options) *Supervisor {
	if o.Spawner == nil {
		o.Spawner = direct{}
	}
	if o.MaxLogSize == 0 {
		o.MaxLogSize = 10 << 20
	}
	if o.LogFiles == 0 {
		o.LogFiles = 3
	}
	if o.BackoffMin == 0 {
		o.BackoffMin = time.Second
	}
	if o.BackoffMax == 0 {
		o.BackoffMax = time.Minute
	}
	if o.StableAfter == 0 {
		o.StableAfter = 30 * time.Second
	}
	if o.HealthInterval == 0 {
		o.HealthInterval = time.Second
	}
	if o.Log == nil {
		o.Log = func(string, ...any) {}
	}
	return &Supervisor{o: o, svcs: map[string]*service{}, stop: make(chan struct{})}
}

// Add registers a service; Start runs it.
func (s *Supervisor) Add(svc Service) error {
	if svc.Name == "" || svc.Path == "" {
		return fmt.Errorf("supervisor: service %q: name and path are required", svc.Name)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.svcs[svc.Name]; dup {
		return fmt.Errorf("supervisor: service %q added twice", svc.Name)
	}
	if svc.StopTimeout == 0 {
		svc.StopTimeout = 10 * time.Second
	}
	s.svcs[svc.Name] = &service{Service: svc, state: Waiting, ready: make(chan struct{}), exited: make(chan struct{}), stop: make(chan struct{})}
	return nil
}

// Start checks the dependency graph and launches every service; each one
// waits for its dependencies to be healthy. It does not wait for them.
func (s *Supervisor) Start(ctx context.Context) error {
	s.mu.Lock()
	order, err := s.topo()
	if err == nil {
		s.order, s.started = order, true
	}
	s.mu.Unlock()
	if err != nil {
		return err
	}
	if s.o.LogDir != "" {
		if err := os.MkdirAll(s.o.LogDir, 0o755); err != nil {
			return fmt.Errorf("supervisor: log dir: %w", err)
		}
	}
	for _, name := range order {
		svc := s.svcs[name]
		s.wg.Add(1)
		go s.run(ctx, svc)
	}
	return nil
}

// Launch adds a service to a started supervisor and runs it (after its
// dependencies, which must already be known). Stop stops it before the
// services launched earlier.
func (s *Supervisor) Launch(ctx context.Context, svc Service) error {
	if err := s.Add(svc); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	err := func() error {
		if !s.started {
			return fmt.Errorf("supervisor: service %q: Launch before Start", svc.Name)
		}
		select {
		case <-s.stop:
			return fmt.Errorf("supervisor: service %q: supervisor stopped", svc.Name)
		default:
		}
		for _, d := range svc.Deps {
			if _, ok := s.svcs[d]; !ok {
				return fmt.Errorf("supervisor: service %q depends on unknown service %q", svc.Name, d)
			}
		}
		return nil
	}()
	if err != nil {
		delete(s.svcs, svc.Name)
		return err
	}
	s.order = append(s.order, svc.Name)
	s.wg.Add(1)
	go s.run(ctx, s.svcs[svc.Name])
	return nil
}

// topo orders services so every dependency comes before its dependents.
func (s *Supervisor) topo() ([]string, error) {
	names := make([]string, 0, len(s.svcs))
	for n := range s.svcs {
		names = append(names, n)
	}
	sortStrings(names)
	var out []string
	mark := map[string]int{}
	var visit func(n, from string) error
	visit = func(n, from string) error {
		svc, ok := s.svcs[n]
		if !ok {
			return fmt.Errorf("supervisor: service %q depends on unknown service %q", from, n)
		}
		switch mark[n] {
		case 1:
			return fmt.Errorf("supervisor: dependency cycle through %q", n)
		case 2:
			return nil
		}
		mark[n] = 1
		for _, d := range svc.Deps {
			if err := visit(d, n); err != nil {
				return err
			}
		}
		mark[n] = 2
		out = append(out, n)
		return nil
	}
	for _, n := range names {
		if err := visit(n, ""); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func sortStrings(a []string) {
	for i := 1; i < len(a); i++ {
		for j := i; j > 0 && a[j] < a[j-1]; j-- {
			a[j], a[j-1] = a[j-1], a[j]
		}
	}
}

func (s *Supervisor) set(svc *service, st State, pid int) {
	s.mu.Lock()
	svc.state, svc.pid = st, pid
	s.mu.Unlock()
}

// Status returns a service's state and current pid (0 when not running).
func (s *Supervisor) Status(name string) (State, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	svc, ok := s.svcs[name]
	if !ok {
		return "", 0
	}
	return svc.state, svc.pid
}

// Info is one service's state, as List reports it.
type Info struct {
	Name     string   `json:"name"`
	State    State    `json:"state"`
	PID      int      `json:"pid,omitempty"`
	Restarts int      `json:"restarts"`
	Deps     []string `json:"deps,omitempty"`
}

// List reports every service, in start order once started (else by name).
func (s *Supervisor) List() []Info {
	s.mu.Lock()
	defer s.mu.Unlock()
	names := s.order
	if names == nil {
		for n := range s.svcs {
			names = append(names, n)
		}
		sortStrings(names)
	}
	out := make([]Info, 0, len(names))
	for _, n := range names {
		svc := s.svcs[n]
		out = append(out, Info{Name: n, State: svc.state, PID: svc.pid, Restarts: svc.restarts, Deps: svc.Deps})
	}
	return out
}

// Restarts is how many times name was restarted after exiting.
func (s *Supervisor) Restarts(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if svc, ok := s.svcs[name]; ok {
		return svc.restarts
	}
	return 0
}

// WaitHealthy blocks until name is healthy or ctx ends.
func (s *Supervisor) WaitHealthy(ctx context.Context, name string) error {
	s.mu.Lock()
	svc, ok := s.svcs[name]
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("supervisor: no service %q", name)
	}
	select {
	case <-svc.ready:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("supervisor: %s not healthy: %w", name, ctx.Err())
	}
}

// WaitDone blocks until the Once service name has ended and returns
// nil if it exited 0, else how it failed.
func (s *Supervisor) WaitDone(ctx context.Context, name string) error {
	s.mu.Lock()
	svc, ok := s.svcs[name]
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("supervisor: no service %q", name)
	}
	select {
	case <-svc.exited:
	case <-ctx.Done():
		return fmt.Errorf("supervisor: %s not done: %w", name, ctx.Err())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return svc.result
}

func (svc *service) stopping() bool {
	select {
	case <-svc.stop:
		return true
	default:
		return false
	}
}

// run is one service's life: wait for deps, then start/wait/backoff until
// the supervisor stops.
func (s *Supervisor) run(ctx context.Context, svc *service) {
	defer s.wg.Done()
	defer close(svc.exited)
	for _, d := range svc.Deps {
		select {
		case <-s.svcs[d].ready:
		case <-svc.stop:
			s.set(svc, Stopped, 0)
			return
		}
	}
	backoff := s.o.BackoffMin
	for {
		started := time.Now()
		status, err := s.runOnce(ctx, svc)
		if svc.stopping() {
			s.set(svc, Stopped, 0)
			if svc.Once {
				s.mu.Lock()
				svc.result = fmt.Errorf("%s: stopped before it finished", svc.Name)
				s.mu.Unlock()
			}
			return
		}
		if svc.Once {
			s.finish(svc, status, err, time.Since(started))
			return
		}
		if err != nil {
			s.o.Log("service %s: %v", svc.Name, err)
		} else {
			s.o.Log("service %s exited: %s", svc.Name, describe(status))
		}
		if time.Since(started) >= s.o.StableAfter {
			backoff = s.o.BackoffMin
		}
		s.set(svc, Backoff, 0)
		s.o.Log("service %s: restarting in %v", svc.Name, backoff)
		select {
		case <-time.After(backoff):
		case <-svc.stop:
			s.set(svc, Stopped, 0)
			return
		}
		backoff *= 2
		if backoff > s.o.BackoffMax {
			backoff = s.o.BackoffMax
		}
		s.mu.Lock()
		svc.restarts++
		s.mu.Unlock()
	}
}

// finish records how a Once service ended.
func (s *Supervisor) finish(svc *service, status syscall.WaitStatus, err error, took time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	svc.pid = 0
	switch {
	case err != nil:
		svc.state, svc.result = Failed, err
	case status.Exited() && status.ExitStatus() == 0:
		svc.state = Done
		if !svc.readyOK {
			svc.readyOK = true
			close(svc.ready)
		}
	default:
		svc.state, svc.result = Failed, fmt.Errorf("%s: %s", svc.Name, describe(status))
	}
	if svc.result != nil {
		s.o.Log("service %s failed after %v: %v", svc.Name, took.Round(time.Millisecond), svc.result)
	} else {
		s.o.Log("service %s done in %v", svc.Name, took.Round(time.Millisecond))
	}
}

func describe(ws syscall.WaitStatus) string {
	if ws.Signaled() {
		return "killed by " + ws.Signal().String()
	}
	return "exit status " + strconv.Itoa(ws.ExitStatus())
}

// runOnce starts the process and waits for it to exit (or for Stop).
func (s *Supervisor) runOnce(ctx context.Context, svc *service) (syscall.WaitStatus, error) {
	cmd := exec.Command(svc.Path, svc.Args...)
	cmd.Env = svc.Env
	if cmd.Env == nil {
		cmd.Env = []string{}
	}
	cmd.Dir = svc.Dir
	if cmd.Dir == "" {
		cmd.Dir = "/"
	}
	// Own process group: stop signals reach the service's children too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cg, err := s.cgroup(svc.Name)
	if err != nil {
		return 0, err
	}
	if cg != nil {
		defer cg.Close()
		cmd.SysProcAttr.UseCgroupFD = true
		cmd.SysProcAttr.CgroupFD = int(cg.Fd())
	}
	var out io.WriteCloser = nopCloser{io.Discard}
	if s.o.LogDir != "" {
		out = &logFile{Path: filepath.Join(s.o.LogDir, svc.Name+".log"), Max: s.o.MaxLogSize, Keep: s.o.LogFiles}
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return 0, err
	}
	cmd.Stdout, cmd.Stderr = pw, pw
	if svc.Stdin != nil {
		cmd.Stdin = svc.Stdin
	}
	exit, err := s.o.Spawner.Start(cmd)
	pw.Close()
	if svc.Stdin != nil {
		svc.Stdin.Close()
	}
	if err != nil {
		pr.Close()
		out.Close()
		s.set(svc, Failed, 0)
		return 0, fmt.Errorf("start %s: %w", svc.Path, err)
	}
	copied := make(chan struct{})
	go func() {
		io.Copy(out, pr)
		pr.Close()
		out.Close()
		close(copied)
	}()
	pid := cmd.Process.Pid
	s.set(svc, Running, pid)
	s.o.Log("service %s started (pid %d)", svc.Name, pid)
	if svc.OOMScoreAdj != 0 {
		if err := os.WriteFile(fmt.Sprintf("/proc/%d/oom_score_adj", pid), []byte(strconv.Itoa(svc.OOMScoreAdj)), 0); err != nil {
			s.o.Log("service %s: oom_score_adj: %v", svc.Name, err)
		}
	}
	healthCtx, cancelHealth := context.WithCancel(ctx)
	if !svc.Once { // a one-shot is healthy when it is done
		go s.watchHealth(healthCtx, svc, pid)
	}
	defer cancelHealth()

	var ws syscall.WaitStatus
	select {
	case ws = <-exit:
	case <-svc.stop:
		ws = s.terminate(svc, pid, exit, cg)
	}
	cancelHealth()
	// A grandchild may hold the pipe open; do not wait for it forever.
	select {
	case <-copied:
	case <-time.After(time.Second):
	}
	return ws, nil
}

func (s *Supervisor) watchHealth(ctx context.Context, svc *service, pid int) {
	for {
		ok := svc.Health == nil || svc.Health(ctx) == nil
		if ok {
			s.mu.Lock()
			if svc.pid == pid && svc.state == Running {
				svc.state = Healthy
			}
			if !svc.readyOK {
				svc.readyOK = true
				close(svc.ready)
			}
			s.mu.Unlock()
			if svc.Health == nil {
				return
			}
			s.o.Log("service %s healthy", svc.Name)
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(s.o.HealthInterval):
		}
	}
}

// terminate sends SIGTERM to the process group, waits StopTimeout, then
// SIGKILLs the group (and the whole cgroup, which also catches processes
// that left the group).
func (s *Supervisor) terminate(svc *service, pid int, exit <-chan syscall.WaitStatus, cg *os.File) syscall.WaitStatus {
	syscall.Kill(-pid, syscall.SIGTERM)
	select {
	case ws := <-exit:
		syscall.Kill(-pid, syscall.SIGKILL) // stragglers in the group
		return ws
	case <-time.After(svc.StopTimeout):
	}
	s.o.Log("service %s did not stop in %v: SIGKILL", svc.Name, svc.StopTimeout)
	syscall.Kill(-pid, syscall.SIGKILL)
	if cg != nil {
		os.WriteFile(filepath.Join(s.o.CgroupRoot, svc.Name, "cgroup.kill"), []byte("1"), 0)
	}
	return <-exit
}

// cgroup creates (if needed) and opens CgroupRoot/NAME.
func (s *Supervisor) cgroup(name string) (*os.File, error) {
	if s.o.CgroupRoot == "" {
		return nil, nil
	}
	dir := filepath.Join(s.o.CgroupRoot, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("cgroup %s: %w", dir, err)
	}
	f, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("cgroup %s: %w", dir, err)
	}
	return f, nil
}

// Stop stops every service, dependents before their dependencies: each
// one is terminated and waited for before the next. Safe to call twice.
func (s *Supervisor) Stop() {
	s.mu.Lock()
	select {
	case <-s.stop:
		s.mu.Unlock()
		s.wg.Wait()
		return
	default:
	}
	close(s.stop)
	order := append([]string(nil), s.order...)
	s.mu.Unlock()
	for i := len(order) - 1; i >= 0; i-- {
		svc := s.svcs[order[i]]
		close(svc.stop)
		<-svc.exited
		s.o.Log("service %s stopped", svc.Name)
	}
	s.wg.Wait()
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

type direct struct{}

func (direct) Start(cmd *exec.Cmd) (<-chan syscall.WaitStatus, error) {
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	ch := make(chan syscall.WaitStatus, 1)
	go func() {
		cmd.Wait()
		ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
		ch <- ws
	}()
	return ch, nil
}
