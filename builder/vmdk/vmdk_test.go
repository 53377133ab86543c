package vmdk

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/kilnproject/kiln/internal/testimg"
)

// rawImage returns a disk with pseudo-random data in a few regions and zeros
// elsewhere; its size is deliberately not a multiple of the grain size.
func rawImage(size int64) []byte {
	img := testimg.Raw(size, testimg.Region{0, 4096}, testimg.Region{3*grainSize + 100, 70000},
		testimg.Region{size / 2, 1 << 20}, testimg.Region{size - 1000, 1000})
	copy(img[size/4:], bytes.Repeat([]byte("compressible "), 50000))
	return img
}

func writeImage(t testing.TB, raw []byte, o Options) ([]byte, Info) {
	t.Helper()
	var b bytes.Buffer
	info, err := Write(&b, bytes.NewReader(raw), int64(len(raw)), o)
	if err != nil {
		t.Fatal(err)
	}
	if info.FileSize != int64(b.Len()) {
		t.Fatalf("Info.FileSize %d, wrote %d bytes", info.FileSize, b.Len())
	}
	return b.Bytes(), info
}

func TestQemuImgAcceptsImage(t *testing.T) {
	testimg.NeedQemuImg(t)
	const size = 40<<20 + 3*512 // 600 grains and a partial one: two grain tables
	raw := rawImage(size)
	for _, adapter := range []string{"", "ide", "pvscsi"} {
		t.Run("adapter="+adapter, func(t *testing.T) {
			img, info := writeImage(t, raw, Options{AdapterType: adapter, FileName: "disk.vmdk"})
			dir := t.TempDir()
			rawPath := testimg.WriteFile(t, dir, "disk.raw", raw)
			imgPath := testimg.WriteFile(t, dir, "disk.vmdk", img)
			var qi struct {
				Format         string `json:"format"`
				VirtualSize    int64  `json:"virtual-size"`
				FormatSpecific struct {
					Data struct {
						CreateType string `json:"create-type"`
						CID        uint32 `json:"cid"`
						ParentCID  uint32 `json:"parent-cid"`
						Extents    []struct {
							Compressed  bool  `json:"compressed"`
							ClusterSize int64 `json:"cluster-size"`
						} `json:"extents"`
					} `json:"data"`
				} `json:"format-specific"`
			}
			if err := json.Unmarshal([]byte(testimg.QemuImg(t, "info", "--output=json", imgPath)), &qi); err != nil {
				t.Fatal(err)
			}
			d := qi.FormatSpecific.Data
			if qi.Format != "vmdk" || qi.VirtualSize != size || d.CreateType != "streamOptimized" {
				t.Errorf("qemu-img info: format %q size %d create-type %q, want vmdk %d streamOptimized", qi.Format, qi.VirtualSize, d.CreateType, size)
			}
			if d.CID != info.CID || d.ParentCID != 0xffffffff {
				t.Errorf("qemu-img info: cid %08x parent %08x, want %08x ffffffff", d.CID, d.ParentCID, info.CID)
			}
			if len(d.Extents) != 1 || !d.Extents[0].Compressed || d.Extents[0].ClusterSize != grainSize {
				t.Errorf("qemu-img info extents: %+v, want one compressed extent with 64 KiB grains", d.Extents)
			}
			if out := testimg.QemuImg(t, "check", "-f", "vmdk", imgPath); !strings.Contains(out, "No errors were found") {
				t.Errorf("qemu-img check: %s", out)
			}
			testimg.QemuImg(t, "compare", "-f", "raw", "-F", "vmdk", rawPath, imgPath)

			want := "ddb.adapterType = \"lsilogic\""
			if adapter != "" {
				want = "ddb.adapterType = \"" + adapter + "\""
			}
			if !bytes.Contains(img[512:512*descSecs], []byte(want)) {
				t.Errorf("descriptor lacks %s", want)
			}
			if info.Capacity != size {
				t.Errorf("Info.Capacity %d, want %d", info.Capacity, size)
			}
			if info.PopulatedSize <= 0 || info.PopulatedSize >= size/4 {
				t.Errorf("Info.PopulatedSize %d for a mostly zero %d-byte disk", info.PopulatedSize, size)
			}
			if len(img) > len(raw)/10 {
				t.Errorf("image is %d bytes for a %d-byte mostly zero disk: not sparse", len(img), len(raw))
			}
		})
	}
}

// TestStreamLayout checks the parts VMware relies on and qemu does not:
// the header says "grain directory at end", and the stream ends with
// footer marker, footer, end-of-stream marker.
func TestStreamLayout(t *testing.T) {
	img, _ := writeImage(t, rawImage(3<<20), Options{})
	le := binary.LittleEndian
	if le.Uint32(img) != magic || le.Uint64(img[56:]) != gdAtEnd || le.Uint32(img[8:]) != 0x30001 {
		t.Fatalf("header: magic %x gdOffset %x flags %x", le.Uint32(img), le.Uint64(img[56:]), le.Uint32(img[8:]))
	}
	tail := img[len(img)-3*512:]
	if le.Uint32(tail[12:]) != markerFooter || le.Uint64(tail[0:]) != 1 {
		t.Fatalf("footer marker: %x", tail[:16])
	}
	footer := tail[512:1024]
	if le.Uint32(footer) != magic || le.Uint64(footer[56:]) == gdAtEnd {
		t.Fatalf("footer header lacks the real gdOffset")
	}
	if !bytes.Equal(tail[1024:], make([]byte, 512)) {
		t.Fatalf("end-of-stream marker is not an all-zero sector")
	}
	gd := int64(le.Uint64(footer[56:])) * 512
	if le.Uint32(img[gd-512+12:]) != markerGD {
		t.Fatalf("no grain directory marker before the directory at %d", gd)
	}
}

func TestDeterministic(t *testing.T) {
	raw := rawImage(5<<20 + 512)
	a, ai := writeImage(t, raw, Options{})
	b, bi := writeImage(t, raw, Options{})
	if !bytes.Equal(a, b) || ai != bi {
		t.Fatal("two writes of the same input differ")
	}
	raw[100] ^= 1
	_, ci := writeImage(t, raw, Options{})
	if ci.CID == ai.CID {
		t.Fatal("CID did not change with the content")
	}
	_, di := writeImage(t, raw, Options{CID: 0x1234abcd})
	if di.CID != 0x1234abcd {
		t.Fatalf("CID option ignored: %08x", di.CID)
	}
}

func TestOptionErrors(t *testing.T) {
	for _, o := range []Options{{AdapterType: "nvme"}, {HWVersion: 3}, {FileName: "a/b.vmdk"}} {
		if _, err := Write(io.Discard, bytes.NewReader(make([]byte, 512)), 512, o); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
	if _, err := Write(io.Discard, bytes.NewReader(nil), 0, Options{}); err == nil {
		t.Error("size 0 accepted")
	}
}

func BenchmarkWrite(b *testing.B) {
	const size = 64 << 20
	raw := testimg.Striped(size, grainSize, 16) // every other grain holds compressible data
	b.SetBytes(size)
	for b.Loop() {
		if _, err := Write(io.Discard, bytes.NewReader(raw), size, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}
