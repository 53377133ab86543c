// Package initd is kiln's init daemon: PID 1 in the initramfs (/init) and
// in the system image (/sbin/init, KILN_STAGE=system). Boot is a readable
// list of small named phases; the runner times and logs each one.
package initd

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Phase is one named boot step.
type Phase struct {
	Name string
	Run  func(ctx context.Context) error
}

// Logger is what phases log through (bootlog.Logger in the daemon).
type Logger interface {
	Printf(format string, args ...any)
	Debugf(format string, args ...any)
}

// clock is time.Now, replaceable in tests so the log is deterministic.
var clock = time.Now

// RunPhases runs phases in order, logging "phase NAME done in 12ms" after
// each. It stops at the first error and returns it with the phase's name.
func RunPhases(ctx context.Context, log Logger, phases []Phase) error {
	for _, p := range phases {
		log.Debugf("phase %s", p.Name)
		start := clock()
		err := p.Run(ctx)
		took := clock().Sub(start)
		if err != nil {
			log.Printf("phase %s failed after %s: %v", p.Name, Millis(took), err)
			return fmt.Errorf("phase %s: %w", p.Name, err)
		}
		log.Printf("phase %s done in %s", p.Name, Millis(took))
	}
	return nil
}

// Millis formats a duration as whole milliseconds ("12ms").
func Millis(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) + "ms" }

// ReadyLine formats the line that tells the world the node is up (the
// logger adds "kiln: "): total is the uptime now, kernel the uptime when
// initd started in the initramfs.
func ReadyLine(total, kernel time.Duration, hostname string, addresses []string) string {
	init := total - kernel
	if init < 0 {
		init = 0
	}
	if hostname == "" {
		hostname = "-"
	}
	addrs := strings.Join(addresses, ",")
	if addrs == "" {
		addrs = "-"
	}
	return fmt.Sprintf("ready in %s (kernel %s, initd %s) hostname=%s addresses=%s",
		seconds(total), seconds(kernel), seconds(init), hostname, addrs)
}

func seconds(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', 2, 64) + "s"
}

// ParseUptime reads the first field of /proc/uptime ("12.34 56.78").
func ParseUptime(s string) (time.Duration, error) {
	f := strings.Fields(s)
	if len(f) == 0 {
		return 0, fmt.Errorf("uptime: empty")
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return 0, fmt.Errorf("uptime %q: %w", f[0], err)
	}
	return time.Duration(v * float64(time.Second)), nil
}
