package kmod

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// Deps is a parsed modules.dep: module name -> its file (relative to
// /lib/modules/KVER) and the names of the modules it needs.
type Deps map[string]Module

// Module is one modules.dep line.
type Module struct {
	Path string
	Deps []string
}

// ParseDep reads modules.dep ("path.ko: dep.ko dep.ko" lines).
func ParseDep(r io.Reader) (Deps, error) {
	d := Deps{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		path, rest, ok := strings.Cut(line, ":")
		if !ok || path == "" {
			return nil, fmt.Errorf("modules.dep line %d: want \"path.ko: deps...\", got %q", n, line)
		}
		m := Module{Path: strings.TrimSpace(path)}
		for _, dep := range strings.Fields(rest) {
			m.Deps = append(m.Deps, Name(dep))
		}
		d[Name(m.Path)] = m
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("modules.dep: %w", err)
	}
	return d, nil
}

// Order returns the modules to load for name, dependencies before the
// modules that need them, name last. Every module appears once even when
// several paths lead to it; a cycle or a module missing from modules.dep is
// an error naming it.
func (d Deps) Order(name string) ([]string, error) {
	var out []string
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(n string, chain []string) error
	visit = func(n string, chain []string) error {
		switch state[n] {
		case 2:
			return nil
		case 1:
			return fmt.Errorf("modules.dep: dependency cycle %s -> %s", strings.Join(chain, " -> "), n)
		}
		m, ok := d[n]
		if !ok {
			if len(chain) == 0 {
				return fmt.Errorf("module %s: %w", n, ErrNotFound)
			}
			return fmt.Errorf("module %s (needed by %s): %w", n, chain[len(chain)-1], ErrNotFound)
		}
		state[n] = 1
		// modules.dep lists deep dependencies after the direct ones, so walk
		// them in reverse: that is the order modprobe loads them in too.
		for i := len(m.Deps) - 1; i >= 0; i-- {
			if err := visit(m.Deps[i], append(chain, n)); err != nil {
				return err
			}
		}
		state[n] = 2
		out = append(out, n)
		return nil
	}
	if err := visit(Name(name), nil); err != nil {
		return nil, err
	}
	return out, nil
}
