package gpt

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestReadTableAgainstSgdisk reads both copies of a table sgdisk wrote, with
// an empty slot between partitions, which must keep its number.
func TestReadTableAgainstSgdisk(t *testing.T) {
	const size = 16 << 20
	p := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(p, size); err != nil {
		t.Fatal(err)
	}
	run(t, "sgdisk", "-n", "1:2048:+1M", "-c", "1:ESP", "-t", "1:ef00", "-n", "3:0:+2M", "-c", "3:STATE-Ä", p)
	raw, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	last := uint64(size/SectorSize) - 1
	for _, lba := range []uint64{1, last} {
		tab, err := ReadTable(bytes.NewReader(raw), lba)
		if err != nil {
			t.Fatalf("ReadTable(LBA %d): %v", lba, err)
		}
		other := map[uint64]uint64{1: last, last: 1}[lba]
		if tab.HeaderLBA != lba || tab.AlternateLBA != other || tab.FirstUsableLBA != 34 || tab.LastUsableLBA != last-33 ||
			tab.EntryCount != 128 || tab.EntrySize != 128 || len(tab.Entries) != 128*128 {
			t.Errorf("LBA %d: header fields %+v", lba, *tab)
		}
		if HeaderCRC(tab.Header) != le.Uint32(tab.Header[16:]) {
			t.Errorf("LBA %d: HeaderCRC differs from the stored CRC", lba)
		}
		if _, used := tab.Entry(1); used {
			t.Errorf("LBA %d: slot 2 is empty but reads as used", lba)
		}
		p1, ok1 := tab.Entry(0)
		p3, ok3 := tab.Entry(2)
		if !ok1 || p1.Name != "ESP" || p1.Type != TypeESP || p1.FirstLBA != 2048 || p1.LastLBA != 4095 {
			t.Errorf("LBA %d: entry 1 = %+v, %v", lba, p1, ok1)
		}
		if !ok3 || p3.Name != "STATE-Ä" || p3.Type != TypeLinuxFS || p3.FirstLBA != 4096 || p3.LastLBA != 8191 {
			t.Errorf("LBA %d: entry 3 = %+v, %v", lba, p3, ok3)
		}
	}
}

func TestReadTableErrors(t *testing.T) {
	blank := bytes.NewReader(make([]byte, 64<<10))
	if _, err := ReadTable(blank, 1); !errors.Is(err, ErrNoGPT) {
		t.Errorf("blank disk: err = %v, want ErrNoGPT", err)
	}
	d := testDisk(t)
	img, err := os.ReadFile(writeDisk(t, d))
	if err != nil {
		t.Fatal(err)
	}
	img[2*SectorSize] ^= 1 // first entry: the array CRC no longer matches
	if _, err := ReadTable(bytes.NewReader(img), 1); err == nil || !bytes.Contains([]byte(err.Error()), []byte("entries at LBA 2: CRC32")) {
		t.Errorf("damaged entries: err = %v", err)
	}
	if _, err := ReadTable(bytes.NewReader(img), 2); !errors.Is(err, ErrNoGPT) {
		t.Errorf("LBA 2 holds entries, not a header: err = %v", err)
	}
}
