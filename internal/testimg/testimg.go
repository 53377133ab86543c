// Package testimg is test support for the disk image writers (qcow2, VMDK,
// VHD): raw disk fixtures, and qemu-img as the oracle. Tests only.
package testimg

import (
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Region is a byte range of a raw fixture that holds data: offset, length.
type Region [2]int64

// Raw returns a size-byte raw disk that is zero except for pseudo-random
// bytes in regions, filled in order and clipped at size. The seed is fixed,
// so every run of a test sees the same disk.
func Raw(size int64, regions ...Region) []byte {
	img := make([]byte, size)
	r := rand.New(rand.NewPCG(1, 2))
	for _, g := range regions {
		for i := g[0]; i < g[0]+g[1] && i < size; i++ {
			img[i] = byte(r.Uint32())
		}
	}
	return img
}

// Striped returns a size-byte raw disk, for benchmarks, in which every other
// chunk (the first included) holds pseudo-random bytes below limit and the
// rest is zero. limit 256 gives incompressible data, 16 data that deflates
// about as well as a filesystem's.
func Striped(size, chunk int64, limit uint32) []byte {
	img := make([]byte, size)
	r := rand.New(rand.NewPCG(3, 4))
	for i := int64(0); i < size; i += 2 * chunk {
		for j := i; j < min(i+chunk, size); j++ {
			img[j] = byte(r.Uint32() % limit)
		}
	}
	return img
}

// WriteFile writes b to dir/name for a tool to read and returns the path.
func WriteFile(t testing.TB, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// NeedQemuImg fails the test (it never skips) when qemu-img is missing.
func NeedQemuImg(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("qemu-img"); err != nil {
		t.Fatalf("qemu-img is required as the test oracle (apt-get install qemu-utils): %v", err)
	}
}

// QemuImg runs qemu-img with args and returns its combined output, failing
// the test when it exits non-zero.
func QemuImg(t testing.TB, args ...string) string {
	t.Helper()
	NeedQemuImg(t)
	out, err := exec.Command("qemu-img", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("qemu-img %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}
