package initd

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/kilnproject/kiln/initd/bootlog"
	"golang.org/x/sys/unix"
)

// uptime is the time since boot (CLOCK_BOOTTIME, the clock behind
// /proc/uptime), read without opening a file.
func uptime() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}

// stampedConsole writes console lines with the uptime after the "kiln: "
// prefix once kiln.debug turns it on, so a slow boot can be read from the
// serial log alone, next to the kernel's own timestamps.
type stampedConsole struct {
	w   io.Writer
	on  atomic.Bool
	now func() time.Duration
}

func (c *stampedConsole) Write(p []byte) (int, error) {
	if !c.on.Load() {
		return c.w.Write(p)
	}
	n := len(p)
	stamp := "[" + strconv.FormatFloat(c.now().Seconds(), 'f', 3, 64) + "] "
	prefix := []byte(bootlog.Prefix)
	var b bytes.Buffer
	for len(p) > 0 {
		line := p
		if i := bytes.IndexByte(p, '\n'); i >= 0 {
			line = p[:i+1]
		}
		p = p[len(line):]
		if bytes.HasPrefix(line, prefix) {
			b.Write(prefix)
			b.WriteString(stamp)
			b.Write(line[len(prefix):])
		} else {
			b.Write(line)
		}
	}
	if _, err := c.w.Write(b.Bytes()); err != nil {
		return 0, err
	}
	return n, nil
}

// cpuLine sums /proc/stat's first line into busy and idle time since boot:
// two of them (kiln.debug logs one per stage start and one at ready) tell
// whether a slow boot waited for hardware or had no CPU to spare.
func cpuLine() string {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return "cpu: " + err.Error()
	}
	busy, idle, err := ParseCPUStat(string(data))
	if err != nil {
		return "cpu: " + err.Error()
	}
	return fmt.Sprintf("cpu since boot: busy %.2fs, idle %.2fs", busy.Seconds(), idle.Seconds())
}

// ParseCPUStat reads the aggregate "cpu" line of /proc/stat (USER_HZ
// ticks, 100 a second on Linux): idle is idle+iowait, busy the rest
// (guest time is already counted in user).
func ParseCPUStat(s string) (busy, idle time.Duration, err error) {
	line, _, _ := strings.Cut(s, "\n")
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return 0, 0, fmt.Errorf("/proc/stat: first line %q is not the cpu total", line)
	}
	const tick = 10 * time.Millisecond
	for i, v := range f[1:] {
		if i >= 8 { // guest, guest_nice: part of user already
			break
		}
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("/proc/stat: cpu field %d: %w", i+1, err)
		}
		if i == 3 || i == 4 {
			idle += time.Duration(n) * tick
		} else {
			busy += time.Duration(n) * tick
		}
	}
	return busy, idle, nil
}
