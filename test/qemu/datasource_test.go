package qemu_test

import (
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Two more platforms' seed channels on a real boot: ZStack's metadata
// service (found through DMI) and the VMware/vApp OVF environment CD.

// TestZStackMetadata: the chassis asset tag ends in .zstack.io, as on a
// ZStack VM; initd must take the seed from the zstack source (not the
// generic EC2 one, which the same service would also satisfy).
func TestZStackMetadata(t *testing.T) {
	svc := &metadataService{tree: map[string]string{
		"meta-data/instance-id":    "0b7a1c5e9f3d4e2a8c6b1d0e7f5a3c92",
		"meta-data/local-hostname": "zs-node1",
		"meta-data/hostname":       "zs-node1.zstack.local",
		"user-data": `#cloud-config
write_files:
  - path: /etc/kiln-test/zstack
    content: "hello from zstack\n"
`,
	}}
	m := amd64Machine(t, image("amd64", "iso"), "cdrom")
	serveMetadata(t, m, svc)
	m.ExtraArgs = append(m.ExtraArgs, "-smbios", "type=3,asset=www.zstack.io")
	vm, line := bootKept(t, m)
	wantReady(t, line, "zs-node1", "169.254.169.15/24")
	wantConsole(t, vm.Log(), "seed from zstack:http://169.254.169.254", "write_files[0]: wrote /etc/kiln-test/zstack (18 bytes, mode 0644")
	wantRequests(t, svc, "GET /latest/meta-data/instance-id", "GET /latest/meta-data/local-hostname", "GET /latest/user-data")
	if strings.Contains(svc.requests(), "/openstack/") {
		t.Error("the OpenStack service was asked on a VM whose DMI says ZStack")
	}
}

// TestMetadataNotAskedWithoutDMI: a metadata service answers at
// 169.254.169.254, but the VM's DMI names no cloud (plain QEMU, as on a
// desktop hypervisor or bare metal): initd must not ask it, and comes up
// on DHCP with no seed.
func TestMetadataNotAskedWithoutDMI(t *testing.T) {
	svc := &metadataService{tree: map[string]string{
		"meta-data/instance-id":    "i-0kiln000000000009",
		"meta-data/local-hostname": "must-not-appear",
	}}
	m := amd64Machine(t, image("amd64", "iso"), "cdrom")
	serveMetadata(t, m, svc)
	vm, line := bootKept(t, m)
	wantReady(t, line, "", "169.254.169.15/24")
	wantConsole(t, vm.Log(), "nodeconfig: no seed found; using DHCP")
	if reqs := svc.requests(); reqs != "" {
		t.Errorf("the metadata service was asked without a DMI mark:\n%s", reqs)
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
