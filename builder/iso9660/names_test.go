package iso9660

import (
	"strings"
	"testing"
)

func TestPrimaryName(t *testing.T) {
	for _, c := range []struct {
		name      string
		dir       bool
		base, ext string
	}{
		{"meta_data.json", false, "META_DATA", "JSON"},
		{"user-data", false, "USER_DATA", ""},
		{"archive.tar.gz", false, "ARCHIVE_TAR", "GZ"},
		{".hidden", false, "_HIDDEN", ""},
		{"isolinux", true, "ISOLINUX", ""},
		{"dir.d", true, "DIR_D", ""},
		{strings.Repeat("x", 40) + ".configuration", false, strings.Repeat("X", 22), "CONFIGUR"},
		{strings.Repeat("y", 40), true, strings.Repeat("Y", 31), ""},
		{"ünïcode", false, "__N__CODE", ""},
	} {
		b, e := primaryName(c.name, c.dir)
		if b != c.base || e != c.ext {
			t.Errorf("primaryName(%q, %v) = %q, %q; want %q, %q", c.name, c.dir, b, e, c.base, c.ext)
		}
	}
}

func TestUniqueNameKeepsLimit(t *testing.T) {
	used := map[string]bool{}
	base := strings.Repeat("A", 26)
	var got []string
	for i := 0; i < 12; i++ {
		b := uniqueName(base, "JSON", false, used)
		if len(b)+len("JSON") > maxFileChars {
			t.Fatalf("%q.JSON is over %d characters", b, maxFileChars)
		}
		got = append(got, b)
	}
	if got[0] != base || got[1] != strings.Repeat("A", 24)+"_1" || got[11] != strings.Repeat("A", 23)+"_11" {
		t.Errorf("numbering: %q", got)
	}
}

func TestSymlinkComponents(t *testing.T) {
	es := slEntries("/a/./../" + strings.Repeat("b", 300))
	if len(es) < 2 {
		t.Fatalf("want the long target split over SL entries, got %d", len(es))
	}
	for i, e := range es {
		if len(e) > 255 || int(e[2]) != len(e) {
			t.Errorf("SL entry %d: length byte %d, real %d", i, e[2], len(e))
		}
	}
	for i, e := range es {
		want := byte(1) // CONTINUE
		if i == len(es)-1 {
			want = 0
		}
		if e[4] != want {
			t.Errorf("SL entry %d flags %d: CONTINUE must be set on all but the last", i, e[4])
		}
	}
	if c := es[0][5:]; c[0] != 0x08 || c[1] != 0 || c[2] != 0 || c[3] != 1 || c[4] != 'a' || c[5] != 0x02 || c[7] != 0x04 {
		t.Errorf("components root, a, ., .. encoded as % x", c[:9])
	}
}
