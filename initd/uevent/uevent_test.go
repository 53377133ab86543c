package uevent

import (
	"os"
	"testing"
	"time"
)

func TestParseKernelMessage(t *testing.T) {
	msg, err := os.ReadFile("testdata/scsi-add.bin")
	if err != nil {
		t.Fatal(err)
	}
	e, err := Parse(msg)
	if err != nil {
		t.Fatal(err)
	}
	if e.Action != "add" || e.Subsystem != "scsi" || e.Modalias != "scsi:t-0x05" ||
		e.DevPath != "/devices/pci0000:00/0000:00:1f.2/ata3/host2/target2:0:0/2:0:0:0" || e.Env["SEQNUM"] != "1234" {
		t.Errorf("Parse = %+v", e)
	}
	e, err = Parse([]byte("add@/devices/virtual/block/loop0\x00ACTION=add\x00DEVPATH=/devices/virtual/block/loop0\x00SUBSYSTEM=block\x00DEVNAME=loop0\x00DEVTYPE=disk\x00"))
	if err != nil || e.DevName != "loop0" || e.Subsystem != "block" || e.Modalias != "" {
		t.Errorf("Parse(block) = %+v, %v", e, err)
	}
	// Header only: action and path come from it.
	if e, err := Parse([]byte("change@/devices/x\x00")); err != nil || e.Action != "change" || e.DevPath != "/devices/x" {
		t.Errorf("Parse(header only) = %+v, %v", e, err)
	}
	if _, err := Parse([]byte("libudev\x00\xfe\xed\xca\xfe")); err == nil {
		t.Error("udev message accepted")
	}
	if _, err := Parse(nil); err == nil {
		t.Error("empty message accepted")
	}
}

// The socket opens against the running kernel and a quiet read times out
// instead of blocking.
func TestOpenAndQuietRead(t *testing.T) {
	s, err := Open()
	if err != nil {
		t.Fatalf("NETLINK_KOBJECT_UEVENT socket (needs a Linux kernel): %v", err)
	}
	defer s.Close()
	start := time.Now()
	if _, err := s.Read(20 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Read(20ms) took %v", d)
	}
}
