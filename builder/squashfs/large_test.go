package squashfs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kilnproject/kiln/builder/fstree"
)

// TestLargeFile writes a file past 4 GiB (a sparse host file, so it costs
// little disk) and checks unsquashfs reports its size and extracts its end.
func TestLargeFile(t *testing.T) {
	dir := t.TempDir()
	host := filepath.Join(dir, "big")
	f, err := os.Create(host)
	must(t, err)
	const size = 4<<30 + 300<<10 + 5
	tail := []byte("the end\n")
	_, err = f.WriteAt(tail, size-int64(len(tail)))
	must(t, err)
	_, err = f.WriteAt([]byte("start"), 0)
	must(t, err)
	must(t, f.Close())

	tr := fstree.New()
	must(t, tr.AddHostFile("big", 0o644, host))
	must(t, tr.AddFile("small", 0o644, []byte("small\n")))
	img := writeImage(t, tr, Options{ModTime: testTime})
	st := checkKernelLayout(t, img)
	if st.sparseFiles != 1 {
		t.Errorf("want the big file stored with holes, stats %+v", st)
	}
	checkListing(t, img, tr)

	out := filepath.Join(dir, "out")
	run(t, "unsquashfs", "-no-progress", "-d", out, img, "big")
	x, err := os.Open(filepath.Join(out, "big"))
	must(t, err)
	defer x.Close()
	fi, err := x.Stat()
	must(t, err)
	if fi.Size() != size {
		t.Fatalf("extracted size %d, want %d", fi.Size(), int64(size))
	}
	buf := make([]byte, 64)
	_, err = x.ReadAt(buf, size-int64(len(buf)))
	must(t, err)
	if !strings.HasSuffix(string(buf), string(tail)) || strings.Trim(string(buf[:len(buf)-len(tail)]), "\x00") != "" {
		t.Fatalf("extracted tail %q", buf)
	}
	_, err = x.ReadAt(buf[:5], 0)
	must(t, err)
	if string(buf[:5]) != "start" {
		t.Fatalf("extracted head %q", buf[:5])
	}
}
