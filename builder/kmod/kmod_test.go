package kmod

import (
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kilnproject/kiln/builder/cpio"
	"github.com/kilnproject/kiln/builder/fstree"
	"github.com/kilnproject/kiln/internal/testdeb"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"

	initdkmod "github.com/kilnproject/kiln/initd/kmod"
)

// fakeKO returns a minimal ELF64 relocatable object with a .modinfo section
// holding the given "key=value" entries: all a module needs for Scan.
func fakeKO(entries ...string) []byte {
	modinfo := []byte(strings.Join(entries, "\x00") + "\x00")
	shstr := []byte("\x00.modinfo\x00.shstrtab\x00")
	const ehdr, shent = 64, 64
	modOff := ehdr
	strOff := modOff + len(modinfo)
	shOff := (strOff + len(shstr) + 7) &^ 7
	b := make([]byte, shOff+3*shent)
	copy(b, "\x7fELF\x02\x01\x01")
	le := binary.LittleEndian
	le.PutUint16(b[16:], 1)  // ET_REL
	le.PutUint16(b[18:], 62) // EM_X86_64
	le.PutUint32(b[20:], 1)
	le.PutUint64(b[40:], uint64(shOff))
	le.PutUint16(b[52:], ehdr)
	le.PutUint16(b[58:], shent)
	le.PutUint16(b[60:], 3)
	le.PutUint16(b[62:], 2)
	copy(b[modOff:], modinfo)
	copy(b[strOff:], shstr)
	sh := func(i int, name, typ uint32, flags uint64, off, size int) {
		s := b[shOff+i*shent:]
		le.PutUint32(s[0:], name)
		le.PutUint32(s[4:], typ)
		le.PutUint64(s[8:], flags)
		le.PutUint64(s[24:], uint64(off))
		le.PutUint64(s[32:], uint64(size))
		le.PutUint64(s[48:], 1)
	}
	sh(1, 1, 1, 2, modOff, len(modinfo)) // .modinfo: PROGBITS, SHF_ALLOC
	sh(2, 10, 3, 0, strOff, len(shstr))  // .shstrtab: STRTAB
	return b
}

const fakeKver = "9.9.9-test"

// fakeModules writes a small lib/modules/<kver> with plain, xz and zstd
// modules, a softdep resolved through an alias, and a built-in module.
func fakeModules(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "lib/modules", fakeKver)
	files := map[string][]byte{
		"kernel/fs/alpha/alpha.ko":    fakeKO("alias=fs-alpha", "softdep=pre: crc-thing post: late", "depends=beta,gamma", "name=alpha"),
		"kernel/lib/beta.ko.xz":       compressXZ(t, fakeKO("depends=delta", "name=beta")),
		"kernel/lib/gamma.ko.zst":     compressZstd(t, fakeKO("depends=delta", "name=gamma")),
		"kernel/lib/delta.ko":         fakeKO("depends=", "name=delta"),
		"kernel/crypto/crcgen.ko":     fakeKO("alias=crc-thing", "alias=crypto-crc-thing", "depends=", "name=crcgen"),
		"kernel/drivers/usb-thing.ko": fakeKO("alias=usb:v1234p*d*", "alias=usb:v1234p0001d*", "depends=delta", "name=usb_thing"),
		"kernel/drivers/unused.ko":    fakeKO("depends=", "name=unused"),
		"kernel/drivers/broken.ko":    fakeKO("depends=missing", "name=broken"),
		"modules.builtin":             []byte("kernel/fs/builtin-fs/builtin-fs.ko\n"),
		"modules.order":               []byte("kernel/lib/delta.ko\nkernel/lib/gamma.ko\nkernel/lib/beta.ko\nkernel/fs/alpha/alpha.ko\n"),
		"modules.builtin.modinfo":     []byte("builtin_fs.description=x\x00"),
	}
	for name, b := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func compressXZ(t *testing.T, b []byte) []byte {
	var buf bytes.Buffer
	w, err := xz.NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

func compressZstd(t *testing.T, b []byte) []byte {
	w, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	return w.EncodeAll(b, nil)
}

func TestFakeKOReadByModinfo(t *testing.T) {
	testdeb.RequireTool(t, "modinfo", "kmod")
	p := filepath.Join(t.TempDir(), "x.ko")
	os.WriteFile(p, fakeKO("alias=a1", "depends=y,z", "name=x"), 0o644)
	out := testdeb.Run(t, "", "modinfo", "-F", "depends", p)
	if strings.TrimSpace(out) != "y,z" {
		t.Fatalf("modinfo reads depends %q from the fixture, want y,z", out)
	}
}

func TestScanAndSelect(t *testing.T) {
	ix, err := Scan(fakeModules(t))
	if err != nil {
		t.Fatal(err)
	}
	if ix.KernelVersion != fakeKver || ix.Len() != 8 {
		t.Fatalf("Scan: kver %q, %d modules", ix.KernelVersion, ix.Len())
	}
	if m := ix.Module("beta"); m == nil || m.Path != "kernel/lib/beta.ko" || strings.Join(m.Depends, ",") != "delta" {
		t.Errorf("beta: %+v", m)
	}
	if m := ix.Module("alpha"); m == nil || strings.Join(m.SoftPre, ",") != "crc-thing" {
		t.Errorf("alpha softdep pre: %+v", m)
	}
	set, err := ix.Select([]string{"usb-thing", "alpha", "builtin_fs", "builtin-fs"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(set.Names(), " "), "delta gamma beta crcgen alpha usb_thing"; got != want {
		t.Errorf("load order %q, want %q", got, want)
	}
	for _, tc := range []struct {
		names []string
		want  string
	}{
		{[]string{"alpha", "nosuch-mod"}, `module "nosuch-mod" is not in kernel 9.9.9-test`},
		{[]string{"broken"}, `broken (kernel/drivers/broken.ko) depends on "missing"`},
	} {
		if _, err := ix.Select(tc.names); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Select(%v): %v, want %q", tc.names, err, tc.want)
		}
	}
}

func TestDepFiles(t *testing.T) {
	ix, err := Scan(fakeModules(t))
	if err != nil {
		t.Fatal(err)
	}
	set, err := ix.Select([]string{"alpha", "usb_thing"})
	if err != nil {
		t.Fatal(err)
	}
	wantDep := `kernel/lib/delta.ko:
kernel/lib/gamma.ko: kernel/lib/delta.ko
kernel/lib/beta.ko: kernel/lib/delta.ko
kernel/fs/alpha/alpha.ko: kernel/lib/gamma.ko kernel/lib/beta.ko kernel/lib/delta.ko
kernel/crypto/crcgen.ko:
kernel/drivers/usb-thing.ko: kernel/lib/delta.ko
`
	if got := string(set.ModulesDep()); got != wantDep {
		t.Errorf("modules.dep:\n%s\nwant:\n%s", got, wantDep)
	}
	wantAlias := `# Aliases extracted from modules themselves.
alias fs-alpha alpha
alias crc-thing crcgen
alias crypto-crc-thing crcgen
alias usb:v1234p*d* usb_thing
alias usb:v1234p0001d* usb_thing
`
	if got := string(set.ModulesAlias()); got != wantAlias {
		t.Errorf("modules.alias:\n%s\nwant:\n%s", got, wantAlias)
	}
	if got := string(set.ModulesSoftdep()); !strings.Contains(got, "softdep alpha pre: crc-thing post: late\n") {
		t.Errorf("modules.softdep:\n%s", got)
	}

	tr := fstree.New()
	if err := set.AddTo(tr, "initrd"); err != nil {
		t.Fatal(err)
	}
	base := "initrd/lib/modules/" + fakeKver + "/"
	for _, m := range set.Modules {
		e := tr.Get(base + m.Path)
		if e == nil {
			t.Errorf("%s missing from the tree", m.Path)
			continue
		}
		if b, _ := e.ReadAll(); !bytes.HasPrefix(b, []byte("\x7fELF")) {
			t.Errorf("%s is not stored as an uncompressed ELF", m.Path)
		}
	}
	for _, f := range []string{"modules.dep", "modules.alias", "modules.softdep", "modules.order", "modules.builtin", "modules.builtin.modinfo"} {
		if tr.Get(base+f) == nil {
			t.Errorf("%s missing", f)
		}
	}
	if tr.Get(base+"kernel/drivers/unused.ko") != nil {
		t.Error("unselected module was added")
	}
	if b, _ := tr.Get(base + "modules.order").ReadAll(); !strings.HasPrefix(string(b), "kernel/lib/delta.ko\nkernel/lib/gamma.ko\n") {
		t.Errorf("modules.order:\n%s", b)
	}

	// depmod itself reads the written subset and derives the same aliases.
	testdeb.RequireTool(t, "depmod", "kmod")
	root := extract(t, tr)
	// initd's digest of the written files is the one the builder records.
	if d, err := initdkmod.Digest(filepath.Join(root, base)); err != nil || "sha256:"+d != set.IndexDigest() {
		t.Errorf("initd's digest of the written index: %s %v; IndexDigest %s", d, err, set.IndexDigest())
	}
	testdeb.Run(t, "", "depmod", "-b", filepath.Join(root, "initrd"), fakeKver)
	got, _ := os.ReadFile(filepath.Join(root, base, "modules.alias"))
	if string(got) != wantAlias {
		t.Errorf("depmod's modules.alias differs:\n%s\nours:\n%s", got, wantAlias)
	}
}

// extract writes the tree to a temp dir through the cpio writer and GNU cpio.
func extract(t *testing.T, tr *fstree.Tree) string {
	t.Helper()
	testdeb.RequireTool(t, "cpio", "cpio")
	var buf bytes.Buffer
	if err := cpio.Write(&buf, tr, 0); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cmd := exec.Command("cpio", "-idm", "--quiet")
	cmd.Dir, cmd.Stdin = dir, &buf
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cpio -idm: %v\n%s", err, out)
	}
	return dir
}
