package debian

import "strings"

// CompareVersions orders two Debian version strings the way dpkg does
// (Debian Policy 5.6.12): epoch numerically, then upstream version, then
// revision, each compared by alternating non-digit runs (letters before
// other characters, "~" before everything, even the end) and digit runs
// (numerically). It returns -1, 0 or 1.
func CompareVersions(a, b string) int {
	ea, ua, ra := splitVersion(a)
	eb, ub, rb := splitVersion(b)
	if c := compareDigits(ea, eb); c != 0 {
		return c
	}
	if c := compareFragment(ua, ub); c != 0 {
		return c
	}
	return compareFragment(ra, rb)
}

// splitVersion splits [epoch:]upstream[-revision].
func splitVersion(v string) (epoch, upstream, revision string) {
	v = strings.TrimSpace(v)
	if i := strings.IndexByte(v, ':'); i >= 0 {
		epoch, v = v[:i], v[i+1:]
	}
	if i := strings.LastIndexByte(v, '-'); i >= 0 {
		v, revision = v[:i], v[i+1:]
	}
	return epoch, v, revision
}

// order is the weight of a character in a non-digit run; 0 is the end of
// the string (and a digit, which ends the run).
func order(c byte) int {
	switch {
	case c == '~':
		return -1
	case '0' <= c && c <= '9':
		return 0
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		return int(c)
	default:
		return int(c) + 256
	}
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func compareFragment(a, b string) int {
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		// Non-digit run.
		for (i < len(a) && !isDigit(a[i])) || (j < len(b) && !isDigit(b[j])) {
			var ca, cb int
			if i < len(a) {
				ca = order(a[i])
			}
			if j < len(b) {
				cb = order(b[j])
			}
			if ca != cb {
				return sign(ca - cb)
			}
			i++
			j++
		}
		// Digit run, compared as a number.
		si := i
		for i < len(a) && isDigit(a[i]) {
			i++
		}
		sj := j
		for j < len(b) && isDigit(b[j]) {
			j++
		}
		if c := compareDigits(a[si:i], b[sj:j]); c != 0 {
			return c
		}
	}
	return 0
}

// compareDigits compares two runs of decimal digits of any length.
func compareDigits(a, b string) int {
	a = strings.TrimLeft(a, "0")
	b = strings.TrimLeft(b, "0")
	if len(a) != len(b) {
		return sign(len(a) - len(b))
	}
	return strings.Compare(a, b)
}

func sign(x int) int {
	switch {
	case x < 0:
		return -1
	case x > 0:
		return 1
	}
	return 0
}
