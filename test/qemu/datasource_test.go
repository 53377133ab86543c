package qemu_test

import (
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/kilnproject/kiln/qemu"
)

// Two more platforms' seed channels on a real boot: ZStack's metadata
// service (found through DMI) and the VMware/vApp OVF environment CD.

// zstackMD is an EC2-compatible metadata service as ZStack runs it: plain
// GETs, no IMDSv2 token (the token PUT is refused), the EC2 tree.
type zstackMD struct {
	mu   sync.Mutex
	reqs []string
}

func (s *zstackMD) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.reqs = append(s.reqs, r.Method+" "+r.URL.Path)
	s.mu.Unlock()
	io.Copy(io.Discard, r.Body)
	if r.Method != http.MethodGet {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	body, ok := map[string]string{
		"/latest/meta-data/instance-id":    "0b7a1c5e9f3d4e2a8c6b1d0e7f5a3c92",
		"/latest/meta-data/local-hostname": "zs-node1",
		"/latest/meta-data/hostname":       "zs-node1.zstack.local",
		"/latest/user-data": `#cloud-config
write_files:
  - path: /etc/kiln-test/zstack
    content: "hello from zstack\n"
`,
	}[r.URL.Path]
	if !ok {
		http.NotFound(w, r)
		return
	}
	io.WriteString(w, body)
}

func (s *zstackMD) requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.reqs...)
}

// TestZStackMetadata: the chassis asset tag ends in .zstack.io, as on a
// ZStack VM; initd must take the seed from the zstack source (not the
// generic EC2 one, which the same service would also satisfy).
func TestZStackMetadata(t *testing.T) {
	svc := &zstackMD{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: svc}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	m := amd64Machine(t, image("amd64", "iso"), "cdrom")
	m.UserNet = "169.254.169.0/24"
	m.GuestForwards = []qemu.GuestForward{{Addr: "169.254.169.254", Port: 80, Target: "tcp:" + ln.Addr().String()}}
	m.ExtraArgs = append(m.ExtraArgs, "-smbios", "type=3,asset=www.zstack.io")
	vm, line := bootKept(t, m)
	wantReady(t, line, "zs-node1", "169.254.169.15/24")
	wantConsole(t, vm.Log(), "seed from zstack:http://169.254.169.254", "write_files[0]: wrote /etc/kiln-test/zstack (18 bytes, mode 0644")

	reqs := strings.Join(svc.requests(), "\n")
	t.Logf("metadata requests:\n%s", reqs)
	for _, want := range []string{"GET /latest/meta-data/instance-id", "GET /latest/meta-data/local-hostname", "GET /latest/user-data"} {
		if !strings.Contains(reqs, want) {
			t.Errorf("the metadata service did not see %q", want)
		}
	}
}

// TestOVFEnvironment attaches an "OVF ENV" CD holding ovf-env.xml as vSphere
// does for a vApp: hostname and a base64 guestinfo.userdata cloud-config
// come from its PropertySection.
func TestOVFEnvironment(t *testing.T) {
	needTools(t, "xorriso")
	userData := `#cloud-config
write_files:
  - path: /etc/kiln-test/ovf
    content: "hello from ovf\n"
    permissions: "0600"
`
	env := fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?>
<Environment xmlns="http://schemas.dmtf.org/ovf/environment/1"
     xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
     xmlns:oe="http://schemas.dmtf.org/ovf/environment/1"
     xmlns:ve="http://www.vmware.com/schema/ovfenv"
     oe:id="" ve:vCenterId="vm-42">
  <PlatformSection>
    <Kind>VMware ESXi</Kind>
    <Version>8.0.0</Version>
    <Vendor>VMware, Inc.</Vendor>
    <Locale>en</Locale>
  </PlatformSection>
  <PropertySection>
    <Property oe:key="instance-id" oe:value="ovf-node1-id"/>
    <Property oe:key="hostname" oe:value="ovf-node1"/>
    <Property oe:key="guestinfo.userdata" oe:value="%s"/>
    <Property oe:key="guestinfo.userdata.encoding" oe:value="base64"/>
  </PropertySection>
</Environment>
`, base64.StdEncoding.EncodeToString([]byte(userData)))
	iso := ovfEnvISO(t, env)

	m := amd64Machine(t, image("amd64", "iso"), "cdrom", iso)
	vm, line := bootKept(t, m)
	wantReady(t, line, "ovf-node1", "10.0.2.15/24")
	wantConsole(t, vm.Log(), "seed from ovf:/dev/sr", "write_files[0]: wrote /etc/kiln-test/ovf (15 bytes, mode 0600")
}

// ovfEnvISO writes ovf-env.xml onto an ISO labelled "OVF ENV" (the label
// vSphere gives the environment CD) with xorriso, and checks it with
// xorriso's own reading of the image.
func ovfEnvISO(t *testing.T, env string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "ovf-env.xml"), []byte(env), 0o644); err != nil {
		t.Fatal(err)
	}
	iso := filepath.Join(t.TempDir(), "ovf-env.iso")
	cmd := exec.Command("xorriso", "-as", "mkisofs", "-quiet", "-R", "-J", "-V", "OVF ENV", "-o", iso, dir)
	cmd.Env = append(os.Environ(), "SOURCE_DATE_EPOCH="+seedEpoch)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("xorriso: %v\n%s", err, out)
	}
	checkSeedISO(t, iso, "OVF ENV", "/ovf-env.xml")
	return iso
}
