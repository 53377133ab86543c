package datasource

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestNoCloudVolume(t *testing.T) {
	vols := DirVolumes{
		{Device: "/dev/vda", FSType: "vfat", Label: "EFI"}:       t.TempDir(),
		{Device: "/dev/sr1", FSType: "iso9660", Label: "cidata"}: "testdata/nocloud",
	}
	s, err := NoCloud{Volumes: vols}.Fetch(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if s.Source != "nocloud:/dev/sr1" || s.InstanceID != "iid-local01" || s.Hostname != "cloudimg" ||
		!bytes.HasPrefix(s.UserData, []byte("#cloud-config")) || s.NetworkFormat != "v2" {
		t.Errorf("seed %+v", s)
	}
	// Upper-case label works too; no label means absent.
	if _, err := (NoCloud{Volumes: DirVolumes{{Device: "/dev/vdb", FSType: "vfat", Label: "CIDATA"}: "testdata/nocloud"}}).Fetch(ctx(t)); err != nil {
		t.Error(err)
	}
	if _, err := (NoCloud{Volumes: DirVolumes{}}).Fetch(ctx(t)); !errors.Is(err, ErrNotFound) {
		t.Errorf("no volume: %v", err)
	}
}

func TestNoCloudBroken(t *testing.T) {
	for name, files := range map[string]map[string]string{
		"nocloud:/dev/sr0: meta-data: missing":     {"user-data": "#cloud-config\n"},
		"nocloud:/dev/sr0 meta-data":               {"meta-data": "a: [\n"},
		"nocloud:/dev/sr0 network-config: version": {"meta-data": "{}", "network-config": "version: 9\n"},
		"nocloud:/dev/sr0: user-data: larger than": {"meta-data": "{}", "user-data": strings.Repeat("x", MaxUserData+1)},
		"nocloud:/dev/sr0: meta-data: larger than": {"meta-data": strings.Repeat("x", MaxDocument+1)},
	} {
		dir := t.TempDir()
		for f, c := range files {
			os.WriteFile(filepath.Join(dir, f), []byte(c), 0o644)
		}
		_, err := NoCloud{Volumes: DirVolumes{{Device: "/dev/sr0", FSType: "iso9660", Label: "cidata"}: dir}}.Fetch(ctx(t))
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("want %q, got %v", name, err)
		}
	}
}

func TestConfigDrive(t *testing.T) {
	s, err := ConfigDrive{Volumes: DirVolumes{{Device: "/dev/vdb", FSType: "iso9660", Label: "config-2"}: "testdata/configdrive"}}.Fetch(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if s.Source != "configdrive:/dev/vdb" || s.InstanceID != "83679162-1378-4288-a2d4-70e13ec132aa" || s.Hostname != "test.novalocal" ||
		s.NetworkFormat != "openstack" || !strings.Contains(string(s.VendorData), "ntp:") || !strings.Contains(string(s.UserData), "from-config-drive") {
		t.Errorf("seed %+v", s)
	}
}

// serveDir serves a directory like a metadata service (404 for missing files).
func serveDir(dir string) http.Handler { return http.FileServer(http.Dir(dir)) }

func TestOpenStackMetadata(t *testing.T) {
	srv := httptest.NewServer(serveDir("testdata/configdrive"))
	defer srv.Close()
	s, err := OpenStackMetadata{BaseURL: srv.URL}.Fetch(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if s.InstanceID != "83679162-1378-4288-a2d4-70e13ec132aa" || s.NetworkFormat != "openstack" || s.UserData == nil {
		t.Errorf("seed %+v", s)
	}
	empty := httptest.NewServer(http.NotFoundHandler())
	defer empty.Close()
	if _, err := (OpenStackMetadata{BaseURL: empty.URL}).Fetch(ctx(t)); !errors.Is(err, ErrNotFound) {
		t.Errorf("no openstack tree: %v", err)
	}
	// Nothing listening: absent, not broken.
	if _, err := (OpenStackMetadata{BaseURL: "http://127.0.0.1:1"}).Fetch(ctx(t)); !errors.Is(err, ErrNotFound) {
		t.Errorf("unreachable: %v", err)
	}
}

// imds is an EC2-style metadata service with a session-token flow.
type imds struct {
	ttlHeader, tokHeader string
	noToken              bool // answer the PUT with 403 and accept plain GETs (IMDSv1)
	files                map[string]string
	puts, gets           int
}

func (m *imds) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/latest/api/token" {
		if r.Method != http.MethodPut {
			http.Error(w, "method", http.StatusMethodNotAllowed)
			return
		}
		m.puts++
		if m.noToken {
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		if r.Header.Get(m.ttlHeader) != "21600" {
			http.Error(w, "ttl", http.StatusBadRequest)
			return
		}
		w.Write([]byte("TOKEN-123"))
		return
	}
	if !m.noToken && r.Header.Get(m.tokHeader) != "TOKEN-123" {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	m.gets++
	c, ok := m.files[r.URL.Path]
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Write([]byte(c))
}

var ec2Tree = map[string]string{
	"/latest/meta-data/instance-id":    "i-1234567890abcdef0",
	"/latest/meta-data/local-hostname": "ip-10-251-50-12.ec2.internal",
	"/latest/meta-data/hostname":       "ip-10-251-50-12.ec2.internal",
	"/latest/user-data":                "#cloud-config\nhostname: ec2node\n",
}

func TestEC2IMDSv2(t *testing.T) {
	m := &imds{ttlHeader: "X-aws-ec2-metadata-token-ttl-seconds", tokHeader: "X-aws-ec2-metadata-token", files: ec2Tree}
	srv := httptest.NewServer(m)
	defer srv.Close()
	e := NewEC2()
	e.BaseURL = srv.URL
	s, err := e.Fetch(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if s.InstanceID != "i-1234567890abcdef0" || s.Hostname != "ip-10-251-50-12.ec2.internal" || !strings.Contains(string(s.UserData), "ec2node") || m.puts != 1 || m.gets < 4 {
		t.Errorf("seed %+v puts=%d gets=%d", s, m.puts, m.gets)
	}
	// IMDSv1 fallback.
	m1 := &imds{noToken: true, files: ec2Tree}
	srv1 := httptest.NewServer(m1)
	defer srv1.Close()
	e.BaseURL = srv1.URL
	if s, err := e.Fetch(ctx(t)); err != nil || s.InstanceID != "i-1234567890abcdef0" {
		t.Errorf("IMDSv1: %v", err)
	}
	// Huge user-data is refused, naming the source.
	big := &imds{ttlHeader: m.ttlHeader, tokHeader: m.tokHeader, files: map[string]string{
		"/latest/meta-data/instance-id": "i-1", "/latest/user-data": strings.Repeat("x", MaxUserData+1)}}
	srv2 := httptest.NewServer(big)
	defer srv2.Close()
	e.BaseURL = srv2.URL
	if _, err := e.Fetch(ctx(t)); err == nil || !strings.Contains(err.Error(), "ec2:"+srv2.URL) || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("huge user-data: %v", err)
	}
}

func TestAliyunToken(t *testing.T) {
	m := &imds{ttlHeader: "X-aliyun-ecs-metadata-token-ttl-seconds", tokHeader: "X-aliyun-ecs-metadata-token", files: map[string]string{
		"/latest/meta-data/instance-id": "i-bp67acfmxazb4ph",
		"/latest/meta-data/hostname":    "iZbp1",
		"/latest/user-data":             "#cloud-config\n",
	}}
	srv := httptest.NewServer(m)
	defer srv.Close()
	dmiDir := t.TempDir()
	e := NewAliyun(dmiDir)
	e.BaseURL = srv.URL
	if _, err := e.Fetch(ctx(t)); !errors.Is(err, ErrNotFound) || e.NeedsNetwork() {
		t.Errorf("without Alibaba DMI: %v", err)
	}
	os.WriteFile(filepath.Join(dmiDir, "product_name"), []byte("Alibaba Cloud ECS\n"), 0o644)
	s, err := e.Fetch(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if s.Source != "aliyun:"+srv.URL || s.InstanceID != "i-bp67acfmxazb4ph" || s.Hostname != "iZbp1" || m.puts != 1 {
		t.Errorf("seed %+v", s)
	}
}

func TestZStackDetect(t *testing.T) {
	srv := httptest.NewServer(&imds{noToken: true, files: ec2Tree})
	defer srv.Close()
	dmiDir := t.TempDir()
	z := NewZStack(dmiDir)
	z.BaseURL = srv.URL
	if _, err := z.Fetch(ctx(t)); !errors.Is(err, ErrNotFound) {
		t.Errorf("without ZStack DMI: %v", err)
	}
	os.WriteFile(filepath.Join(dmiDir, "chassis_asset_tag"), []byte("d6c8a6c3.zstack.io\n"), 0o644)
	if s, err := z.Fetch(ctx(t)); err != nil || s.Source != "zstack:"+srv.URL {
		t.Errorf("zstack: %v %+v", err, s)
	}
}

func TestCmdline(t *testing.T) {
	ud := "#cloud-config\nhostname: inline\n"
	s, err := Cmdline{Args: map[string]string{"kiln.config": "base64:" + base64.StdEncoding.EncodeToString([]byte(ud))}}.Fetch(ctx(t))
	if err != nil || string(s.UserData) != ud || s.Source != "cmdline" {
		t.Errorf("inline: %v %+v", err, s)
	}
	if _, err := (Cmdline{Args: map[string]string{"kiln.config": "base64:%%%"}}).Fetch(ctx(t)); err == nil || !strings.Contains(err.Error(), "cmdline: kiln.config: bad base64") {
		t.Errorf("bad base64: %v", err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/seed/config.yaml" {
			w.Write([]byte(ud))
			return
		}
		serveDir("testdata/nocloud").ServeHTTP(w, &http.Request{Method: "GET", URL: r.URL, Header: r.Header})
	}))
	defer srv.Close()
	c := Cmdline{Args: map[string]string{"kiln.config": srv.URL + "/seed/config.yaml"}}
	if !c.NeedsNetwork() {
		t.Error("URL config should need the network")
	}
	if s, err := c.Fetch(ctx(t)); err != nil || string(s.UserData) != ud {
		t.Errorf("url: %v", err)
	}
	net := Cmdline{Args: map[string]string{"ds": "nocloud-net;s=" + srv.URL + "/;h=override"}}
	s, err = net.Fetch(ctx(t))
	if err != nil || s.InstanceID != "iid-local01" || s.Hostname != "cloudimg" || s.NetworkFormat != "v2" || !net.NeedsNetwork() {
		t.Errorf("nocloud-net: %v %+v", err, s)
	}
	abs, _ := filepath.Abs("testdata/nocloud")
	file := Cmdline{Args: map[string]string{"ds": "nocloud;s=file://" + abs + "/"}}
	if s, err := file.Fetch(ctx(t)); err != nil || s.Source != "nocloud:"+abs+"/" || file.NeedsNetwork() {
		t.Errorf("file: %v %+v", err, s)
	}
	if _, err := (Cmdline{Args: map[string]string{"ds": "nocloud"}}).Fetch(ctx(t)); !errors.Is(err, ErrNotFound) {
		t.Errorf("hint only: %v", err)
	}
	if _, err := (Cmdline{Args: map[string]string{}}).Fetch(ctx(t)); !errors.Is(err, ErrNotFound) {
		t.Errorf("nothing: %v", err)
	}
}

func TestOVFEnv(t *testing.T) {
	b, _ := os.ReadFile("testdata/ovf-env.xml")
	vols := DirVolumes{{Device: "/dev/sr0", FSType: "iso9660", Label: "OVF ENV"}: t.TempDir()}
	for _, d := range vols {
		os.WriteFile(filepath.Join(d, "ovf-env.xml"), b, 0o644)
	}
	s, err := OVF{Volumes: vols}.Fetch(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	// guestinfo.metadata overrides the plain OVF keys, as in cloud-init.
	if s.Source != "ovf:/dev/sr0" || s.InstanceID != "i-guestinfo" || s.Hostname != "ovfnode" ||
		string(s.UserData) != "#cloud-config\nhostname: ovf-host\n" || s.NetworkFormat != "v2" {
		t.Errorf("seed %+v", s)
	}
	for _, bad := range []string{"<Environment", "<Environment><PropertySection><Property key=\"user-data\" value=\"!!\"/></PropertySection></Environment>"} {
		if _, err := ParseOVFEnv("ovf:x", []byte(bad)); err == nil || !strings.Contains(err.Error(), "ovf:x: ovf-env.xml") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func gzb64(s string) string {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Write([]byte(s))
	w.Close()
	return base64.StdEncoding.EncodeToString(b.Bytes())
}

func TestGuestInfo(t *testing.T) {
	keys := map[string]string{
		"guestinfo.userdata":          base64.StdEncoding.EncodeToString([]byte("#cloud-config\nhostname: vm1\n")),
		"guestinfo.userdata.encoding": "base64",
		"guestinfo.metadata": gzb64("instance-id: vm-42\nlocal-hostname: vm1\nnetwork: " +
			base64.StdEncoding.EncodeToString([]byte("version: 1\nconfig: []\n")) + "\nnetwork.encoding: base64\n"),
		"guestinfo.metadata.encoding": "gzip+base64",
	}
	// The RPC goes through the real RPCI state machine, against a fake VMX.
	vmx := &fakeVMX{keys: keys}
	g := GuestInfo{RPC: func(cmd string) (string, error) { return rpciCall(vmx.backdoor, cmd) }}
	s, err := g.Fetch(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if s.InstanceID != "vm-42" || s.Hostname != "vm1" || string(s.UserData) != "#cloud-config\nhostname: vm1\n" || s.NetworkFormat != "v1" {
		t.Errorf("seed %+v", s)
	}
	keys["guestinfo.userdata"] = "@@@"
	if _, err := g.Fetch(ctx(t)); err == nil || !strings.Contains(err.Error(), "vmware:guestinfo: guestinfo.userdata: bad base64") {
		t.Errorf("bad base64: %v", err)
	}
	if _, err := (GuestInfo{RPC: func(string) (string, error) { return "0 No value found", nil }}).Fetch(ctx(t)); !errors.Is(err, ErrNotFound) {
		t.Errorf("empty guestinfo: %v", err)
	}
	// Not VMware by DMI: the backdoor is never touched.
	if _, err := (GuestInfo{DMIDir: t.TempDir()}).Fetch(ctx(t)); !errors.Is(err, ErrNotFound) {
		t.Errorf("not vmware: %v", err)
	}
}

type brokenSource struct{}

func (brokenSource) Name() string { return "broken" }
func (brokenSource) Fetch(context.Context) (*Seed, error) {
	return nil, errors.New("broken: meta-data: bad")
}

type netSource struct{ OpenStackMetadata }

func TestDiscoverOrder(t *testing.T) {
	vols := DirVolumes{{Device: "/dev/sr1", FSType: "iso9660", Label: "cidata"}: "testdata/nocloud"}
	ups := 0
	up := func(context.Context) error { ups++; return nil }
	s, err := Discover(ctx(t), []Source{Cmdline{Args: map[string]string{}}, ConfigDrive{Volumes: vols}, NoCloud{Volumes: vols}}, time.Second, up, t.Logf)
	if err != nil || s.Source != "nocloud:/dev/sr1" || ups != 0 {
		t.Errorf("%v %+v ups=%d", err, s, ups)
	}
	if _, err := Discover(ctx(t), []Source{brokenSource{}, NoCloud{Volumes: vols}}, time.Second, up, t.Logf); err == nil || err.Error() != "broken: meta-data: bad" {
		t.Errorf("broken: %v", err)
	}
	// Network sources are skipped when the network cannot come up, and networkUp runs once.
	down := func(context.Context) error { ups++; return errors.New("no carrier") }
	srcs := []Source{OpenStackMetadata{BaseURL: "http://127.0.0.1:1"}, NewEC2()}
	if _, err := Discover(ctx(t), srcs, time.Second, down, t.Logf); !errors.Is(err, ErrNotFound) || ups != 1 {
		t.Errorf("no network: %v ups=%d", err, ups)
	}
}

func TestReadLabel(t *testing.T) {
	for _, tool := range []string{"mkfs.vfat", "xorriso"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is needed as the test oracle (apt-get install dosfstools xorriso)", tool)
		}
	}
	dir := t.TempDir()
	cases := []struct {
		name, fstype, label string
		make                []string
	}{
		{"fat12.img", "vfat", "CIDATA", []string{"mkfs.vfat", "-C", "-n", "CIDATA", "IMG", "1440"}},
		{"fat16.img", "vfat", "config-2", []string{"mkfs.vfat", "-C", "-F", "16", "-n", "config-2", "IMG", "20000"}},
		{"fat32.img", "vfat", "cidata", []string{"mkfs.vfat", "-C", "-F", "32", "-n", "cidata", "IMG", "40000"}},
		{"nolabel.img", "vfat", "", []string{"mkfs.vfat", "-C", "IMG", "1440"}},
		{"seed.iso", "iso9660", "cidata", []string{"xorriso", "-as", "mkisofs", "-quiet", "-V", "cidata", "-J", "-R", "-o", "IMG", "testdata/nocloud"}},
		{"ovf.iso", "iso9660", "OVF ENV", []string{"xorriso", "-as", "mkisofs", "-quiet", "-V", "OVF ENV", "-o", "IMG", "testdata/nocloud"}},
	}
	for _, c := range cases {
		img := filepath.Join(dir, c.name)
		args := append([]string(nil), c.make...)
		for i := range args {
			if args[i] == "IMG" {
				args[i] = img
			}
		}
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
		f, err := os.Open(img)
		if err != nil {
			t.Fatal(err)
		}
		fstype, label, err := ReadLabel(f)
		f.Close()
		if err != nil || fstype != c.fstype || label != c.label {
			t.Errorf("%s: got %q %q %v, want %q %q", c.name, fstype, label, err, c.fstype, c.label)
		}
	}
	if _, _, err := ReadLabel(bytes.NewReader(make([]byte, 64<<10))); err == nil {
		t.Error("zeros recognised as a filesystem")
	}
}

// The full path on a real kernel: a CIDATA ISO on a loop device, found by
// label and mounted read-only.
func TestSysVolumesMount(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to attach a loop device and mount")
	}
	img := filepath.Join(t.TempDir(), "seed.iso")
	if out, err := exec.Command("xorriso", "-as", "mkisofs", "-quiet", "-V", "cidata", "-J", "-R", "-o", img, "testdata/nocloud").CombinedOutput(); err != nil {
		t.Fatalf("xorriso: %v\n%s", err, out)
	}
	out, err := exec.Command("losetup", "-f", "--show", "-r", img).Output()
	if err != nil {
		t.Skipf("no loop device available in this environment: %v", err)
	}
	dev := strings.TrimSpace(string(out))
	defer exec.Command("losetup", "-d", dev).Run()
	v := SysVolumes{MountDir: t.TempDir()}
	dir, release, err := v.Mount(Volume{Device: dev, FSType: "iso9660", Label: "cidata"})
	if err != nil {
		t.Skipf("cannot mount iso9660 here: %v", err)
	}
	defer release()
	s, err := readNoCloudDir("nocloud:"+dev, dirReader(dir))
	if err != nil || s.InstanceID != "iid-local01" {
		t.Errorf("%v %+v", err, s)
	}
}
