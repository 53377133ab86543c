package qcow2

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kilnproject/kiln/internal/testimg"
)

// rawImage returns a disk with pseudo-random data in a few regions and zeros
// elsewhere; its size is deliberately not a multiple of the cluster size.
func rawImage(t testing.TB, size int64) []byte {
	t.Helper()
	regions := []testimg.Region{
		{0, 4096},                    // boot sector / GPT area
		{3*clusterSize + 100, 70000}, // straddles two clusters
		{size / 2, 1 << 20},          // 1 MiB in the middle
		{size - 1000, 1000},          // the partial last cluster
	}
	// Half-random clusters: their compressed forms straddle host clusters.
	for c := int64(100); c < 140; c++ {
		regions = append(regions, testimg.Region{c * clusterSize, 3000})
	}
	img := testimg.Raw(size, regions...)
	// Compressible regions, one spanning several clusters.
	copy(img[size/4:], bytes.Repeat([]byte("kiln compressible text "), 20000))
	copy(img[size/3+5000:], bytes.Repeat([]byte{0xff}, 100))
	return img
}

func writeImage(t testing.TB, raw []byte, o ...Options) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := WriteOptions(&b, bytes.NewReader(raw), int64(len(raw)), append(o, Options{})[0]); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestQemuImgAcceptsImage(t *testing.T) {
	t.Run("plain", func(t *testing.T) { testQemuImg(t, Options{}) })
	t.Run("compressed", func(t *testing.T) { testQemuImg(t, Options{Compress: true}) })
}

func testQemuImg(t *testing.T, o Options) {
	testimg.NeedQemuImg(t)
	const size = 40<<20 + 12345
	raw := rawImage(t, size)
	img := writeImage(t, raw, o)
	dir := t.TempDir()
	rawPath := testimg.WriteFile(t, dir, "disk.raw", raw)
	imgPath := testimg.WriteFile(t, dir, "disk.qcow2", img)

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
	if err := json.Unmarshal([]byte(testimg.QemuImg(t, "info", "--output=json", imgPath)), &info); err != nil {
		t.Fatal(err)
	}
	if info.Format != "qcow2" || info.VirtualSize != (size+511)&^511 || info.ClusterSize != clusterSize {
		t.Errorf("qemu-img info: format %q size %d cluster %d, want qcow2 %d %d", info.Format, info.VirtualSize, info.ClusterSize, size, clusterSize)
	}
	if d := info.FormatSpecific.Data; d.Compat != "1.1" || d.RefcountBits != 16 || d.Corrupt {
		t.Errorf("qemu-img info format-specific: %+v, want compat 1.1, 16 refcount bits, not corrupt", d)
	}
	out := testimg.QemuImg(t, "check", "-f", "qcow2", imgPath)
	if !strings.Contains(out, "No errors were found") {
		t.Errorf("qemu-img check: %s", out)
	}
	if o.Compress == strings.Contains(out, "0.00% compressed clusters") {
		t.Errorf("qemu-img check statistics do not match Compress=%v:\n%s", o.Compress, out)
	}
	testimg.QemuImg(t, "compare", "-f", "raw", "-F", "qcow2", rawPath, imgPath)

	if len(img) > len(raw)/5 {
		t.Errorf("image is %d bytes for a %d-byte mostly zero disk: not sparse", len(img), len(raw))
	}
}

func TestDeterministic(t *testing.T) {
	raw := rawImage(t, 5<<20+512)
	for _, o := range []Options{{}, {Compress: true}} {
		if !bytes.Equal(writeImage(t, raw, o), writeImage(t, raw, o)) {
			t.Fatalf("%+v: two writes of the same input differ", o)
		}
	}
}

// TestCompressedIsSmaller checks compression is used where it pays and
// that the compressed and plain images hold the same disk (via qemu-img).
func TestCompressedIsSmaller(t *testing.T) {
	raw := rawImage(t, 9<<20)
	plain, packed := writeImage(t, raw), writeImage(t, raw, Options{Compress: true})
	if len(packed) >= len(plain)-5*clusterSize {
		t.Fatalf("compressed image %d bytes, plain %d: compression barely used", len(packed), len(plain))
	}
}

// TestManyRefcountBlocks forces more than one refcount block and L2 table
// without a huge disk, by checking the layout arithmetic directly.
func TestPlanCoversItself(t *testing.T) {
	used := make([]int32, 3*refsPerBlock)
	for i := range used {
		used[i] = stored
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
	raw := testimg.Striped(size, clusterSize, 256) // every other cluster holds data
	for _, o := range []Options{{}, {Compress: true}} {
		b.Run(fmt.Sprintf("compress=%v", o.Compress), func(b *testing.B) {
			b.SetBytes(size)
			for b.Loop() {
				if err := WriteOptions(io.Discard, bytes.NewReader(raw), size, o); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestSeveralL2Tables uses a sparse host file larger than one L2 table's
// reach (512 MiB) so the L1 table has several entries, one of them empty.
func TestSeveralL2Tables(t *testing.T) {
	testimg.NeedQemuImg(t)
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
	if o := testimg.QemuImg(t, "check", "-f", "qcow2", imgPath); !bytes.Contains([]byte(o), []byte("No errors were found")) {
		t.Errorf("qemu-img check: %s", o)
	}
	testimg.QemuImg(t, "compare", "-f", "raw", "-F", "qcow2", rawPath, imgPath)
}
