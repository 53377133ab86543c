package builder

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"golang.org/x/term"
)

// Progress prints one line per build stage with its duration and the size of
// what it produced. On a terminal the running stage is shown and then
// replaced by its result; elsewhere (CI, pipes) only the result lines appear.
type Progress struct {
	mu    sync.Mutex
	w     io.Writer
	tty   bool
	start time.Time
}

// NewProgress writes to w; tty decoration is used when w is a terminal.
func NewProgress(w io.Writer) *Progress {
	p := &Progress{w: w, start: time.Now()}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) && os.Getenv("CI") == "" {
		p.tty = true
	}
	return p
}

// Stage starts a named stage; call the returned function when it is done,
// with the size of its product (0 when there is none) and a detail string.
func (p *Progress) Stage(arch, name string) func(size int64, detail string) {
	if p == nil {
		return func(int64, string) {}
	}
	t0 := time.Now()
	if p.tty {
		p.mu.Lock()
		fmt.Fprintf(p.w, "\r\033[K  ...     %-6s %-14s", arch, name)
		p.mu.Unlock()
	}
	return func(size int64, detail string) {
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.tty {
			fmt.Fprint(p.w, "\r\033[K")
		}
		sz := ""
		if size > 0 {
			sz = HumanSize(size)
		}
		fmt.Fprintf(p.w, "  %6.2fs %-6s %-14s %10s  %s\n", time.Since(t0).Seconds(), arch, name, sz, detail)
	}
}

// Logf prints an informational line.
func (p *Progress) Logf(format string, args ...any) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty {
		fmt.Fprint(p.w, "\r\033[K")
	}
	fmt.Fprintf(p.w, "  "+format+"\n", args...)
}

// HumanSize formats a byte count with a binary unit.
func HumanSize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
