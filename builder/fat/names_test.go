package fat

import "testing"

func TestExactShort(t *testing.T) {
	cases := []struct {
		name   string
		short  string
		ntCase byte
		ok     bool
	}{
		{"README.TXT", "README  TXT", 0, true},
		{"bootx64.efi", "BOOTX64 EFI", caseLowerBase | caseLowerExt, true},
		{"EFI", "EFI        ", 0, true},
		{"loader.CFG", "LOADER  CFG", caseLowerBase, true},
		{"KERNEL.img", "KERNEL  IMG", caseLowerExt, true},
		{"Makefile", "", 0, false},    // mixed case
		{"toolongname", "", 0, false}, // base > 8
		{"a.conf", "", 0, false},      // ext > 3
		{"a.b.c", "", 0, false},       // two dots
		{"a b", "", 0, false},         // space
		{"a+b", "", 0, false},         // '+' is long-name only
		{".hidden", "", 0, false},     // empty base
		{"ünï", "", 0, false},         // non-ASCII
	}
	for _, c := range cases {
		s, nt, ok := exactShort(c.name)
		if ok != c.ok || (ok && (string(s[:]) != c.short || nt != c.ntCase)) {
			t.Errorf("exactShort(%q) = %q, %#x, %v; want %q, %#x, %v", c.name, s, nt, ok, c.short, c.ntCase, c.ok)
		}
	}
}

func TestUniqueShort(t *testing.T) {
	used := map[[11]byte]bool{}
	want := []struct{ name, short string }{
		{"Makefile", "MAKEFILE   "},            // fits: no tail
		{"MakeFile", "MAKEFI~1   "},            // taken: tail
		{"very long name.conf", "VERYLO~1CON"}, // spaces dropped, cut, tail
		{"archive.tar.gz", "ARCHIV~1GZ "},      // inner dot dropped
		{".bashrc", "BASHRC~1   "},             // leading dot dropped
		{"a+b=c.txt", "A_B_C~1 TXT"},           // illegal characters replaced
		{"ünï.txt", "_N_~1   TXT"},             // non-ASCII replaced
	}
	for _, w := range want {
		s, err := uniqueShort(w.name, used)
		if err != nil || string(s[:]) != w.short {
			t.Errorf("uniqueShort(%q) = %q, %v; want %q", w.name, s, err, w.short)
		}
		used[s] = true
	}
	for i := 1; i <= 12; i++ {
		s, _ := uniqueShort("longfilename.txt", used)
		used[s] = true
		if i == 12 && string(s[:]) != "LONGF~12TXT" {
			t.Errorf("12th alias = %q, want LONGF~12TXT", s)
		}
	}
}

func TestLFNChecksum(t *testing.T) {
	// Rotate-right-and-add over the 11 name bytes, worked by hand for "A          ".
	var s [11]byte
	copy(s[:], "A          ")
	var want byte
	for _, c := range s {
		want = (want&1)<<7 + want>>1 + c
	}
	if got := lfnChecksum(s); got != want {
		t.Errorf("lfnChecksum = %#x, want %#x", got, want)
	}
}

func TestDosTime(t *testing.T) {
	// 2023-11-14 22:13:21 UTC
	ts := dosTime(1700000001)
	if ts.date != (2023-1980)<<9|11<<5|14 || ts.time != 22<<11|13<<5|10 || ts.tenth != 100 {
		t.Errorf("dosTime = %+v", ts)
	}
	if ts := dosTime(0); ts.date != 1<<5|1 || ts.time != 0 {
		t.Errorf("dosTime(0) = %+v, want 1980-01-01 00:00", ts)
	}
}
