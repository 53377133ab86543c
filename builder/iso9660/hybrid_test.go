package iso9660

import (
	"encoding/binary"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
)

// wantLines fails for every regexp that matches no line of out.
func wantLines(t *testing.T, tool, out string, res ...string) {
	t.Helper()
	for _, r := range res {
		if !regexp.MustCompile(`(?m)` + r).MatchString(out) {
			t.Errorf("%s output has no line matching %q:\n%s", tool, r, out)
		}
	}
}

func report(t *testing.T, iso string) string {
	need(t, "xorriso")
	return run(t, "xorriso", "-indev", iso, "-report_el_torito", "plain", "-report_system_area", "plain")
}

func fileLBA(t *testing.T, rep, p string) int {
	m := regexp.MustCompile(`El Torito img path :\s+(\d)\s+` + regexp.QuoteMeta(p)).FindStringSubmatch(rep)
	if m == nil {
		t.Fatalf("no El Torito image %s in\n%s", p, rep)
	}
	l := regexp.MustCompile(`El Torito boot img :\s+` + m[1] + `\s+\S+\s+y\s+none\s+0x0000\s+0x00\s+\d+\s+(\d+)`).FindStringSubmatch(rep)
	var lba int
	fmt.Sscan(l[1], &lba)
	return lba
}

func TestElToritoBIOSAndUEFI(t *testing.T) {
	iso := writeISO(t, bootTree(t, efiImage(t)), bootOptions(false))
	rep := report(t, iso)
	wantLines(t, "xorriso -report_el_torito", rep,
		`^El Torito cat path : /isolinux/boot.cat$`,
		`^El Torito boot img :\s+1\s+BIOS\s+y\s+none\s+0x0000\s+0x00\s+4\s+\d+$`,
		`^El Torito boot img :\s+2\s+UEFI\s+y\s+none\s+0x0000\s+0x00\s+2048\s+\d+$`,
		`^El Torito img path :\s+1\s+/isolinux/isolinux.bin$`,
		`^El Torito img opts :\s+1\s+boot-info-table isohybrid-suitable$`,
		`^El Torito img path :\s+2\s+/boot/efi.img$`,
		`No System Area was loaded`)
}

func TestHybridBIOSAndEFI(t *testing.T) {
	need(t, "fdisk", "sgdisk", "mdir")
	iso := writeISO(t, bootTree(t, efiImage(t)), bootOptions(true))
	rep := report(t, iso)
	esp := fileLBA(t, rep, "/boot/efi.img") * 4
	wantLines(t, "xorriso -report_system_area", rep,
		`^System area summary: MBR isohybrid .*GPT$`,
		`^MBR partition      :\s+1\s+0x00\s+0xee\s+1\s+`+fmt.Sprint(esp-1)+`$`,
		`^MBR partition      :\s+2\s+0x80\s+0xef\s+`+fmt.Sprint(esp)+`\s+2048$`,
		`^MBR partition path :\s+2\s+/boot/efi.img$`,
		`^GPT type GUID      :\s+1\s+28732ac11ff8d211ba4b00a0c93ec93b$`,
		`^GPT start and size :\s+1\s+`+fmt.Sprint(esp)+`\s+2048$`,
		`^GPT partition path :\s+1\s+/boot/efi.img$`)
	checkImageSize(t, iso)
	checkLoaderLBA(t, iso, fileLBA(t, rep, "/isolinux/isolinux.bin"))

	wantLines(t, "fdisk -l", run(t, "fdisk", "-l", iso),
		`^Disklabel type: gpt$`,
		fmt.Sprintf(`iso1\s+%d\s+%d\s+2048\s+1M EFI System$`, esp, esp+2047))
	wantLines(t, "sgdisk -v", run(t, "sgdisk", "-v", iso), `^No problems found`)
	// the partition really is a FAT filesystem with the removable-media loader
	wantLines(t, "mdir", run(t, "mdir", "-i", fmt.Sprintf("%s@@%d", iso, esp*512), "::EFI/BOOT"), `BOOTX64\s+EFI`)
}

func TestHybridEFIOnly(t *testing.T) {
	need(t, "fdisk", "sgdisk")
	o := bootOptions(true)
	o.BIOS = nil
	iso := writeISO(t, bootTree(t, efiImage(t)), o)
	rep := report(t, iso)
	esp := fileLBA(t, rep, "/boot/efi.img") * 4
	wantLines(t, "xorriso -report_el_torito", rep,
		`^El Torito boot img :\s+1\s+UEFI\s+y\s+none\s+0x0000\s+0x00\s+2048\s+\d+$`,
		`^MBR partition      :\s+2\s+0x80\s+0xef\s+`+fmt.Sprint(esp)+`\s+2048$`,
		`^GPT start and size :\s+1\s+`+fmt.Sprint(esp)+`\s+2048$`)
	if strings.Contains(rep, "boot img :   2") || strings.Contains(rep, "BIOS") {
		t.Errorf("EFI-only image has a BIOS entry:\n%s", rep)
	}
	img, err := os.ReadFile(iso)
	must(t, err)
	for _, b := range img[:440] {
		if b != 0 {
			t.Fatal("EFI-only image has MBR boot code")
		}
	}
	checkImageSize(t, iso)
	wantLines(t, "sgdisk -v", run(t, "sgdisk", "-v", iso), `^No problems found`)
}

func TestHybridBIOSOnly(t *testing.T) {
	need(t, "fdisk")
	o := bootOptions(true)
	o.EFI = nil
	iso := writeISO(t, bootTree(t, ""), o)
	rep := report(t, iso)
	st, err := os.Stat(iso)
	must(t, err)
	wantLines(t, "xorriso -report_system_area", rep,
		`^System area summary: MBR isohybrid cyl-align-on$`,
		`^MBR partition      :\s+1\s+0x80\s+0x17\s+0\s+`+fmt.Sprint(st.Size()/512)+`$`)
	wantLines(t, "fdisk -l", run(t, "fdisk", "-l", iso), `^Disklabel type: dos$`, `iso1\s+\*\s+0\s+\d+\s+\d+\s+\S+\s+17 Hidden HPFS/NTFS$`)
	checkImageSize(t, iso)
	checkLoaderLBA(t, iso, fileLBA(t, rep, "/isolinux/isolinux.bin"))
}

// checkImageSize: whole MiB (the 64x32 cylinder) and equal to the PVD's volume space.
func checkImageSize(t *testing.T, iso string) {
	t.Helper()
	img, err := os.ReadFile(iso)
	must(t, err)
	if len(img)%(1<<20) != 0 {
		t.Errorf("hybrid image is %d bytes, not a multiple of 1 MiB", len(img))
	}
	if vs := binary.LittleEndian.Uint32(img[16*2048+80:]); int(vs)*2048 != len(img) {
		t.Errorf("volume space size %d blocks, image %d bytes", vs, len(img))
	}
}

// checkLoaderLBA: MBR code from isohdpfx.bin, and isolinux.bin's LBA in
// 512-byte sectors at byte 432, where isohybrid puts it.
func checkLoaderLBA(t *testing.T, iso string, lba int) {
	t.Helper()
	img, err := os.ReadFile(iso)
	must(t, err)
	mbr, err := os.ReadFile(isohdpfxBin)
	must(t, err)
	if string(img[:432]) != string(mbr[:432]) {
		t.Error("MBR code is not isohdpfx.bin")
	}
	if got := binary.LittleEndian.Uint64(img[432:]); got != uint64(lba)*4 {
		t.Errorf("MBR byte 432 holds %d, want isolinux.bin at %d*4", got, lba)
	}
	if img[510] != 0x55 || img[511] != 0xAA {
		t.Error("no MBR signature")
	}
}
