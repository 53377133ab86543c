package kmod

import (
	"reflect"
	"testing"

	"github.com/kilnproject/kiln/initd/cmdline"
)

func TestParseOptions(t *testing.T) {
	o := ParseOptions(cmdline.Split(`console=ttyS0 kiln.label=KILN libata.force=nodbdelay ` +
		`libata.force=1.5Gbps virtio-blk.queue_depth=64 ahci.mobile_lpm_policy=0 ` +
		`foo.name="a b" bar.flag .x=1 y.=2 noequals modprobe.blacklist=e1000e,nouveau`))
	for mod, want := range map[string]string{
		"libata":     "force=nodbdelay force=1.5Gbps", // repeats kept, in order
		"virtio_blk": "queue_depth=64",                // "-" in the module name is "_"
		"ahci":       "mobile_lpm_policy=0",
		"foo":        `name="a b"`, // quoted again for the kernel's parser
		"bar":        "flag",
		"console":    "",
		"y":          "",
	} {
		if got := o.For(mod); got != want {
			t.Errorf("For(%q) = %q, want %q", mod, got, want)
		}
	}
	if !o.Blacklisted("e1000e") || !o.Blacklisted("nouveau") || o.Blacklisted("libata") {
		t.Errorf("blacklist %v", o.blacklist)
	}
}

// Command line parameters reach the module they name, after AsyncProbe,
// and a blacklisted module is not loaded for a device.
func TestLoadWithOptions(t *testing.T) {
	l := openTestdata(t)
	l.Options = ParseOptions([]string{"virtio_ring.x=1", "virtio_blk.queue_depth=8"})
	params := map[string]string{}
	l.Insert = func(p, args string) error { params[Name(p)] = args; return nil }
	if _, err := l.LoadAliasAsync("virtio:d00000002v00001AF4"); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"virtio": AsyncProbe, "virtio_ring": AsyncProbe + " x=1", "virtio_blk": AsyncProbe + " queue_depth=8"}
	if !reflect.DeepEqual(params, want) {
		t.Errorf("params %q, want %q", params, want)
	}

	l = openTestdata(t)
	l.Options = ParseOptions([]string{"modprobe.blacklist=virtio_scsi"})
	inserted := map[string]bool{}
	l.Insert = func(p, _ string) error { inserted[Name(p)] = true; return nil }
	n, err := l.LoadAlias("virtio:d00000008v00001AF4")
	if err != nil || n != 0 || inserted["virtio_scsi"] {
		t.Errorf("blacklisted virtio_scsi: n=%d err=%v inserted %v", n, err, inserted)
	}
	// An explicit load is the user's (or the profile's) wish: as modprobe
	// does, the blacklist only stops loads for devices.
	if err := l.Load("virtio_scsi"); err != nil || !inserted["virtio_scsi"] {
		t.Errorf("explicit load of a blacklisted module: err=%v inserted %v", err, inserted)
	}
}

func TestOptionsDefault(t *testing.T) {
	o := ParseOptions([]string{"libata.force=1.5Gbps", "ahci.marvell_enable=0"})
	o.Default("libata", "force", "nodbdelay") // the command line's force stays
	o.Default("ahci", "mobile_lpm_policy", "1")
	o.Default("virtio-blk", "queue_depth", "64")
	for mod, want := range map[string]string{
		"libata":     "force=1.5Gbps",
		"ahci":       "marvell_enable=0 mobile_lpm_policy=1",
		"virtio_blk": "queue_depth=64",
	} {
		if got := o.For(mod); got != want {
			t.Errorf("For(%q) = %q, want %q", mod, got, want)
		}
	}
	var zero Options
	zero.Default("libata", "force", "nodbdelay")
	if zero.For("libata") != "force=nodbdelay" {
		t.Errorf("Default on zero Options: %q", zero.For("libata"))
	}
}
