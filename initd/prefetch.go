package initd

import (
	"io"
	"os"
	"time"
)

// prefetch reads path once from start to end so its pages are in the page
// cache. The system stage's /sbin/init lives on squashfs: exec'ing it cold
// faults its pages in one at a time in random order, which costs over a
// second under emulation, while one sequential read costs a fraction.
func prefetch(path string) (n int64, took time.Duration, err error) {
	start := time.Now()
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	buf := make([]byte, 256<<10)
	for {
		m, err := f.Read(buf)
		n += int64(m)
		if err == io.EOF {
			return n, time.Since(start), nil
		}
		if err != nil {
			return n, time.Since(start), err
		}
	}
}
