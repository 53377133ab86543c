package kmod

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestFnmatch(t *testing.T) {
	for _, c := range []struct {
		p, s string
		want bool
	}{
		{"pci:v00001AF4d*sv*sd*bc*sc*i*", "pci:v00001AF4d00001042sv00001AF4sd00001100bc01sc00i00", true},
		{"pci:v00001AF4d*sv*sd*bc*sc*i*", "pci:v00008086d00001042sv00001AF4sd00001100bc01sc00i00", false},
		{"acpi*:PNP0C0C:*", "acpi:PNP0C0C:", true},
		{"acpi*:LNXPWRBN:*", "acpi:LNXPWRBN:", true},
		{"a?c", "abc", true},
		{"a?c", "ac", false},
		{"usb:v*p*d*dc*dsc*dp*ic08isc0[1-6]ip50in*", "usb:v46F4p0001d0000dc00dsc00dp00ic08isc06ip50in00", true},
		{"x[!0-9]", "xa", true},
		{"x[!0-9]", "x5", false},
		{"of:N*T*Cvirtio,mmio", "of:NvirtioTCvirtio,mmio", true},
		{"a/b*", "a/bc", true},
		{`a\*`, "a*", true},
		{"*", "", true},
		{"a*b*c", "aXbYbZc", true},
		{"a*b*c", "aXbYbZ", false},
	} {
		if got := fnmatch(c.p, c.s); got != c.want {
			t.Errorf("fnmatch(%q, %q) = %v, want %v", c.p, c.s, got, c.want)
		}
	}
}

func openTestdata(t *testing.T) *Loader {
	t.Helper()
	l, err := Open("testdata")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// The modaliases below are what QEMU's devices report in sysfs.
func TestAliasMatchRealExcerpt(t *testing.T) {
	l := openTestdata(t)
	for alias, want := range map[string][]string{
		"pci:v00001AF4d00001001sv00001AF4sd00000002bc01sc00i00": {"virtio_pci"},
		"virtio:d00000002v00001AF4":                             {"virtio_blk"},
		"virtio:d00000008v00001AF4":                             {"virtio_scsi"},
		"scsi:t-0x05":                                           {"sr_mod"},
		"acpi:LNXPWRBN:":                                        {"button"},
		"pci:v00008086d00007010sv00001AF4sd00001100bc01sc01i80": {"ata_generic"}, // PIIX IDE (ata_piix claims it by class only for other IDs)
		"pci:v00001B36d00000010sv00001AF4sd00001100bc01sc08i02": {"nvme"},
		"usb:v0000p0000d0000dc00dsc00dp00ic08isc06ip50in00":     {"usb_storage"},
	} {
		if got := l.Aliases.Match(alias); !reflect.DeepEqual(got, want) {
			t.Errorf("Match(%s) = %v, want %v", alias, got, want)
		}
	}
}

func TestDepOrder(t *testing.T) {
	l := openTestdata(t)
	got, err := l.Deps.Order("virtio_pci")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"virtio_ring", "virtio", "virtio_pci_modern_dev", "virtio_pci_legacy_dev", "virtio_pci"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Order(virtio_pci) = %v, want %v", got, want)
	}
	got, _ = l.Deps.Order("usb-storage")
	if got[len(got)-1] != "usb_storage" || indexOf(got, "usb_common") > indexOf(got, "usbcore") {
		t.Errorf("Order(usb-storage) = %v", got)
	}
	if _, err := l.Deps.Order("sd_mod"); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "(needed by sd_mod)") {
		t.Errorf("missing dependency error = %v", err)
	}
	d := Deps{"a": {Path: "a.ko", Deps: []string{"b"}}, "b": {Path: "b.ko", Deps: []string{"a"}}}
	if _, err := d.Order("a"); err == nil || !strings.Contains(err.Error(), "cycle") {
		t.Errorf("cycle error = %v", err)
	}
}

func indexOf(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

func TestLoaderAndColdplug(t *testing.T) {
	l := openTestdata(t)
	var inserted []string
	l.insert = func(p string) error { inserted = append(inserted, Name(p)); return nil }
	if err := l.Load("virtio_blk"); err != nil {
		t.Fatal(err)
	}
	if err := l.Load("squashfs"); err != nil {
		t.Fatal(err)
	}
	if err := l.Load("nosuch"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Load(nosuch) = %v", err)
	}
	// A fake sysfs: two devices wanting virtio_pci and virtio_scsi, one unknown.
	sys := t.TempDir()
	for dir, alias := range map[string]string{
		"pci0000:00/0000:00:03.0":         "pci:v00001AF4d00001004sv00001AF4sd00000008bc01sc00i00",
		"pci0000:00/0000:00:03.0/virtio1": "virtio:d00000008v00001AF4",
		"pci0000:00/0000:00:01.0":         "pci:v00008086d00001237sv00001AF4sd00001100bc06sc00i00",
		"pci0000:00/0000:00:04.0/virtio2": "virtio:d00000008v00001AF4", // same alias twice
	} {
		os.MkdirAll(filepath.Join(sys, dir), 0o755)
		os.WriteFile(filepath.Join(sys, dir, "modalias"), []byte(alias+"\n"), 0o644)
	}
	done := map[string]bool{}
	nd, nl, err := l.Coldplug(sys, done)
	if err != nil || nd != 3 || nl != 2 {
		t.Fatalf("Coldplug = %d devices, %d modules, %v", nd, nl, err)
	}
	if nd, nl, _ := l.Coldplug(sys, done); nd != 0 || nl != 0 {
		t.Errorf("second Coldplug = %d, %d; want nothing new", nd, nl)
	}
	want := []string{"virtio_ring", "virtio", "virtio_blk", "squashfs",
		"virtio_pci_modern_dev", "virtio_pci_legacy_dev", "virtio_pci", "scsi_common", "scsi_mod", "virtio_scsi"}
	if !reflect.DeepEqual(inserted, want) {
		t.Errorf("inserted %v\nwant %v", inserted, want)
	}
}
