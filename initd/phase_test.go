package initd

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

type memLog struct{ lines []string }

func (m *memLog) Printf(f string, a ...any) { m.lines = append(m.lines, fmt.Sprintf(f, a...)) }
func (m *memLog) Debugf(f string, a ...any) {}

func TestRunPhases(t *testing.T) {
	now := time.Unix(0, 0)
	clock = func() time.Time { now = now.Add(6 * time.Millisecond); return now }
	defer func() { clock = time.Now }()
	var ran []string
	step := func(name string, err error) Phase {
		return Phase{name, func(context.Context) error { ran = append(ran, name); return err }}
	}
	var log memLog
	boom := errors.New("boom")
	err := RunPhases(context.Background(), &log, []Phase{step("mounts", nil), step("medium", boom), step("never", nil)})
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "phase medium") {
		t.Fatalf("err = %v", err)
	}
	if strings.Join(ran, ",") != "mounts,medium" {
		t.Errorf("ran %v", ran)
	}
	want := []string{"phase mounts done in 6ms", "phase medium failed after 6ms: boom"}
	if strings.Join(log.lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("log %q", log.lines)
	}
}

func TestReadyLine(t *testing.T) {
	got := ReadyLine(2410*time.Millisecond, 1320*time.Millisecond, "node1", []string{"10.0.2.15/24", "fd00::2/64"})
	want := "ready in 2.41s (kernel 1.32s, initd 1.09s) hostname=node1 addresses=10.0.2.15/24,fd00::2/64"
	if got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	if got := ReadyLine(time.Second, 0, "", nil); got != "ready in 1.00s (kernel 0.00s, initd 1.00s) hostname=- addresses=-" {
		t.Errorf("empty: %q", got)
	}
}

func TestParseUptime(t *testing.T) {
	d, err := ParseUptime("1.32 0.50\n")
	if err != nil || d != 1320*time.Millisecond {
		t.Fatalf("%v %v", d, err)
	}
	if _, err := ParseUptime(""); err == nil {
		t.Error("empty accepted")
	}
}
