package syslinux

import (
	"bytes"
	"strings"
	"testing"
)

func TestExtractFromDebianInstaller(t *testing.T) {
	l := hostLoader(t)
	bs := l.bootSector
	if len(bs) != 512 || bs[510] != 0x55 || bs[511] != 0xAA {
		t.Fatalf("boot sector: %d bytes, signature %x", len(bs), bs[510:])
	}
	if bs[0] != 0xEB || bs[2] != 0x90 || string(bs[3:11]) != "SYSLINUX" {
		t.Errorf("boot sector head % x %q, want EB xx 90 \"SYSLINUX\"", bs[:3], bs[3:11])
	}
	if l.Version() != "6.04" {
		t.Errorf("Version() = %q, want 6.04 (Debian bookworm)", l.Version())
	}
	if len(l.image)%512 != 0 || !bytes.HasPrefix(l.image, []byte(banner+"6.04 ")) {
		t.Errorf("ldlinux.sys: %d bytes, starts %q", len(l.image), l.image[:16])
	}
	if le.Uint32(l.image[l.pa:]) != ldlinuxMagic {
		t.Errorf("no LDLINUX_MAGIC at patch area offset %#x", l.pa)
	}
	// The installer's own banner string of the whole core names the same version.
	if !bytes.Contains(l.image, []byte("SYSLINUX "+l.Version()+" ")) {
		t.Error("ldlinux.sys does not contain its full version banner")
	}

	// ldlinux.c32 carries no version string; what ties it to ldlinux.sys is
	// the set of core symbols it imports, checked against the copy embedded
	// in the same installer. A nil c32 selects that embedded copy.
	emb, err := Extract(readHost(t, hostInstaller), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := compatible(l.c32, emb.c32); err != nil {
		t.Errorf("host ldlinux.c32 vs embedded: %v", err)
	}
	if !bytes.HasPrefix(emb.c32, []byte("\x7fELF")) {
		t.Errorf("embedded ldlinux.c32: %d bytes", len(emb.c32))
	}
	if !bytes.Equal(l.bootSector, emb.bootSector) || !bytes.Equal(l.image, emb.image) {
		t.Error("Extract is not deterministic")
	}
}

func TestExtractErrors(t *testing.T) {
	inst := readHost(t, hostInstaller)
	for _, c := range []struct {
		name      string
		installer []byte
		c32       []byte
		want      string
	}{
		{"not syslinux", readHost(t, "/usr/bin/true"), nil, "no FAT boot sector"},
		{"boot sector only", inst[:bytes.Index(inst, []byte(banner))], nil, "no ldlinux.sys"},
		{"c32 not ELF", inst, []byte("not an elf file at all, really not"), "ldlinux.c32 does not match"},
		{"c32 is x86-64", inst, inst, "not an i386 ELF"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Extract(c.installer, c.c32)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want it to mention %q", err, c.want)
			}
		})
	}
}

func TestGPTMBR(t *testing.T) {
	b := readHost(t, hostGPTMBR)
	got, err := GPTMBR(b)
	if err != nil || !bytes.Equal(got, b) {
		t.Fatalf("GPTMBR(gptmbr.bin) = %d bytes, %v", len(got), err)
	}
	if _, err := GPTMBR(readHost(t, "/usr/lib/syslinux/mbr/mbr.bin")); err == nil || !strings.Contains(err.Error(), "!GPT") {
		t.Errorf("mbr.bin accepted: %v", err)
	}
	if _, err := GPTMBR(b[:400]); err == nil {
		t.Error("short gptmbr.bin accepted")
	}
}

// extents follows generate_extents(): runs of consecutive sectors, each
// below 64 KiB (at most 127 sectors), loaded from 0x8000.
func TestExtents(t *testing.T) {
	seq := func(from uint64, n int) []uint64 {
		var s []uint64
		for i := range n {
			s = append(s, from+uint64(i))
		}
		return s
	}
	for _, c := range []struct {
		name string
		in   []uint64
		want []extent
	}{
		{"empty", nil, nil},
		{"contiguous", seq(100, 113), []extent{{100, 113}}},
		{"fragmented", append(seq(100, 3), seq(50, 2)...), []extent{{100, 3}, {50, 2}}},
		{"backwards", []uint64{7, 6}, []extent{{7, 1}, {6, 1}}},
		{"127 sector limit", seq(1000, 300), []extent{{1000, 127}, {1127, 127}, {1254, 46}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := extents(c.in)
			if len(got) != len(c.want) {
				t.Fatalf("extents = %v, want %v", got, c.want)
			}
			for i := range got {
				if got[i] != c.want[i] {
					t.Fatalf("extents = %v, want %v", got, c.want)
				}
			}
		})
	}
}
