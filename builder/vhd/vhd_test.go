package vhd

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"

	"github.com/kilnproject/kiln/internal/testimg"
)

// rawImage returns a disk with pseudo-random data in a few regions and zeros
// elsewhere; its size is deliberately not a multiple of a MiB.
func rawImage(size int64) []byte {
	return testimg.Raw(size, testimg.Region{0, 4096},
		testimg.Region{blockSize - 100, 70000}, // straddles two blocks
		testimg.Region{size / 2, 1 << 20}, testimg.Region{size - 1000, 1000})
}

var testOpts = Options{UniqueID: [16]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}, Timestamp: TimestampFromUnix(1700000000)}

type writer func(io.Writer, io.ReaderAt, int64, Options) error

func write(t testing.TB, f writer, raw []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := f(&b, bytes.NewReader(raw), int64(len(raw)), testOpts); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// vpcOpts opens a VHD the way Hyper-V does: qemu otherwise sizes disks by
// CHS geometry for creator apps it does not know.
func vpcOpts(path string) string {
	return "driver=vpc,force_size_calc=current_size,file.driver=file,file.filename=" + path
}

func TestQemuImgAcceptsImage(t *testing.T) {
	testimg.NeedQemuImg(t)
	const size = 21<<20 + 3*512 + 7
	raw := rawImage(size)
	dir := t.TempDir()
	rawPath := testimg.WriteFile(t, dir, "disk.raw", raw)
	for _, tc := range []struct {
		name string
		f    writer
	}{{"fixed", WriteFixed}, {"dynamic", WriteDynamic}} {
		t.Run(tc.name, func(t *testing.T) {
			img := write(t, tc.f, raw)
			path := testimg.WriteFile(t, dir, tc.name+".vhd", img)
			var qi struct {
				Format      string `json:"format"`
				VirtualSize int64  `json:"virtual-size"`
			}
			if err := json.Unmarshal([]byte(testimg.QemuImg(t, "info", "--output=json", "--image-opts", vpcOpts(path))), &qi); err != nil {
				t.Fatal(err)
			}
			if qi.Format != "vpc" || qi.VirtualSize != DiskSize(size) {
				t.Errorf("qemu-img info: format %q size %d, want vpc %d", qi.Format, qi.VirtualSize, DiskSize(size))
			}
			// qemu-img has no consistency check for vpc; it must say so and
			// nothing worse. The structure is checked in TestStructure.
			out, err := exec.Command("qemu-img", "check", "-f", "vpc", path).CombinedOutput()
			if err != nil && !strings.Contains(string(out), "does not support checks") {
				t.Errorf("qemu-img check: %v\n%s", err, out)
			}
			testimg.QemuImg(t, "compare", "--image-opts",
				"driver=raw,file.driver=file,file.filename="+rawPath, vpcOpts(path))
			if tc.name == "dynamic" && len(img) > len(raw)/2 {
				t.Errorf("dynamic image is %d bytes for a %d-byte mostly zero disk: not sparse", len(img), len(raw))
			}
			if tc.name == "fixed" && int64(len(img)) != DiskSize(size)+512 {
				t.Errorf("fixed image is %d bytes, want %d", len(img), DiskSize(size)+512)
			}
		})
	}
}

// TestStructure checks what qemu does not: checksums, the footer copy,
// and that every BAT entry points at a bitmap + block inside the file.
func TestStructure(t *testing.T) {
	raw := rawImage(9<<20 + 5)
	be := binary.BigEndian
	verify := func(name string, b []byte) {
		t.Helper()
		want := be.Uint32(b[64:])
		c := append([]byte(nil), b...)
		be.PutUint32(c[64:], 0)
		if got := checksum(c); got != want {
			t.Errorf("%s checksum %08x, computed %08x", name, want, got)
		}
	}
	fixed := write(t, WriteFixed, raw)
	ft := fixed[len(fixed)-512:]
	verify("fixed footer", ft)
	if string(ft[:8]) != "conectix" || be.Uint32(ft[60:]) != typeFixed || string(ft[28:32]) != "kiln" {
		t.Errorf("fixed footer: cookie %q type %d creator %q", ft[:8], be.Uint32(ft[60:]), ft[28:32])
	}
	if c, h, s := be.Uint16(ft[56:]), ft[58], ft[59]; int64(c)*int64(h)*int64(s)*512 > DiskSize(int64(len(raw))) {
		t.Errorf("CHS %d/%d/%d exceeds the disk", c, h, s)
	}
	if !bytes.Equal(fixed[:len(raw)], raw) {
		t.Error("fixed data differs from the source")
	}

	dyn := write(t, WriteDynamic, raw)
	head, tail := dyn[:512], dyn[len(dyn)-512:]
	if !bytes.Equal(head, tail) {
		t.Error("footer copy at the start differs from the footer")
	}
	verify("dynamic footer", tail)
	if be.Uint32(tail[60:]) != typeDynamic || be.Uint64(tail[16:]) != headerOffset {
		t.Errorf("dynamic footer: type %d data offset %d", be.Uint32(tail[60:]), be.Uint64(tail[16:]))
	}
	dh := append([]byte(nil), dyn[512:1536]...)
	want := be.Uint32(dh[36:])
	be.PutUint32(dh[36:], 0)
	if string(dh[:8]) != "cxsparse" || checksum(dh) != want {
		t.Errorf("dynamic header: cookie %q checksum %08x computed %08x", dh[:8], want, checksum(dh))
	}
	blocks := int(be.Uint32(dh[28:]))
	if blocks != 5 || be.Uint32(dh[32:]) != blockSize {
		t.Errorf("dynamic header: %d blocks of %d bytes, want 5 of 2 MiB", blocks, be.Uint32(dh[32:]))
	}
	allocated := 0
	for i := 0; i < blocks; i++ {
		e := be.Uint32(dyn[batOffset+4*i:])
		if e == unusedBlock {
			continue
		}
		allocated++
		off := int64(e) * 512
		if off+bitmapSize+blockSize > int64(len(dyn)-512) {
			t.Errorf("BAT[%d] = sector %d runs past the footer", i, e)
			continue
		}
		got := dyn[off+bitmapSize : off+bitmapSize+blockSize]
		want := make([]byte, blockSize)
		copy(want, raw[min(int64(i)*blockSize, int64(len(raw))):])
		if !bytes.Equal(got, want) {
			t.Errorf("block %d content differs", i)
		}
	}
	if allocated != 4 { // block 3 is all zero
		t.Errorf("%d blocks allocated, want 4", allocated)
	}
}

// TestCHS pins the specification's algorithm, which rounds cylinders down;
// qemu-img create rounds the size up first, so it reports one more cylinder
// for these sizes (603/4/17, 2081/16/63, 65279/16/255).
func TestCHS(t *testing.T) {
	for _, tc := range []struct {
		size int64
		c    uint16
		h, s uint8
	}{
		{20 << 20, 602, 4, 17},
		{1 << 30, 2080, 16, 63},
		{127 << 30, 65278, 16, 255},
		{2040 << 30, 65535, 16, 255},
	} {
		c, h, s := chs(tc.size)
		if c != tc.c || h != tc.h || s != tc.s {
			t.Errorf("chs(%d) = %d/%d/%d, want %d/%d/%d", tc.size, c, h, s, tc.c, tc.h, tc.s)
		}
	}
}

func TestDeterministic(t *testing.T) {
	raw := rawImage(5<<20 + 512)
	for _, f := range []writer{WriteFixed, WriteDynamic} {
		if !bytes.Equal(write(t, f, raw), write(t, f, raw)) {
			t.Fatal("two writes of the same input differ")
		}
	}
}

func TestErrors(t *testing.T) {
	if err := WriteFixed(io.Discard, bytes.NewReader(nil), 0, Options{}); err == nil {
		t.Error("size 0 accepted")
	}
	if err := WriteDynamic(io.Discard, bytes.NewReader(make([]byte, 512)), 512, Options{CreatorApp: "toolong"}); err == nil {
		t.Error("5-byte creator app accepted")
	}
	if err := WriteDynamic(io.Discard, bytes.NewReader(make([]byte, 512)), 1024, Options{}); err == nil {
		t.Error("short source accepted")
	}
}

func BenchmarkWrite(b *testing.B) {
	const size = 64 << 20
	raw := testimg.Striped(size, blockSize, 256) // every other block holds data
	b.SetBytes(size)
	for b.Loop() {
		if err := WriteDynamic(io.Discard, bytes.NewReader(raw), size, testOpts); err != nil {
			b.Fatal(err)
		}
	}
}
