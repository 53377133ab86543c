package ova

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kilnproject/kiln/builder/vmdk"
)

func needTool(t testing.TB, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Fatalf("%s is required as a test oracle: %v", name, err)
	}
}

func run(t testing.TB, dir, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}

// fixture writes a mostly zero raw disk and its streamOptimized VMDK.
// With half set, every other MiB holds data (the benchmark's disk).
func fixture(t testing.TB, dir string, size int64, half bool) (rawPath, vmdkPath string, info vmdk.Info) {
	t.Helper()
	raw := make([]byte, size)
	r := rand.New(rand.NewPCG(5, 6))
	regions := [][2]int64{{0, 3000}, {size / 2, 3000}, {size - 3000, 3000}}
	if half {
		regions = nil
		for off := int64(0); off < size; off += 2 << 20 {
			regions = append(regions, [2]int64{off, 1 << 20})
		}
	}
	for _, reg := range regions {
		for i := reg[0]; i < reg[0]+reg[1]; i++ {
			raw[i] = byte(r.Uint32() % 16)
		}
	}
	rawPath = filepath.Join(dir, "disk.raw")
	vmdkPath = filepath.Join(dir, "disk.vmdk")
	if err := os.WriteFile(rawPath, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(vmdkPath)
	if err != nil {
		t.Fatal(err)
	}
	info, err = vmdk.Write(f, bytes.NewReader(raw), size, vmdk.Options{FileName: "node-disk1.vmdk"})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return rawPath, vmdkPath, info
}

func writeOVA(t testing.TB, o Options) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := Write(&b, o); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestOVA(t *testing.T) {
	needTool(t, "tar")
	needTool(t, "sha256sum")
	needTool(t, "qemu-img")
	dir := t.TempDir()
	const size = 8<<20 + 512
	rawPath, vmdkPath, info := fixture(t, dir, size, false)
	o := Options{
		Name: "node", VMDKPath: vmdkPath,
		DiskCapacity: info.Capacity, VMDKPopulatedSize: info.PopulatedSize,
		CPUs: 4, MemoryMiB: 4096, UEFI: true, NICs: 2, ModTime: 1700000000,
	}
	ova := writeOVA(t, o)
	ovaPath := filepath.Join(dir, "node.ova")
	if err := os.WriteFile(ovaPath, ova, 0o644); err != nil {
		t.Fatal(err)
	}

	// Order as the tar tool lists it.
	list := strings.Fields(run(t, dir, "tar", "tf", ovaPath))
	if strings.Join(list, " ") != "node.ovf node-disk1.vmdk node.mf" {
		t.Fatalf("tar tf: %v, want node.ovf node-disk1.vmdk node.mf", list)
	}
	// Deterministic headers: root-owned, fixed mtime, USTAR.
	tr := tar.NewReader(bytes.NewReader(ova))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Uid != 0 || h.Gid != 0 || h.Mode != 0o644 || !h.ModTime.Equal(time.Unix(1700000000, 0)) || h.Format&tar.FormatUSTAR == 0 {
			t.Errorf("%s: header uid %d gid %d mode %o mtime %v format %v", h.Name, h.Uid, h.Gid, h.Mode, h.ModTime, h.Format)
		}
	}

	ex := filepath.Join(dir, "x")
	os.Mkdir(ex, 0o755)
	run(t, ex, "tar", "xf", ovaPath)

	// Manifest: recompute in Go, then let sha256sum judge the same lines.
	mf, err := os.ReadFile(filepath.Join(ex, "node.mf"))
	if err != nil {
		t.Fatal(err)
	}
	line := regexp.MustCompile(`^SHA256\(([^)]+)\)= ([0-9a-f]{64})$`)
	var sums strings.Builder
	lines := strings.Split(strings.TrimSuffix(string(mf), "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("manifest has %d lines, want 2:\n%s", len(lines), mf)
	}
	for _, l := range lines {
		m := line.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("manifest line %q is not SHA256(file)= hex", l)
		}
		data, err := os.ReadFile(filepath.Join(ex, m[1]))
		if err != nil {
			t.Fatal(err)
		}
		if got := sha256.Sum256(data); hex.EncodeToString(got[:]) != m[2] {
			t.Errorf("manifest digest of %s is wrong", m[1])
		}
		sums.WriteString(m[2] + "  " + m[1] + "\n")
	}
	if err := os.WriteFile(filepath.Join(ex, "SUMS"), []byte(sums.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, ex, "sha256sum", "-c", "SUMS")

	// The descriptor is XML and names the right file, sizes and hardware.
	ovf, err := os.ReadFile(filepath.Join(ex, "node.ovf"))
	if err != nil {
		t.Fatal(err)
	}
	var env envelope
	if err := xml.Unmarshal(ovf, &env); err != nil {
		t.Fatalf("OVF does not parse: %v", err)
	}
	st, _ := os.Stat(vmdkPath)
	if f := env.Files; len(f) != 1 || f[0].Href != "node-disk1.vmdk" || f[0].Size != st.Size() {
		t.Errorf("References: %+v, want node-disk1.vmdk of %d bytes", f, st.Size())
	}
	if d := env.Disks; len(d) != 1 || d[0].Capacity != size || d[0].Populated != info.PopulatedSize || d[0].Format != streamOptimizedFormat {
		t.Errorf("DiskSection: %+v, want capacity %d populated %d", d, size, info.PopulatedSize)
	}
	hw := env.System.Hardware
	if hw.Transport != "com.vmware.guestInfo iso" || len(hw.Configs) != 1 || hw.Configs[0].Value != "efi" {
		t.Errorf("VirtualHardwareSection: transport %q configs %+v", hw.Transport, hw.Configs)
	}
	types := map[string]int{}
	for _, it := range hw.Items {
		types[it.ResourceType]++
		if it.ResourceType == "3" && it.VirtualQuantity != "4" || it.ResourceType == "4" && it.VirtualQuantity != "4096" {
			t.Errorf("item %s has quantity %s", it.ElementName, it.VirtualQuantity)
		}
	}
	if types["3"] != 1 || types["4"] != 1 || types["6"] != 1 || types["17"] != 1 || types["10"] != 2 {
		t.Errorf("hardware items by resource type: %v", types)
	}
	keys := []string{}
	for _, p := range env.System.Product.Properties {
		keys = append(keys, p.Key)
	}
	if !strings.Contains(strings.Join(keys, " "), "guestinfo.userdata guestinfo.userdata.encoding guestinfo.metadata") {
		t.Errorf("ProductSection properties: %v", keys)
	}

	// The disk inside is still the raw disk.
	run(t, dir, "qemu-img", "compare", "-f", "raw", "-F", "vmdk", rawPath, filepath.Join(ex, "node-disk1.vmdk"))

	if !bytes.Equal(ova, writeOVA(t, o)) {
		t.Error("two writes of the same input differ")
	}
}

// TestRASDOrder checks every Item lists its rasd elements alphabetically,
// as the CIM schema sequence requires.
func TestRASDOrder(t *testing.T) {
	for _, c := range []string{"lsilogic", "pvscsi", "sata"} {
		ovf, err := OVF(Options{Name: "n", VMDKPath: "x", DiskCapacity: 1 << 20, Controller: c, NICType: "E1000"}, "n-disk1.vmdk", 1)
		if err != nil {
			t.Fatal(err)
		}
		for _, item := range regexp.MustCompile(`(?s)<Item>(.*?)</Item>`).FindAllStringSubmatch(string(ovf), -1) {
			names := regexp.MustCompile(`<rasd:(\w+)>`).FindAllStringSubmatch(item[1], -1)
			for i := 1; i < len(names); i++ {
				if names[i-1][1] >= names[i][1] {
					t.Errorf("%s: rasd:%s before rasd:%s", c, names[i-1][1], names[i][1])
				}
			}
		}
	}
}

func TestCapacityFromVMDK(t *testing.T) {
	dir := t.TempDir()
	_, vmdkPath, info := fixture(t, dir, 2<<20, false)
	ovf := writeOVA(t, Options{Name: "a", VMDKPath: vmdkPath})
	if !bytes.Contains(ovf, []byte(`ovf:capacity="`+strconv.FormatInt(info.Capacity, 10)+`"`)) {
		t.Error("capacity not read from the VMDK header")
	}
}

func TestOptionErrors(t *testing.T) {
	for _, o := range []Options{
		{Name: "", VMDKPath: "x"},
		{Name: "a/b", VMDKPath: "x"},
		{Name: "a", VMDKPath: ""},
		{Name: "a", VMDKPath: "x", NICType: "rtl8139"},
		{Name: "a", VMDKPath: "x", Controller: "nvme"},
		{Name: "a", VMDKPath: "x", Properties: []Property{{Label: "no key"}}},
		{Name: "a", VMDKPath: filepath.Join(t.TempDir(), "missing.vmdk")},
	} {
		if err := Write(io.Discard, o); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
}

func BenchmarkWrite(b *testing.B) {
	dir := b.TempDir()
	_, vmdkPath, info := fixture(b, dir, 64<<20, true)
	o := Options{Name: "bench", VMDKPath: vmdkPath, DiskCapacity: info.Capacity, VMDKPopulatedSize: info.PopulatedSize}
	st, err := os.Stat(vmdkPath)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(st.Size())
	for b.Loop() {
		if err := Write(io.Discard, o); err != nil {
			b.Fatal(err)
		}
	}
}

// envelope is just enough of the OVF schema to check what Write promises.
type envelope struct {
	Files []struct {
		Href string `xml:"href,attr"`
		Size int64  `xml:"size,attr"`
	} `xml:"References>File"`
	Disks []struct {
		Capacity  int64  `xml:"capacity,attr"`
		Populated int64  `xml:"populatedSize,attr"`
		Format    string `xml:"format,attr"`
	} `xml:"DiskSection>Disk"`
	System struct {
		Hardware struct {
			Transport string `xml:"transport,attr"`
			Items     []struct {
				ElementName     string `xml:"ElementName"`
				ResourceType    string `xml:"ResourceType"`
				VirtualQuantity string `xml:"VirtualQuantity"`
			} `xml:"Item"`
			Configs []struct {
				Key   string `xml:"key,attr"`
				Value string `xml:"value,attr"`
			} `xml:"Config"`
		} `xml:"VirtualHardwareSection"`
		Product struct {
			Properties []struct {
				Key string `xml:"key,attr"`
			} `xml:"Property"`
		} `xml:"ProductSection"`
	} `xml:"VirtualSystem"`
}
