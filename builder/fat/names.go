package fat

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf16"
)

// NT case bits in the short entry's reserved byte: Windows NT and Linux show
// an all-lower-case base and/or extension without needing an LFN entry.
const (
	caseLowerBase = 0x08
	caseLowerExt  = 0x10
)

const maxLongName = 255 // UTF-16 code units

// shortChar reports whether c may appear in an 8.3 name as stored (upper case).
// Bytes >= 0x80 are legal on disk but depend on the OEM code page, so they are
// never produced here.
func shortChar(c byte) bool {
	switch {
	case c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'()-@^_`{}~", c) >= 0
}

// validLongName checks a name against what VFAT accepts in a long name.
func validLongName(name string) error {
	if name == "" || name == "." || name == ".." {
		return fmt.Errorf("name %q is reserved", name)
	}
	for _, r := range name {
		if r < 0x20 || strings.ContainsRune(`"*/:<>?\|`, r) {
			return fmt.Errorf("name %q contains %q, which FAT does not allow", name, r)
		}
	}
	if strings.TrimRight(name, ". ") != name {
		return fmt.Errorf("name %q ends in a dot or space, which FAT drops", name)
	}
	if n := len(utf16.Encode([]rune(name))); n > maxLongName {
		return fmt.Errorf("name %q is %d UTF-16 units long, FAT allows %d", name, n, maxLongName)
	}
	return nil
}

// exactShort returns the stored 8.3 form of name and its NT case bits when the
// name can be stored without an LFN entry: base 1-8 and extension 0-3 legal
// characters, each part all upper or all lower case.
func exactShort(name string) (short [11]byte, ntCase byte, ok bool) {
	base, ext := name, ""
	if i := strings.IndexByte(name, '.'); i >= 0 {
		base, ext = name[:i], name[i+1:]
		if ext == "" || strings.IndexByte(ext, '.') >= 0 {
			return short, 0, false
		}
	}
	if len(base) < 1 || len(base) > 8 || len(ext) > 3 {
		return short, 0, false
	}
	up, lowB, ok := foldPart(base)
	if !ok {
		return short, 0, false
	}
	upE, lowE, ok := foldPart(ext)
	if !ok {
		return short, 0, false
	}
	for i := range short {
		short[i] = ' '
	}
	copy(short[:8], up)
	copy(short[8:], upE)
	if lowB {
		ntCase |= caseLowerBase
	}
	if lowE {
		ntCase |= caseLowerExt
	}
	return short, ntCase, true
}

// foldPart upper-cases one part of an 8.3 name and reports whether it was all
// lower case. ok is false for illegal characters or mixed case.
func foldPart(s string) (up string, lower bool, ok bool) {
	var hasUpper, hasLower bool
	b := []byte(s)
	for i, c := range b {
		switch {
		case c >= 'a' && c <= 'z':
			hasLower = true
			b[i] = c - 'a' + 'A'
		case c >= 'A' && c <= 'Z':
			hasUpper = true
		case !shortChar(c):
			return "", false, false
		}
	}
	if hasUpper && hasLower {
		return "", false, false
	}
	return string(b), hasLower, true
}

// basisName derives the 8.3 basis of a long name (the Microsoft algorithm:
// upper-case, drop spaces and leading dots, replace illegal characters with
// '_', cut the base at 8 and the extension at 3). lossy reports that the name
// could not be kept intact, so a numeric tail is required.
func basisName(name string) (base, ext string, lossy bool) {
	conv := func(s string) string {
		var b strings.Builder
		for _, r := range s {
			switch {
			case r == ' ':
				lossy = true
				continue
			case r >= 'a' && r <= 'z':
				r = r - 'a' + 'A'
			case r < 0x80 && shortChar(byte(r)):
			default:
				r = '_'
				lossy = true
			}
			b.WriteRune(r)
		}
		return b.String()
	}
	n := strings.TrimLeft(name, ".")
	if n != name {
		lossy = true
	}
	if i := strings.LastIndexByte(n, '.'); i >= 0 {
		base, ext = n[:i], n[i+1:]
	} else {
		base = n
	}
	if strings.Contains(base, ".") {
		base = strings.ReplaceAll(base, ".", "")
		lossy = true
	}
	base, ext = conv(base), conv(ext)
	if len(base) > 8 {
		base, lossy = base[:8], true
	}
	if len(ext) > 3 {
		ext, lossy = ext[:3], true
	}
	if base == "" {
		base, lossy = "_", true
	}
	return base, ext, lossy
}

func pack83(base, ext string) [11]byte {
	var s [11]byte
	for i := range s {
		s[i] = ' '
	}
	copy(s[:8], base)
	copy(s[8:], ext)
	return s
}

// uniqueShort picks a short name for a long one that does not clash with the
// names already used in the directory, adding a "~N" tail when needed.
func uniqueShort(name string, used map[[11]byte]bool) ([11]byte, error) {
	base, ext, lossy := basisName(name)
	if !lossy {
		if s := pack83(base, ext); !used[s] {
			return s, nil
		}
	}
	for n := 1; n <= 999999; n++ {
		tail := "~" + strconv.Itoa(n)
		b := base
		if len(b) > 8-len(tail) {
			b = b[:8-len(tail)]
		}
		if s := pack83(b+tail, ext); !used[s] {
			return s, nil
		}
	}
	return [11]byte{}, fmt.Errorf("no free short name for %q", name)
}

// lfnChecksum is the checksum of an 8.3 name stored in each of its LFN entries.
func lfnChecksum(short [11]byte) byte {
	var sum byte
	for _, c := range short {
		sum = (sum>>1 | sum<<7) + c
	}
	return sum
}

// lfnSlots is the number of 32-byte LFN entries a long name takes.
func lfnSlots(units int) int { return (units + 12) / 13 }

// entriesFor is how many directory entries a child called name takes.
func entriesFor(name string) int {
	if _, _, ok := exactShort(name); ok {
		return 1
	}
	return 1 + lfnSlots(len(utf16.Encode([]rune(name))))
}
