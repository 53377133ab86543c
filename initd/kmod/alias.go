// Package kmod loads kernel modules the way initd needs them: by name with
// modules.dep dependencies first, and by device modalias (coldplug) through
// the modules.alias patterns depmod writes.
package kmod

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// Aliases is a parsed modules.alias: glob pattern -> module, in file order.
type Aliases struct {
	entries []aliasEntry
}

type aliasEntry struct {
	pattern, module string
	literal         string // the pattern up to its first wildcard: a cheap first test
}

// literalPrefix is pattern up to its first glob metacharacter.
func literalPrefix(pattern string) string {
	if i := strings.IndexAny(pattern, `*?[\`); i >= 0 {
		return pattern[:i]
	}
	return pattern
}

// ParseAlias reads modules.alias ("alias PATTERN MODULE" lines, '#' comments).
func ParseAlias(r io.Reader) (*Aliases, error) {
	a := &Aliases{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 3 || f[0] != "alias" {
			return nil, fmt.Errorf("modules.alias line %d: want \"alias PATTERN MODULE\", got %q", n, line)
		}
		a.entries = append(a.entries, aliasEntry{f[1], Name(f[2]), literalPrefix(f[1])})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("modules.alias: %w", err)
	}
	return a, nil
}

// Len is the number of alias lines.
func (a *Aliases) Len() int { return len(a.entries) }

// Match returns the modules whose pattern matches modalias, each once, in
// file order.
func (a *Aliases) Match(modalias string) []string {
	var out []string
	seen := map[string]bool{}
	for _, e := range a.entries {
		if !strings.HasPrefix(modalias, e.literal) || seen[e.module] {
			continue
		}
		if fnmatch(e.pattern, modalias) {
			seen[e.module] = true
			out = append(out, e.module)
		}
	}
	return out
}

// Name normalises a module name or path the way the kernel does:
// basename, no .ko(.xz/.zst/.gz) suffix, '-' becomes '_'.
func Name(s string) string {
	if i := strings.LastIndexByte(s, '/'); i >= 0 {
		s = s[i+1:]
	}
	for _, suf := range []string{".xz", ".zst", ".gz"} {
		s = strings.TrimSuffix(s, suf)
	}
	s = strings.TrimSuffix(s, ".ko")
	return strings.ReplaceAll(s, "-", "_")
}
