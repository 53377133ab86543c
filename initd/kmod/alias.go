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
	// byBus indexes entries by the bus a pattern names ("pci" in
	// "pci:v...", "" when the pattern starts with a wildcard): a modalias
	// is matched against its bus's patterns and the wildcard ones only,
	// not the whole file (a thousand patterns, per device, under emulation).
	byBus map[string][]int
}

// patternBus is the bus a pattern is for: what precedes its first ':',
// "" when a wildcard comes first (the pattern may match any bus).
func patternBus(pattern string) string {
	lit := literalPrefix(pattern)
	if i := strings.IndexByte(lit, ':'); i >= 0 {
		return lit[:i]
	}
	if len(lit) < len(pattern) {
		return ""
	}
	return pattern
}

// modaliasBus is a device modalias's bus, up to its first ':' (the
// modalias is a plain string: DMI fields may hold any byte).
func modaliasBus(modalias string) string {
	bus, _, _ := strings.Cut(modalias, ":")
	return bus
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
		a.add(f[1], Name(f[2]))
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("modules.alias: %w", err)
	}
	return a, nil
}

func (a *Aliases) add(pattern, module string) {
	if a.byBus == nil {
		a.byBus = map[string][]int{}
	}
	bus := patternBus(pattern)
	a.byBus[bus] = append(a.byBus[bus], len(a.entries))
	a.entries = append(a.entries, aliasEntry{pattern, module, literalPrefix(pattern)})
}

// Len is the number of alias lines.
func (a *Aliases) Len() int { return len(a.entries) }

// Match returns the modules whose pattern matches modalias, each once, in
// file order.
func (a *Aliases) Match(modalias string) []string {
	var out []string
	seen := map[string]bool{}
	try := func(i int) {
		e := &a.entries[i]
		if strings.HasPrefix(modalias, e.literal) && !seen[e.module] && fnmatch(e.pattern, modalias) {
			seen[e.module] = true
			out = append(out, e.module)
		}
	}
	// The bus's patterns and the wildcard-first ones, merged back into
	// file order (the order modprobe tries them in).
	bus, any := a.byBus[modaliasBus(modalias)], a.byBus[""]
	if modaliasBus(modalias) == "" {
		bus = nil
	}
	for len(bus) > 0 || len(any) > 0 {
		if len(any) == 0 || len(bus) > 0 && bus[0] < any[0] {
			try(bus[0])
			bus = bus[1:]
		} else {
			try(any[0])
			any = any[1:]
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
