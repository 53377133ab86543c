package squashfs

import (
	"fmt"
	"testing"

	"github.com/kilnproject/kiln/builder/fstree"
)

// benchTree holds 64 MiB like a rootfs: mostly text/code-like data, some
// incompressible (already compressed) files, some zero runs, many small files.
func benchTree(b *testing.B) (*fstree.Tree, int64) {
	tr := fstree.New()
	var total int64
	add := func(p string, data []byte) {
		must(b, tr.AddFile(p, 0o644, data))
		total += int64(len(data))
	}
	for i := 0; i < 2000; i++ { // 2000 small files, ~4 KiB each
		add(fmt.Sprintf("usr/share/small/%02d/f%04d", i%40, i), pseudo(1000+i*7%6000, uint32(i), true))
	}
	for i := 0; i < 40; i++ { // 40 x 600 KiB compressible
		add(fmt.Sprintf("usr/lib/text%02d", i), pseudo(600<<10, uint32(10000+i), true))
	}
	for i := 0; i < 16; i++ { // 16 x 1 MiB incompressible
		add(fmt.Sprintf("usr/lib/packed%02d", i), pseudo(1<<20, uint32(20000+i), false))
	}
	for i := 0; i < 8; i++ { // 8 x 1 MiB zeros with a small head
		z := make([]byte, 1<<20)
		copy(z, "head")
		add(fmt.Sprintf("var/lib/zero%02d", i), z)
	}
	if rest := int64(64<<20) - total; rest > 0 {
		add("usr/lib/filler", pseudo(int(rest), 99, true))
	}
	return tr, total
}

func BenchmarkWrite(b *testing.B) {
	tr, total := benchTree(b)
	for _, comp := range []string{"zstd", "gzip"} {
		b.Run(comp, func(b *testing.B) {
			var m memFile
			b.SetBytes(total)
			b.ReportAllocs()
			var n int64
			for b.Loop() {
				m.b = m.b[:0]
				var err error
				if n, err = Write(&m, tr, Options{ModTime: testTime, Compression: comp}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n)/float64(total), "ratio")
		})
	}
}
