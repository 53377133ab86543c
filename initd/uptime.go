package initd

import (
	"bytes"
	"io"
	"strconv"
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
