package supervisor

import (
	"fmt"
	"os"
	"sync"
)

// logFile is a size-rotated log: when Path would grow past Max bytes it is
// renamed to Path.1 (Path.1 to Path.2, ... up to Keep files) and started anew.
type logFile struct {
	Path string
	Max  int64
	Keep int

	mu   sync.Mutex
	f    *os.File
	size int64
}

func (l *logFile) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f != nil && l.Max > 0 && l.size+int64(len(p)) > l.Max && l.size > 0 {
		l.f.Close()
		l.f = nil
		l.rotate()
	}
	if l.f == nil {
		f, err := os.OpenFile(l.Path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
		if err != nil {
			return 0, err
		}
		st, _ := f.Stat()
		l.f, l.size = f, st.Size()
	}
	n, err := l.f.Write(p)
	l.size += int64(n)
	return n, err
}

func (l *logFile) rotate() {
	if l.Keep <= 0 {
		os.Remove(l.Path)
		return
	}
	for i := l.Keep - 1; i >= 1; i-- {
		os.Rename(fmt.Sprintf("%s.%d", l.Path, i), fmt.Sprintf("%s.%d", l.Path, i+1))
	}
	os.Rename(l.Path, l.Path+".1")
}

func (l *logFile) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}
