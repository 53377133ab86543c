// Package bootlog is initd's logger: every line goes to the console at once
// (prefix "kiln: ") and is kept in memory until the state disk is mounted,
// then flushed to a file that receives every later line too.
package bootlog

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// Prefix starts every console line.
const Prefix = "kiln: "

// maxMemory bounds the in-memory buffer so a chatty boot without state
// cannot eat the RAM of a live system; the oldest bytes are dropped.
const maxMemory = 1 << 20

// Logger writes lines to the console and to memory or a file.
type Logger struct {
	mu      sync.Mutex
	console io.Writer
	mem     bytes.Buffer
	file    *os.File
	debug   bool
}

// New returns a logger writing to console (normally /dev/console).
func New(console io.Writer) *Logger { return &Logger{console: console} }

// SetDebug turns Debugf output on or off (kiln.debug).
func (l *Logger) SetDebug(on bool) { l.mu.Lock(); l.debug = on; l.mu.Unlock() }

// DebugEnabled reports whether Debugf prints.
func (l *Logger) DebugEnabled() bool { l.mu.Lock(); defer l.mu.Unlock(); return l.debug }

// Printf logs one line (a trailing newline is added if missing).
func (l *Logger) Printf(format string, args ...any) { l.write(fmt.Sprintf(format, args...)) }

// Debugf logs only when debug is on.
func (l *Logger) Debugf(format string, args ...any) {
	if l.DebugEnabled() {
		l.write(fmt.Sprintf(format, args...))
	}
}

func (l *Logger) write(msg string) {
	var b strings.Builder
	for _, line := range strings.Split(strings.TrimRight(msg, "\n"), "\n") {
		b.WriteString(Prefix)
		b.WriteString(line)
		b.WriteByte('\n')
	}
	s := b.String()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.console != nil {
		io.WriteString(l.console, s)
	}
	if l.file != nil {
		l.file.WriteString(s)
		return
	}
	l.mem.WriteString(s)
	if over := l.mem.Len() - maxMemory; over > 0 {
		l.mem.Next(over)
	}
}

// Memory returns what is buffered and not yet flushed.
func (l *Logger) Memory() string { l.mu.Lock(); defer l.mu.Unlock(); return l.mem.String() }

// FlushTo appends the buffered lines to path (creating its directory) and
// keeps appending every later line there.
func (l *Logger) FlushTo(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("log file %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("log file %s: %w", path, err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, err := f.Write(l.mem.Bytes()); err != nil {
		f.Close()
		return fmt.Errorf("log file %s: %w", path, err)
	}
	l.mem.Reset()
	if l.file != nil {
		l.file.Close()
	}
	l.file = f
	return nil
}

// Close syncs and closes the log file, if any; later lines go to memory.
func (l *Logger) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.file == nil {
		return nil
	}
	l.file.Sync()
	err := l.file.Close()
	l.file = nil
	return err
}

// Preload puts earlier lines (the initramfs stage's log, carried over the
// exec) in memory ahead of everything else, without printing them again.
func (l *Logger) Preload(lines string) {
	if lines == "" {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	rest := l.mem.String()
	l.mem.Reset()
	l.mem.WriteString(lines + "\n" + rest)
}
