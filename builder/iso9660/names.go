package iso9660

import (
	"strconv"
	"strings"
)

// Primary (ECMA-119) names are a fallback for readers without Rock Ridge.
// They follow interchange level 2: d-characters only (A-Z 0-9 _), at most
// 30 characters of name plus extension for files ("NAME.EXT;1") and 31 for
// directories. Rock Ridge NM carries the real name.
const (
	maxFileChars = 30
	maxDirChars  = 31
	maxExtChars  = 8
)

// dchars maps s to upper-case d-characters, replacing everything else by '_'.
func dchars(s string) string {
	b := []byte(s)
	for i, c := range b {
		switch {
		case c >= 'a' && c <= 'z':
			b[i] = c - 'a' + 'A'
		case c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_':
		default:
			b[i] = '_'
		}
	}
	return string(b)
}

// primaryName splits name into the mangled base and extension of a primary
// identifier (extension is empty for directories).
func primaryName(name string, dir bool) (base, ext string) {
	if dir {
		base = dchars(name)
		if len(base) > maxDirChars {
			base = base[:maxDirChars]
		}
		return base, ""
	}
	base = name
	if i := strings.LastIndexByte(name, '.'); i > 0 {
		base, ext = name[:i], name[i+1:]
	}
	base, ext = dchars(base), dchars(ext)
	if len(ext) > maxExtChars {
		ext = ext[:maxExtChars]
	}
	if len(base) > maxFileChars-len(ext) {
		base = base[:maxFileChars-len(ext)]
	}
	if base == "" && ext == "" {
		base = "_"
	}
	return base, ext
}

// uniqueName returns base (shortened and numbered when needed) such that
// the identifier is not in used, and records it in used.
func uniqueName(base, ext string, dir bool, used map[string]bool) string {
	limit := maxFileChars - len(ext)
	if dir {
		limit = maxDirChars
	}
	b := base
	for n := 1; used[idString(b, ext, dir)]; n++ {
		sfx := "_" + strconv.Itoa(n)
		cut := base
		if len(cut) > limit-len(sfx) {
			cut = cut[:limit-len(sfx)]
		}
		b = cut + sfx
	}
	used[idString(b, ext, dir)] = true
	return b
}

// idString is the recorded identifier: "NAME" for directories, "NAME.EXT;1" for files.
func idString(base, ext string, dir bool) string {
	if dir {
		return base
	}
	return base + "." + ext + ";1"
}

// lessID orders identifiers as ECMA-119 9.3 asks: by name, then extension,
// each padded with spaces (which sort below every d-character, so a plain
// prefix comparison gives the same result).
func lessID(aBase, aExt, bBase, bExt string) bool {
	if aBase != bBase {
		return aBase < bBase
	}
	return aExt < bExt
}
