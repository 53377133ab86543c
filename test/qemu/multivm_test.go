package qemu_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kilnproject/kiln/qemu"
)

// The segment exists only between the switch in this process and the two
// VMs; no frame leaves it.
var (
	hostIP  = netip.MustParseAddr("192.168.77.100")
	hostMAC = qemu.MACFor("test-host")
)

// TestMultiVM boots two minimal ISOs on one virtual Ethernet segment (a
// qemu.Switch over loopback UDP), each with a static address from its own
// NoCloud seed, and checks from the test's own switch port that each VM
// answers ARP with its MAC and ICMP echo with a reply.
func TestMultiVM(t *testing.T) {
	sw, err := qemu.NewSwitch()
	if err != nil {
		t.Fatal(err)
	}
	defer sw.Close()

	type node struct {
		name string
		ip   netip.Addr
		mac  net.HardwareAddr
		vm   *qemu.VM
	}
	nodes := []*node{
		{name: "vm1", ip: netip.MustParseAddr("192.168.77.11")},
		{name: "vm2", ip: netip.MustParseAddr("192.168.77.12")},
	}
	for _, n := range nodes {
		n.mac = qemu.MACFor(n.name)
		netSpec, err := sw.NetFor(n.name)
		if err != nil {
			t.Fatal(err)
		}
		m := &qemu.Machine{Arch: mustArch(t, "amd64"), MemoryMiB: 512, CPUs: 1, Net: netSpec, MAC: n.mac.String(),
			Drives: []qemu.Drive{
				{Path: image("amd64", "iso"), Media: "cdrom", Snapshot: true},
				// The seed rides on a virtio disk, as a NoCloud image often
				// does (the seed tests cover the CD-ROM case).
				{Path: makeSeed(t, n.name, n.mac, n.ip), Format: "raw", Snapshot: true},
			}}
		// Both boot at once: TCG boots are slow, the waits overlap.
		n.vm, err = m.Start(context.Background())
		if err != nil {
			t.Fatalf("%s: start: %v", n.name, err)
		}
		t.Cleanup(n.vm.Kill)
	}
	for _, n := range nodes {
		line, err := n.vm.WaitFor(context.Background(), readyRe, bootTimeout("amd64"))
		if err != nil {
			saveNamedLog(t, n.name, n.vm.Log())
			t.Fatalf("%s: %v", n.name, err)
		}
		want := regexp.MustCompile(`hostname=` + n.name + ` addresses=` + regexp.QuoteMeta(n.ip.String()+"/24") + `(,|\s|$)`)
		if !want.MatchString(line) {
			saveNamedLog(t, n.name, n.vm.Log())
			t.Fatalf("%s: ready line %q lacks %q", n.name, strings.TrimSpace(line), want)
		}
		t.Logf("%s: %q after %.1fs", n.name, strings.TrimSpace(line), n.vm.Elapsed().Seconds())
	}

	st := &station{t: t, sw: sw, ip: hostIP, mac: hostMAC}
	for _, n := range nodes {
		mac, from, ok := st.arp(n.ip, 30*time.Second)
		if !ok {
			t.Fatalf("no ARP reply for %s in 30s", n.ip)
		}
		if !bytes.Equal(mac, n.mac) || from != n.name {
			t.Fatalf("ARP for %s: answered by %s on port %s, want %s on port %s", n.ip, mac, from, n.mac, n.name)
		}
		t.Logf("ARP: %s is at %s (port %s)", n.ip, mac, from)
		rtt := st.ping(n.ip, n.mac, n.name)
		t.Logf("ICMP: echo reply from %s in %s", n.ip, rtt.Round(time.Millisecond))
	}
	if d := sw.Dropped(); d > 0 {
		t.Logf("switch dropped %d frames for the host port", d)
	}
}

// makeSeed writes a NoCloud seed for name with the real CLI: hostname from
// cloud-config, a static address on the NIC matched by MAC.
func makeSeed(t *testing.T, name string, mac net.HardwareAddr, ip netip.Addr) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"user-data": "#cloud-config\nhostname: " + name + "\n",
		"meta-data": "instance-id: " + name + "\nlocal-hostname: " + name + "\n",
		"network-config": fmt.Sprintf("version: 2\nethernets:\n  lan:\n    match: {macaddress: %q}\n    addresses: [%s/24]\n",
			mac.String(), ip),
	}
	for f, body := range files {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	iso := filepath.Join(t.TempDir(), name+"-seed.iso")
	if out, err := exec.Command(kilnBin, "seed", "--kind", "nocloud", "-o", iso, dir).CombinedOutput(); err != nil {
		t.Fatalf("kiln seed for %s: %v\n%s", name, err, out)
	}
	return iso
}

func saveNamedLog(t *testing.T, name, log string) {
	t.Helper()
	if err := os.MkdirAll(artDir, 0o755); err != nil {
		return
	}
	p := filepath.Join(artDir, strings.ReplaceAll(t.Name(), "/", "_")+"."+name+".console.log")
	if os.WriteFile(p, []byte(log), 0o644) == nil {
		t.Logf("%s console log kept at %s", name, p)
	}
}
