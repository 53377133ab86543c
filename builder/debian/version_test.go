package debian

import (
	"os/exec"
	"testing"
)

// versionCases are checked against CompareVersions and, as the oracle,
// against `dpkg --compare-versions`.
var versionCases = []struct {
	a, b string
	want int
}{
	{"1.0", "1.0", 0},
	{"1.0", "1.0-0", 0},
	{"1.0-1", "1.0-2", -1},
	{"1.0", "1.1", -1},
	{"1.10", "1.9", 1},
	{"1.01", "1.1", 0},
	{"0:1.0", "1.0", 0},
	{"1:0.1", "2.0", 1},
	{"10:1", "9:2", 1},
	{"1.0~rc1", "1.0", -1},
	{"1.0~rc1", "1.0~rc2", -1},
	{"1.0~~", "1.0~", -1},
	{"1.0~", "1.0", -1},
	{"1.0", "1.0+b1", -1},
	{"1.0a", "1.0", 1},
	{"1.0a", "1.0+", -1}, // letters sort before non-letters
	{"1.0.", "1.0+", 1},  // then by ASCII
	{"2.36-9+deb12u4", "2.36-9+deb12u10", -1},
	{"2.36-9+deb12u4", "2.36-9", 1},
	{"6.1.0-18", "6.1.0-9", 1},
	{"6.04~git20190206.bf6db5b4+dfsg1-3", "6.04~git20190206.bf6db5b4+dfsg1-3.1", -1},
	{"1.2.3-1~bpo12+1", "1.2.3-1", -1},
	{"a", "b", -1},
	{"1.0-1-1", "1.0-1-2", -1}, // the revision is after the last hyphen
	{"0.0.0.0.1", "0.0.0.0.0.1", 1},
	{"1.99999999999999999999", "1.99999999999999999998", 1}, // longer than int64
	{"7.88.1-10+deb12u5", "7.88.1-10+deb12u12", -1},
}

func TestCompareVersions(t *testing.T) {
	for _, c := range versionCases {
		if got := CompareVersions(c.a, c.b); got != c.want {
			t.Errorf("CompareVersions(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
		if got := CompareVersions(c.b, c.a); got != -c.want {
			t.Errorf("CompareVersions(%q, %q) = %d, want %d", c.b, c.a, got, -c.want)
		}
	}
}

func TestCompareVersionsMatchesDpkg(t *testing.T) {
	needTool(t, "dpkg")
	for _, c := range versionCases {
		op := map[int]string{-1: "lt", 0: "eq", 1: "gt"}[c.want]
		if err := exec.Command("dpkg", "--compare-versions", c.a, op, c.b).Run(); err != nil {
			t.Errorf("dpkg --compare-versions %q %s %q is false: the table entry is wrong", c.a, op, c.b)
		}
	}
}
