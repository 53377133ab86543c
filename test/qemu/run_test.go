package qemu_test

import (
	"bufio"
	"fmt"
	"io"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestKilnRunCtrlC drives `kiln run` the way a user does, on a terminal
// (script(1) gives it a pty): the minimal ISO boots to the ready line, Ctrl-C
// presses the power button, initd shuts down cleanly and QEMU exits.
func TestKilnRunCtrlC(t *testing.T) {
	// exec: script(1) runs the command with $SHELL -c; a shell that stays
	// as kiln's parent (dash does) gets the terminal's SIGINT too and exits 130.
	cmd := exec.Command("script", "-qfec", "exec "+kilnBin+" run --memory 1024 "+image("amd64", "iso"), "/dev/null")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("script(1) from bsdutils: %v", err)
	}
	defer cmd.Process.Kill()
	lines := make(chan string, 1024)
	var log strings.Builder
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- strings.TrimRight(sc.Text(), "\r")
		}
		close(lines)
	}()
	wait := func(re *regexp.Regexp, d time.Duration) bool {
		deadline := time.After(d)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					return false
				}
				log.WriteString(l + "\n")
				if re.MatchString(l) {
					return true
				}
			case <-deadline:
				return false
			}
		}
	}
	// fail keeps the console log and shows its end, so CI output says why.
	fail := func(format string, args ...any) {
		t.Helper()
		saveLog(t, log.String())
		t.Fatalf("%s\nlast console lines:\n%s", fmt.Sprintf(format, args...), lastLines(log.String(), 15))
	}
	if !wait(readyRe, 4*time.Minute) {
		fail("kiln run: no ready line")
	}
	start := time.Now()
	io.WriteString(stdin, "\x03") // Ctrl-C on the terminal
	if !wait(regexp.MustCompile(`poweroff now`), 30*time.Second) {
		fail("Ctrl-C did not lead initd to a clean poweroff")
	}
	if !wait(regexp.MustCompile(`kiln: VM stopped`), 30*time.Second) {
		fail("kiln run did not report the VM stopped")
	}
	for l := range lines { // the rest: Wait must not run while the pipe is read
		log.WriteString(l + "\n")
	}
	if err := cmd.Wait(); err != nil {
		fail("kiln run exited with %v", err)
	}
	for _, want := range []string{"powering the VM off", "stopping services", "syncing and unmounting"} {
		if !strings.Contains(log.String(), want) {
			fail("console lacks %q", want)
		}
	}
	t.Logf("clean poweroff %.1fs after Ctrl-C", time.Since(start).Seconds())
}

// TestWrongArchFailsFast: an arm64 image booted as amd64 fails quickly with
// the console log, instead of hanging until the global timeout.
func TestWrongArchFailsFast(t *testing.T) {
	for _, fw := range []string{"bios", "uefi"} {
		t.Run(fw, func(t *testing.T) {
			m := newMachine(t, "amd64", fw, image("arm64", "raw"))
			vm, err := m.Start(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			defer vm.Kill()
			// Our boots print within seconds of power-on; a stuck one says nothing.
			vm.SilenceLimit = 30 * time.Second
			start := time.Now()
			_, err = vm.WaitFor(t.Context(), readyRe, 4*time.Minute)
			if err == nil {
				t.Fatal("an arm64 image reached ready on amd64")
			}
			if d := time.Since(start); d > 2*time.Minute {
				t.Fatalf("failure took %s: not fast", d)
			}
			t.Logf("failed fast after %.1fs: %v", time.Since(start).Seconds(), strings.SplitN(err.Error(), "\n", 2)[0])
		})
	}
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}
