package nodeconfig

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kilnproject/kiln/initd/datasource"
	"github.com/kilnproject/kiln/initd/netconf"
	"github.com/kilnproject/kiln/initd/network"
)

type fakeNet struct {
	addrs, ntp []string
	released   bool
}

func (f *fakeNet) Release()                   { f.released = true }
func (f *fakeNet) Stop()                      {}
func (f *fakeNet) Info() ([]string, []string) { return f.addrs, f.ntp }

// world replaces the machine-touching seams and records what Apply asked for.
type world struct {
	configs  []*netconf.Config // one per netUp call; nil = DHCP
	nets     []*fakeNet
	ntpAsked []string
	hostname string
}

func setup(t *testing.T, srcs ...datasource.Source) *world {
	w := &world{}
	oldS, oldN, oldH, oldC := sources, netUp, setHostname, syncClock
	t.Cleanup(func() { sources, netUp, setHostname, syncClock = oldS, oldN, oldH, oldC })
	sources = func(Options) []datasource.Source { return srcs }
	netUp = func(ctx context.Context, cfg *netconf.Config, o network.Options) (netState, error) {
		w.configs = append(w.configs, cfg)
		f := &fakeNet{addrs: []string{"10.0.2.15/24"}, ntp: []string{"10.0.2.2"}}
		if cfg != nil {
			f.addrs, f.ntp = []string{cfg.Links[0].Addresses[0].String()}, nil
		}
		w.nets = append(w.nets, f)
		return f, nil
	}
	setHostname = func(n string) error { w.hostname = n; return nil }
	syncClock = func(ctx context.Context, s []string) (time.Duration, string, error) {
		w.ntpAsked = s
		return 0, s[0], nil
	}
	return w
}

func nocloud(dir string) datasource.Source {
	return datasource.NoCloud{Volumes: datasource.DirVolumes{{Device: "/dev/sr1", FSType: "iso9660", Label: "cidata"}: dir}}
}

func TestApplyNoCloud(t *testing.T) {
	w := setup(t, datasource.Cmdline{Args: map[string]string{}}, nocloud("testdata/nocloud"))
	root := t.TempDir()
	var logged strings.Builder
	logf := func(f string, a ...any) { t.Logf(f, a...); fmt.Fprintf(&logged, f+"\n", a...) }
	res, err := Apply(context.Background(), Options{Root: root, Log: logf, Cmdline: map[string]string{}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logged.String(), "write_files[0]: wrote /etc/kiln/motd (6 bytes, mode 0600") {
		t.Errorf("no log line for the written file:\n%s", logged.String())
	}
	if res.Source != "nocloud:/dev/sr1" || res.Hostname != "node1" || strings.Join(res.Addresses, ",") != "10.0.0.5/24" ||
		strings.Join(res.Ignored, ",") != "packages" || !strings.Contains(string(res.MachineConfig), "role: init") {
		t.Errorf("result %+v", res)
	}
	if w.hostname != "" {
		t.Error("kernel hostname set although Root is not /")
	}
	if len(w.configs) != 1 || w.configs[0] == nil || w.configs[0].Links[0].Match.MAC != "52:54:00:12:34:56" {
		t.Errorf("network configs %+v", w.configs)
	}
	if strings.Join(w.ntpAsked, ",") != "10.0.0.123" {
		t.Errorf("ntp %v", w.ntpAsked)
	}
	for f, want := range map[string]string{"etc/kiln/motd": "hello\n", "etc/hostname": "node1\n"} {
		if b, err := os.ReadFile(filepath.Join(root, f)); err != nil || string(b) != want {
			t.Errorf("%s = %q, %v", f, b, err)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(root, "etc/hosts")); !strings.Contains(string(b), "127.0.1.1\tnode1.example.com node1") {
		t.Errorf("hosts %q", b)
	}
}

func TestApplyBadSeedKeepsNodeReachable(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "meta-data"), []byte("instance-id: x\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "user-data"), []byte("#cloud-config\nwrite_files:\n- {path: /a, content: a}\n- {path: /b, content: b}\n- {path: /c, content: c, permissions: '0x9'}\n"), 0o644)
	w := setup(t, nocloud(dir))
	res, err := Apply(context.Background(), Options{Root: t.TempDir(), Log: t.Logf})
	want := `nocloud:/dev/sr1 user-data: write_files[2].permissions: "0x9" is not an octal mode`
	if err == nil || err.Error() != want {
		t.Errorf("error %v, want %s", err, want)
	}
	if res == nil || len(w.configs) != 1 || w.configs[0] != nil || strings.Join(res.Addresses, ",") != "10.0.2.15/24" {
		t.Errorf("network not brought up by DHCP: %+v %+v", res, w.configs)
	}
	// NTP still comes from DHCP.
	if strings.Join(w.ntpAsked, ",") != "10.0.2.2" {
		t.Errorf("ntp %v", w.ntpAsked)
	}
}

func TestApplyBadNetworkConfigFallsBackToDHCP(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "meta-data"), []byte("local-hostname: meta-host.example.com\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "network-config"), []byte("version: 2\nethernets:\n  eth0:\n    addresses: [10.0.0.999/24]\n"), 0o644)
	w := setup(t, nocloud(dir))
	res, err := Apply(context.Background(), Options{Root: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), `nocloud:/dev/sr1 network-config v2: ethernets.eth0.addresses[0]: "10.0.0.999/24"`) {
		t.Errorf("error %v", err)
	}
	if res.Hostname != "meta-host" || len(w.configs) != 1 || w.configs[0] != nil {
		t.Errorf("%+v %+v", res, w.configs)
	}
}

// A metadata service needs DHCP first; that DHCP stays when the seed has no
// network-config.
type metaSource struct{ called *bool }

func (metaSource) Name() string       { return "ec2" }
func (metaSource) NeedsNetwork() bool { return true }
func (m metaSource) Fetch(context.Context) (*datasource.Seed, error) {
	*m.called = true
	return &datasource.Seed{Source: "ec2:http://169.254.169.254", UserData: []byte("#cloud-config\nhostname: ec2node\n")}, nil
}

func TestApplyMetadataServiceAfterDHCP(t *testing.T) {
	called := false
	w := setup(t, datasource.NoCloud{Volumes: datasource.DirVolumes{}}, metaSource{&called})
	res, err := Apply(context.Background(), Options{Root: t.TempDir()})
	if err != nil || !called || res.Source != "ec2:http://169.254.169.254" || res.Hostname != "ec2node" {
		t.Fatalf("%v %+v", err, res)
	}
	if len(w.configs) != 1 || w.nets[0].released {
		t.Errorf("temporary DHCP should be kept: %+v", w.configs)
	}
}

func TestApplyNoSeed(t *testing.T) {
	w := setup(t, datasource.Cmdline{Args: map[string]string{}})
	res, err := Apply(context.Background(), Options{Root: t.TempDir()})
	if err != nil || res.Source != "none" || len(w.configs) != 1 || w.configs[0] != nil {
		t.Errorf("%v %+v", err, res)
	}
}

func TestApplyNetworkFailureIsNotFatal(t *testing.T) {
	setup(t)
	netUp = func(context.Context, *netconf.Config, network.Options) (netState, error) {
		return nil, errors.New("no NIC has carrier")
	}
	res, err := Apply(context.Background(), Options{Root: t.TempDir()})
	if err != nil || res.Source != "none" || len(res.Addresses) != 0 {
		t.Errorf("%v %+v", err, res)
	}
}
