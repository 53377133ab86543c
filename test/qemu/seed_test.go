package qemu_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kilnproject/kiln/qemu"
)

// These tests boot the amd64 minimal image with a seed attached the way a
// platform attaches it (a second CD-ROM made by `kiln seed`, or a metadata
// service) and check what initd did from the console and, after a clean
// power-off, from the STATE filesystem itself (e2fsprogs as the oracle).

const (
	nocloudMAC = "52:54:00:6b:69:01"
	cdriveMAC  = "52:54:00:6b:69:02"
	seedEpoch  = "1700000000" // SOURCE_DATE_EPOCH for the seed images
)

func TestSeedNoCloud(t *testing.T) {
	dir := seedFiles(t, map[string]string{
		"user-data": `#cloud-config
hostname: node1
write_files:
  - path: /etc/kiln-test/hello
    content: "hello from nocloud\n"
    permissions: "0640"
`,
		"network-config": `version: 2
ethernets:
  nic0:
    match:
      macaddress: "` + nocloudMAC + `"
    addresses: [10.0.2.50/24]
    gateway4: 10.0.2.2
    nameservers:
      addresses: [10.0.2.3]
`,
	})
	iso := kilnSeed(t, "--kind", "nocloud", dir)
	checkSeedISO(t, iso, "CIDATA", "/user-data", "/meta-data", "/network-config")
	sameBytes(t, iso, kilnSeed(t, "--kind", "nocloud", dir))

	disk := diskOverlay(t, "")
	m := amd64Machine(t, disk, "qcow2", iso)
	m.MAC = nocloudMAC
	vm, line := bootKept(t, m)
	wantReady(t, line, "node1", "10.0.2.50/24")
	wantConsole(t, vm.Log(), "seed from nocloud:", "write_files[0]: wrote /etc/kiln-test/hello (19 bytes, mode 0640")
	powerdown(t, vm, 30*time.Second)

	st := openState(t, disk)
	st.fsck(t)
	if got := st.cat(t, "/etc/upper/kiln-test/hello"); got != "hello from nocloud\n" {
		t.Errorf("/etc/kiln-test/hello on STATE = %q", got)
	}
	if got := st.mode(t, "/etc/upper/kiln-test/hello"); got != "0640" {
		t.Errorf("/etc/kiln-test/hello on STATE has mode %s, want 0640", got)
	}
	if got := st.cat(t, "/etc/upper/hostname"); got != "node1\n" {
		t.Errorf("/etc/hostname on STATE = %q", got)
	}
}

func TestSeedConfigDrive(t *testing.T) {
	dir := seedFiles(t, map[string]string{
		"user-data": `#cloud-config
write_files:
  - path: /etc/kiln-test/hello
    content: "hello from config-2\n"
    permissions: "0640"
`,
		"network_data.json": `{
  "links": [{"id": "tap0", "type": "phy", "ethernet_mac_address": "` + cdriveMAC + `", "mtu": 1500}],
  "networks": [{"id": "net0", "type": "ipv4", "link": "tap0", "ip_address": "10.0.2.51", "netmask": "255.255.255.0",
    "routes": [{"network": "0.0.0.0", "netmask": "0.0.0.0", "gateway": "10.0.2.2"}]}],
  "services": [{"type": "dns", "address": "10.0.2.3"}]
}
`,
	})
	// The hostname rides in meta_data.json (no hostname in user-data).
	iso := kilnSeed(t, "--kind", "configdrive", "--hostname", "node2",
		"--network-config", filepath.Join(dir, "network_data.json"), filepath.Join(dir, "user-data"))
	checkSeedISO(t, iso, "config-2", "/openstack/latest/meta_data.json", "/openstack/latest/user_data", "/openstack/latest/network_data.json")

	disk := diskOverlay(t, "")
	m := amd64Machine(t, disk, "qcow2", iso)
	m.MAC = cdriveMAC
	vm, line := bootKept(t, m)
	wantReady(t, line, "node2", "10.0.2.51/24")
	wantConsole(t, vm.Log(), "seed from configdrive:", "write_files[0]: wrote /etc/kiln-test/hello (20 bytes, mode 0640")
	powerdown(t, vm, 30*time.Second)

	st := openState(t, disk)
	st.fsck(t)
	if got := st.cat(t, "/etc/upper/kiln-test/hello"); got != "hello from config-2\n" {
		t.Errorf("/etc/kiln-test/hello on STATE = %q", got)
	}
	if got := st.mode(t, "/etc/upper/kiln-test/hello"); got != "0640" {
		t.Errorf("/etc/kiln-test/hello on STATE has mode %s, want 0640", got)
	}
}

// TestSeedMetadataService serves an EC2-style metadata tree from the test
// and shows it to the guest as 169.254.169.254:80 through a QEMU guestfwd;
// the restricted user network lets nothing else out.
func TestSeedMetadataService(t *testing.T) {
	svc := &metadataService{requireToken: true, tree: map[string]string{
		"meta-data/instance-id":    "i-0kiln000000000003",
		"meta-data/local-hostname": "node3",
		"meta-data/hostname":       "node3.internal",
		"user-data": `#cloud-config
write_files:
  - path: /etc/kiln-test/hello
    content: "hello from imds\n"
`,
	}}
	m := amd64Machine(t, image("amd64", "iso"), "cdrom")
	serveMetadata(t, m, svc)
	// What a Nitro instance's firmware says: initd asks the EC2 service
	// only where DMI names it.
	m.ExtraArgs = append(m.ExtraArgs, "-smbios", "type=1,manufacturer=Amazon EC2")
	vm, line := bootKept(t, m)
	wantReady(t, line, "node3", "169.254.169.15/24")
	wantConsole(t, vm.Log(), "seed from ec2:http://169.254.169.254", "write_files[0]: wrote /etc/kiln-test/hello (16 bytes, mode 0644")

	wantRequests(t, svc, "PUT /latest/api/token token=false", "GET /latest/meta-data/instance-id token=true",
		"GET /latest/meta-data/local-hostname token=true", "GET /latest/user-data token=true")
	if strings.Contains(svc.requests(), "GET /latest/meta-data/instance-id token=false") {
		t.Error("initd read meta-data without the IMDSv2 token")
	}
}

// TestSeedBad: a seed with an invalid field is reported on the console with
// the source and the field; the node still boots and keeps its DHCP address.
func TestSeedBad(t *testing.T) {
	dir := seedFiles(t, map[string]string{
		"user-data": `#cloud-config
hostname: badnode
write_files:
  - path: /etc/kiln-test/bad
    content: "never written\n"
    permissions: "0x9"
`,
	})
	iso := kilnSeed(t, "--kind", "nocloud", dir)
	m := amd64Machine(t, image("amd64", "iso"), "cdrom", iso)
	vm, line := bootKept(t, m)
	wantReady(t, line, "", "10.0.2.15/24")
	re := regexp.MustCompile(`kiln: ERROR: seed \(nocloud:/dev/sr\d\): .*nocloud:/dev/sr\d user-data: write_files\[0\]\.permissions: "0x9"`)
	if !re.MatchString(vm.Log()) {
		saveLog(t, vm.Log())
		t.Errorf("console lacks an error naming the source and write_files[0].permissions (want %s)", re)
	}
	if strings.Contains(vm.Log(), "wrote /etc/kiln-test/bad") {
		t.Error("a file from the bad seed was written")
	}
}

// --- helpers shared with state_test.go ---

func needTools(t *testing.T, tools ...string) {
	t.Helper()
	pkg := map[string]string{"sgdisk": "gdisk", "e2fsck": "e2fsprogs", "debugfs": "e2fsprogs", "dumpe2fs": "e2fsprogs",
		"qemu-img": "qemu-utils", "xorriso": "xorriso"}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is needed by this test: apt-get install %s", tool, pkg[tool])
		}
	}
}

// seedFiles writes a seed directory.
func seedFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// kilnSeed runs the real `kiln seed` and returns the image it wrote.
func kilnSeed(t *testing.T, args ...string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "seed.iso")
	cmd := exec.Command(kilnBin, append([]string{"seed", "-o", out}, args...)...)
	cmd.Env = append(os.Environ(), "SOURCE_DATE_EPOCH="+seedEpoch)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kiln seed %s: %v\n%s", strings.Join(args, " "), err, b)
	}
	return out
}

// checkSeedISO asks xorriso for the volume ID and the files of a seed image.
func checkSeedISO(t *testing.T, iso, label string, files ...string) {
	t.Helper()
	needTools(t, "xorriso")
	out, err := exec.Command("xorriso", "-indev", iso, "-pvd_info", "-find", "/", "-type", "f").CombinedOutput()
	if err != nil {
		t.Fatalf("xorriso on %s: %v\n%s", iso, err, out)
	}
	s := string(out)
	if !regexp.MustCompile(`(?m)^Volume Id\s*:\s*` + regexp.QuoteMeta(label) + `\s*$`).MatchString(s) {
		t.Errorf("seed %s: volume ID is not %s:\n%s", iso, label, s)
	}
	for _, f := range files {
		if !strings.Contains(s, "'"+f+"'") {
			t.Errorf("seed %s lacks %s:\n%s", iso, f, s)
		}
	}
}

// sameBytes: the same seed input must give the same image (reproducible).
func sameBytes(t *testing.T, a, b string) {
	t.Helper()
	x, err := os.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	y, err := os.ReadFile(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(x, y) {
		t.Errorf("kiln seed is not reproducible: %s and %s differ", a, b)
	}
}

// diskOverlay makes a writable qcow2 on top of the built qcow2 (the image
// itself stays pristine); size "" keeps the image's size.
func diskOverlay(t *testing.T, size string) string {
	t.Helper()
	needTools(t, "qemu-img")
	p := filepath.Join(t.TempDir(), "disk.qcow2")
	args := []string{"create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", image("amd64", "qcow2"), p}
	if size != "" {
		args = append(args, size)
	}
	if out, err := exec.Command("qemu-img", args...).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return p
}

// amd64Machine boots img (media "qcow2" = a disk that keeps its writes,
// "cdrom" = the ISO) with seed images as further CD-ROM drives.
func amd64Machine(t *testing.T, img, media string, seeds ...string) *qemu.Machine {
	d := qemu.Drive{Path: img, Media: "cdrom"}
	if media == "qcow2" {
		d = qemu.Drive{Path: img, Format: "qcow2"}
	}
	drives := []qemu.Drive{d}
	for _, s := range seeds {
		drives = append(drives, qemu.Drive{Path: s, Media: "cdrom"})
	}
	return &qemu.Machine{Arch: mustArch(t, "amd64"), Net: "user", MemoryMiB: 1024, Drives: drives}
}

// bootKept boots and keeps the console log if the test fails later.
func bootKept(t *testing.T, m *qemu.Machine) (*qemu.VM, string) {
	t.Helper()
	vm, line := boot(t, m, bootTimeout("amd64"))
	t.Cleanup(func() {
		if t.Failed() {
			saveLog(t, vm.Log())
		}
	})
	return vm, line
}

// wantReady checks the ready line's hostname (when given) and that the
// address list holds want.
func wantReady(t *testing.T, line, hostname, want string) {
	t.Helper()
	f := map[string]string{}
	for _, kv := range strings.Fields(line) {
		if k, v, ok := strings.Cut(kv, "="); ok {
			f[k] = v
		}
	}
	if hostname != "" && f["hostname"] != hostname {
		t.Errorf("ready line has hostname=%s, want %s: %q", f["hostname"], hostname, line)
	}
	addrs := strings.Split(f["addresses"], ",")
	found := false
	for _, a := range addrs {
		found = found || a == want
	}
	if !found {
		t.Errorf("ready line has addresses=%s, want %s among them: %q", f["addresses"], want, line)
	}
}

func wantConsole(t *testing.T, log string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(log, w) {
			t.Errorf("console lacks %q", w)
		}
	}
}

// powerdown presses the power button through QMP and waits for initd to
// power the VM off; it returns how long that took.
func powerdown(t *testing.T, vm *qemu.VM, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	if err := vm.Powerdown(); err != nil {
		t.Fatalf("QMP system_powerdown: %v", err)
	}
	if err := vm.Wait(within); err != nil {
		saveLog(t, vm.Log())
		t.Fatalf("QEMU still running %s after the power button: %v", within, err)
	}
	d := time.Since(start)
	wantConsole(t, vm.Log(), "stopping services", "syncing and unmounting", "poweroff now")
	t.Logf("powered off %.1fs after the power button", d.Seconds())
	return d
}

// stateFS is the STATE partition of a disk image converted to raw: e2fsprogs
// reach it through the "?offset=" suffix of the image name.
type stateFS struct {
	raw                   string
	first, last           int64 // sectors, inclusive
	diskSectors, lastUsed int64 // whole disk; last usable LBA of the GPT
}

var (
	sgdiskFirst  = regexp.MustCompile(`(?m)^First sector: (\d+)`)
	sgdiskLast   = regexp.MustCompile(`(?m)^Last sector: (\d+)`)
	sgdiskName   = regexp.MustCompile(`(?m)^Partition name: '([^']*)'`)
	sgdiskUsable = regexp.MustCompile(`last usable sector is (\d+)`)
	sgdiskDisk   = regexp.MustCompile(`(?m)^Disk .*: (\d+) sectors`)
)

func openState(t *testing.T, qcow2 string) stateFS {
	t.Helper()
	needTools(t, "qemu-img", "sgdisk", "e2fsck", "debugfs", "dumpe2fs")
	raw := filepath.Join(t.TempDir(), "disk.raw")
	if out, err := exec.Command("qemu-img", "convert", "-f", "qcow2", "-O", "raw", qcow2, raw).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img convert %s: %v\n%s", qcow2, err, out)
	}
	info := runTool(t, "sgdisk", "-i", "4", raw)
	if m := sgdiskName.FindStringSubmatch(info); m == nil || m[1] != "STATE" {
		t.Fatalf("partition 4 of %s is not STATE:\n%s", qcow2, info)
	}
	p := runTool(t, "sgdisk", "-p", raw)
	s := stateFS{raw: raw, first: atoi(t, sgdiskFirst, info), last: atoi(t, sgdiskLast, info),
		diskSectors: atoi(t, sgdiskDisk, p), lastUsed: atoi(t, sgdiskUsable, p)}
	return s
}

func atoi(t *testing.T, re *regexp.Regexp, s string) int64 {
	t.Helper()
	m := re.FindStringSubmatch(s)
	if m == nil {
		t.Fatalf("no %s in:\n%s", re, s)
	}
	n, _ := strconv.ParseInt(m[1], 10, 64)
	return n
}

func (s stateFS) dev() string { return fmt.Sprintf("%s?offset=%d", s.raw, s.first*512) }

// fsck must find STATE clean: the proof that initd unmounted it.
func (s stateFS) fsck(t *testing.T) {
	t.Helper()
	out, err := exec.Command("e2fsck", "-fn", s.dev()).CombinedOutput()
	if err != nil {
		t.Errorf("e2fsck -fn on STATE is not clean (%v): the filesystem was not unmounted cleanly\n%s", err, out)
	}
}

func (s stateFS) cat(t *testing.T, path string) string {
	t.Helper()
	out, err := exec.Command("debugfs", "-R", "cat "+path, s.dev()).Output()
	if err != nil {
		t.Fatalf("debugfs cat %s: %v", path, err)
	}
	return string(out)
}

var debugfsMode = regexp.MustCompile(`Mode:\s+([0-7]+)`)

func (s stateFS) mode(t *testing.T, path string) string {
	t.Helper()
	out := runTool(t, "debugfs", "-R", "stat "+path, s.dev())
	m := debugfsMode.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("debugfs stat %s: no mode in:\n%s", path, out)
	}
	return m[1]
}

// blocks returns the ext4 block count and size from dumpe2fs -h.
func (s stateFS) blocks(t *testing.T) (count, size int64) {
	t.Helper()
	out := runTool(t, "dumpe2fs", "-h", s.dev())
	return atoi(t, regexp.MustCompile(`(?m)^Block count:\s+(\d+)`), out), atoi(t, regexp.MustCompile(`(?m)^Block size:\s+(\d+)`), out)
}

func runTool(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}
