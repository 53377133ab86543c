package uki

import (
	"bytes"
	"compress/gzip"
	"debug/pe"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/kilnproject/kiln/internal/testdeb"
)

const testOSRelease = "NAME=kiln\nID=kiln\nVERSION_ID=0.1\n"

// fakeOptions uses the stub itself as the "kernel": it is a PE image of the
// right machine, which is all Build checks, and keeps the unit tests small.
func fakeOptions(t *testing.T, stub []byte) Options {
	return Options{
		Kernel:    stub,
		Initrd:    bytes.Repeat([]byte("initrd!"), 1001),
		Cmdline:   "console=ttyS0 kiln.label=KILN",
		OSRelease: testOSRelease,
		Uname:     "6.1.0-test-amd64",
		Arch:      "amd64",
	}
}

func TestChecksumMatchesStub(t *testing.T) {
	stub := testdeb.ReadFile(t, x64Stub, "systemd-boot-efi")
	p, err := parsePE(bytes.Clone(stub))
	if err != nil {
		t.Fatal(err)
	}
	want := le.Uint32(stub[p.opt+optCheckSum:])
	p.setChecksum()
	if got := le.Uint32(p.buf[p.opt+optCheckSum:]); got != want {
		t.Fatalf("checksum of the Debian stub: got 0x%x, the stub says 0x%x", got, want)
	}
}

func TestBuildRoundTripAndLayout(t *testing.T) {
	stub := testdeb.ReadFile(t, x64Stub, "systemd-boot-efi")
	o := fakeOptions(t, stub)
	out, err := Build(stub, o)
	if err != nil {
		t.Fatal(err)
	}
	again, err := Build(stub, o)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, again) {
		t.Fatal("two builds with the same inputs differ")
	}
	if !bytes.Equal(out[:len(stub)][0x400:], stub[0x400:]) {
		t.Error("the stub's sections were modified")
	}

	secs, err := Sections(out)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string][]byte{
		".osrel": []byte(o.OSRelease), ".cmdline": []byte(o.Cmdline), ".uname": []byte(o.Uname),
		".initrd": o.Initrd, ".linux": o.Kernel, ".sdmagic": nil, ".text": nil,
	} {
		got, ok := secs[name]
		if !ok {
			t.Errorf("section %s missing", name)
		} else if want != nil && !bytes.Equal(got, want) {
			t.Errorf("section %s: %d bytes do not round-trip (want %d)", name, len(got), len(want))
		}
	}

	f, err := pe.NewFile(bytes.NewReader(out))
	if err != nil {
		t.Fatalf("debug/pe: %v", err)
	}
	oh := f.OptionalHeader.(*pe.OptionalHeader64)
	names := []string{}
	for _, s := range f.Sections[8:] {
		names = append(names, s.Name)
		if s.Characteristics != pe.IMAGE_SCN_CNT_INITIALIZED_DATA|pe.IMAGE_SCN_MEM_READ {
			t.Errorf("%s: characteristics 0x%x", s.Name, s.Characteristics)
		}
		if s.VirtualAddress%oh.SectionAlignment != 0 || s.Offset%oh.FileAlignment != 0 || s.Size%oh.FileAlignment != 0 {
			t.Errorf("%s: VMA 0x%x / offset 0x%x / raw size 0x%x not aligned", s.Name, s.VirtualAddress, s.Offset, s.Size)
		}
	}
	if got := strings.Join(names, " "); got != ".osrel .cmdline .uname .initrd .linux" {
		t.Errorf("new sections %q, want ukify's order", got)
	}
	last := f.Sections[len(f.Sections)-1]
	if want := alignUp(last.VirtualAddress+last.VirtualSize, oh.SectionAlignment); oh.SizeOfImage != want {
		t.Errorf("SizeOfImage 0x%x, want 0x%x", oh.SizeOfImage, want)
	}
	if oh.SizeOfInitializedData <= 0x5000 {
		t.Errorf("SizeOfInitializedData 0x%x not grown", oh.SizeOfInitializedData)
	}
	p, _ := parsePE(bytes.Clone(out))
	p.setChecksum()
	if oh.CheckSum != le.Uint32(p.buf[p.opt+optCheckSum:]) || oh.CheckSum == 0 {
		t.Errorf("stored checksum 0x%x is not the image checksum", oh.CheckSum)
	}

	checkObjdump(t, "objdump", out, []string{".osrel", ".cmdline", ".uname", ".initrd", ".linux"})
}

// checkObjdump runs binutils' objdump -h on the image and checks that it
// sees the new sections with increasing, non-overlapping, aligned VMAs.
func checkObjdump(t *testing.T, objdump string, img []byte, want []string) {
	t.Helper()
	testdeb.RequireTool(t, objdump, "binutils")
	path := filepath.Join(t.TempDir(), "uki.efi")
	if err := os.WriteFile(path, img, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(objdump, "-h", path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || stderr.Len() > 0 {
		t.Fatalf("%s -h: %v\n%s%s", objdump, err, stderr.Bytes(), out)
	}
	var names []string
	var end uint64
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(l)
		if len(f) < 7 {
			continue
		}
		if _, err := strconv.Atoi(f[0]); err != nil {
			continue
		}
		size, _ := strconv.ParseUint(f[2], 16, 64)
		vma, _ := strconv.ParseUint(f[3], 16, 64)
		if vma < end {
			t.Errorf("objdump: %s at VMA 0x%x overlaps the previous section ending at 0x%x", f[1], vma, end)
		}
		end = vma + size
		names = append(names, f[1])
	}
	got := strings.Join(names, " ")
	if !strings.HasSuffix(got, strings.Join(want, " ")) {
		t.Errorf("objdump sections %q, want them to end with %q\n%s", got, want, out)
	}
}

func TestBuildGzipKernelAndOptionalSections(t *testing.T) {
	stub := testdeb.ReadFile(t, x64Stub, "systemd-boot-efi")
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(stub)
	zw.Close()
	out, err := Build(stub, Options{Kernel: gz.Bytes(), Arch: "amd64"})
	if err != nil {
		t.Fatal(err)
	}
	secs, err := Sections(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(secs[".linux"], stub) {
		t.Error("gzip-compressed kernel was not inflated into .linux")
	}
	for _, n := range []string{".osrel", ".cmdline", ".uname", ".initrd"} {
		if _, ok := secs[n]; ok {
			t.Errorf("empty payload produced a %s section", n)
		}
	}
}

func TestBuildErrors(t *testing.T) {
	stub := testdeb.ReadFile(t, x64Stub, "systemd-boot-efi")
	good := fakeOptions(t, stub)
	uki, err := Build(stub, good)
	if err != nil {
		t.Fatal(err)
	}
	noRoom := bytes.Clone(stub)
	p, _ := parsePE(noRoom)
	le.PutUint32(noRoom[p.sectTable+20:], uint32(p.sectTable+p.nSections*sectionHeaderLen+sectionHeaderLen)) // .text raw data right after the table
	dirty := bytes.Clone(stub)
	dbg := p.dataDir(6) // debug directory placed right after the section table
	le.PutUint32(dirty[dbg:], uint32(p.sectTable+p.nSections*sectionHeaderLen+8))
	le.PutUint32(dirty[dbg+4:], 28)

	mod := func(f func(*Options)) Options { o := good; f(&o); return o }
	for _, tc := range []struct {
		name string
		stub []byte
		o    Options
		want string
	}{
		{"arch", stub, mod(func(o *Options) { o.Arch = "riscv64" }), `Options.Arch "riscv64"`},
		{"arch mismatch", stub, mod(func(o *Options) { o.Arch = "arm64" }), "stub is for PE machine 0x8664"},
		{"not PE", []byte("hello world, this is not a PE file at all, not even close......"), good, "stub: not a PE file"},
		{"no kernel", stub, mod(func(o *Options) { o.Kernel = nil }), "Options.Kernel is empty"},
		{"kernel not PE", stub, mod(func(o *Options) { o.Kernel = []byte("ELF") }), "kernel is not an EFI-stub kernel"},
		{"already UKI", uki, good, "already has a .osrel section"},
		{"no header room", noRoom, good, "room for 1 more section headers, need 5"},
		{"header in use", dirty, good, "is used by data directory 6"},
	} {
		_, err := Build(tc.stub, tc.o)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got error %v, want it to contain %q", tc.name, err, tc.want)
		}
	}
}

func TestDropSignature(t *testing.T) {
	stub := testdeb.ReadFile(t, x64Stub, "systemd-boot-efi")
	signed := bytes.Clone(stub)
	p, _ := parsePE(signed)
	d := p.dataDir(dirSecurity)
	le.PutUint32(signed[d:], uint32(len(signed)))
	le.PutUint32(signed[d+4:], 16)
	signed = append(signed, bytes.Repeat([]byte{0xee}, 16)...)
	out, err := Build(signed, fakeOptions(t, stub))
	if err != nil {
		t.Fatal(err)
	}
	want, _ := Build(stub, fakeOptions(t, stub))
	if !bytes.Equal(out, want) {
		t.Error("a signed stub does not give the same UKI as the unsigned one")
	}
}

func TestArm64(t *testing.T) {
	if testing.Short() {
		t.Skip("downloads the arm64 stub and kernel")
	}
	stubPath := filepath.Join(testdeb.Package(t, "systemd-boot-efi", "arm64"), "usr/lib/systemd/boot/efi/linuxaa64.efi.stub")
	stub := testdeb.ReadFile(t, stubPath, "systemd-boot-efi:arm64")
	kdir, kver := testdeb.Kernel(t, "arm64")
	vmlinuz := testdeb.ReadFile(t, filepath.Join(kdir, "boot", "vmlinuz-"+kver), "linux-image-"+kver)
	if vmlinuz[0] != 0x1f || vmlinuz[1] != 0x8b {
		// Bookworm ships arm64 vmlinuz as a plain Image; other kernels gzip
		// it. Compress it here so the inflate path meets a real kernel.
		var gz bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&gz, gzip.BestSpeed)
		zw.Write(vmlinuz)
		zw.Close()
		vmlinuz = gz.Bytes()
	}
	out, err := Build(stub, Options{Kernel: vmlinuz, Initrd: []byte("initrd"), Cmdline: "console=ttyAMA0", Uname: kver, Arch: "arm64"})
	if err != nil {
		t.Fatal(err)
	}
	secs, err := Sections(out)
	if err != nil {
		t.Fatal(err)
	}
	if k := secs[".linux"]; len(k) < 0x40 || string(k[:2]) != "MZ" || string(k[0x38:0x3c]) != "ARM\x64" {
		t.Error(".linux does not hold an uncompressed arm64 Image")
	}
	checkObjdump(t, "aarch64-linux-gnu-objdump", out, []string{".cmdline", ".uname", ".initrd", ".linux"})
}
