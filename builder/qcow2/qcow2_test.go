package qcow2

import (
	"bytes"
	"encoding/json"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// rawImage returns a disk with pseudo-random data in a few regions and zeros
// elsewhere; its size is deliberately not a multiple of the cluster size.
func rawImage(t testing.TB, size int64) []byte {
	t.Helper()
	img := make([]byte, size)
	r := rand.New(rand.NewPCG(1, 2))
	fill := func(off, n int64) {
		for i := off; i < off+n && i < size; i++ {
			img[i] = byte(r.Uint32())
		}
	}
	fill(0, 4096)                  // boot sector / GPT area
	fill(3*clusterSize+100, 70000) // straddles two clusters
	fill(size/2, 1<<20)            // 1 MiB in the middle
	fill(size-1000, 1000)          // the partial last cluster
	return img
}

func needTool(t testing.TB, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Fatalf("%s is required as the test oracle (apt-get install qemu-utils): %v", name, err)
	}
}

func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}

func writeImage(t testing.TB, raw []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := Write(&b, bytes.NewReader(raw), int64(len(raw))); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestQemuImgAcceptsImage(t *testing.T) {
	needTool(t, "qemu-img")
	const size = 40<<20 + 12345
	raw := rawImage(t, size)
	dir := t.TempDir()
	rawPath := filepath.Join(dir, "disk.raw")
	imgPath := filepath.Join(dir, "disk.qcow2")
	img := writeImage(t, raw)
	if err := os.WriteFile(rawPath, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(imgPath, img, 0o644); err != nil {
		t.Fatal(err)
	}

	var info struct {
		Format         string `json:"format"`
		VirtualSize    int64  `json:"virtual-size"`
		ClusterSize    int64  `json:"cluster-size"`
		FormatSpecific struct {
			Data struct {
				Compat       string `json:"compat"`
				RefcountBits int    `json:"refcount-bits"`
				Corrupt      bool   `json:"corrupt"`
			} `json:"data"`
		} `json:"format-specific"`
	}
	if err := json.Unmarshal([]byte(run(t, "qemu-img", "info", "--output=json", imgPath)), &info); err != nil {
		t.Fatal(err)
	}
	if info.Format != "qcow2" || info.VirtualSize != (size+511)&^511 || info.ClusterSize != clusterSize {
		t.Errorf("qemu-img info: format %q size %d cluster %d, want qcow2 %d %d", info.Format, info.VirtualSize, info.ClusterSize, size, clusterSize)
	}
	if d := info.FormatSpecific.Data; d.Compat != "1.1" || d.RefcountBits != 16 || d.Corrupt {
		t.Errorf("qemu-img info format-specific: %+v, want compat 1.1, 16 refcount bits, not corrupt", d)
	}
	out := run(t, "qemu-img", "check", "-f", "qcow2", imgPath)
	if !bytes.Contains([]byte(out), []byte("No errors were found")) {
		t.Errorf("qemu-img check: %s", out)
	}
	run(t, "qemu-img", "compare", "-f", "raw", "-F", "qcow2", rawPath, imgPath)

	if len(img) > len(raw)/10 {
		t.Errorf("image is %d bytes for a %d-byte mostly zero disk: not sparse", len(img), len(raw))
	}
}

func TestDeterministic(t *testing.T) {
	raw := rawImage(t, 5<<20+512)
	if !bytes.Equal(writeImage(t, raw), writeImage(t, raw)) {
		t.Fatal("two writes of the same input differ")
	}
}

// TestManyRefcountBlocks forces more than one refcount block and L2 table
// without a huge disk, by checking the layout arithmetic directly.
func TestPlanCoversItself(t *testing.T) {
	used := make([]bool, 3*refsPerBlock)
	for i := range used {
		used[i] = true
	}
	l := plan(int64(len(used))*clusterSize, used)
	if l.rbClusters*refsPerBlock < l.totalClusters {
		t.Fatalf("%d refcount blocks cannot cover %d clusters", l.rbClusters, l.totalClusters)
	}
	if got := 1 + l.l1Clusters + l.rtClusters + l.rbClusters + l.l2Clusters + l.dataClusters; got != l.totalClusters {
		t.Fatalf("total clusters %d, sum of parts %d", l.totalClusters, got)
	}
	if l.l2Clusters != int64(len(used))/l2Entries {
		t.Fatalf("%d L2 tables for %d clusters", l.l2Clusters, len(used))
	}
}

func TestRejectsBadSize(t *testing.T) {
	if err := Write(&bytes.Buffer{}, bytes.NewReader(nil), 0); err == nil {
		t.Fatal("size 0 accepted")
	}
}

func BenchmarkWrite(b *testing.B) {
	const size = 64 << 20
	raw := make([]byte, size)
	r := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < size; i += 2 * clusterSize { // every other cluster holds data
		for j := i; j < i+clusterSize; j += 8 {
			v := r.Uint64()
			for k := 0; k < 8; k++ {
				raw[j+k] = byte(v >> (8 * k))
			}
		}
	}
	b.SetBytes(size)
	for b.Loop() {
		if err := Write(io.Discard, bytes.NewReader(raw), size); err != nil {
			b.Fatal(err)
		}
	}
}

// TestSeveralL2Tables uses a sparse host file larger than one L2 table's
// reach (512 MiB) so the L1 table has several entries, one of them empty.
func TestSeveralL2Tables(t *testing.T) {
	needTool(t, "qemu-img")
	const size = 1100 << 20
	dir := t.TempDir()
	rawPath := filepath.Join(dir, "big.raw")
	f, err := os.Create(rawPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	for _, off := range []int64{0, size - 70000} { // L2 #0 and #2; #1 stays empty
		if _, err := f.WriteAt(bytes.Repeat([]byte("kiln"), 70000/4), off); err != nil {
			t.Fatal(err)
		}
	}
	imgPath := filepath.Join(dir, "big.qcow2")
	out, err := os.Create(imgPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := Write(out, f, size); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	if o := run(t, "qemu-img", "check", "-f", "qcow2", imgPath); !bytes.Contains([]byte(o), []byte("No errors were found")) {
		t.Errorf("qemu-img check: %s", o)
	}
	run(t, "qemu-img", "compare", "-f", "raw", "-F", "qcow2", rawPath, imgPath)
}
