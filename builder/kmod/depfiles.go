package kmod

import (
	"bytes"
	"fmt"
	"path"
	"strings"

	"github.com/kilnproject/kiln/builder/fstree"
	"github.com/kilnproject/kiln/internal/modindex"
)

// AddTo writes the set into t under prefix/lib/modules/<kver>: the modules,
// uncompressed, at their kernel/... paths, plus modules.dep, modules.alias,
// modules.softdep, modules.order and the kernel's modules.builtin files.
func (s *Set) AddTo(t *fstree.Tree, prefix string) error {
	base := path.Join(prefix, "lib/modules", s.KernelVersion)
	for _, m := range s.Modules {
		dst := path.Join(base, m.Path)
		var err error
		if strings.HasSuffix(m.source, ".ko") {
			err = t.AddHostFile(dst, 0o644, m.source)
		} else {
			var ko []byte
			if ko, err = readModule(m.source); err == nil {
				err = t.AddFile(dst, 0o644, ko)
			}
		}
		if err != nil {
			return fmt.Errorf("kmod: add %s: %w", m.Name, err)
		}
	}
	files := map[string][]byte{
		"modules.dep":     s.ModulesDep(),
		"modules.alias":   s.ModulesAlias(),
		"modules.softdep": s.ModulesSoftdep(),
		"modules.order":   s.ModulesOrder(),
	}
	for name, b := range s.ix.files {
		files[name] = b
	}
	for name, b := range files {
		if err := t.AddFile(path.Join(base, name), 0o644, b); err != nil {
			return fmt.Errorf("kmod: add %s: %w", name, err)
		}
	}
	return nil
}

// arrayOrder is the set in depmod's module array order (modules.order).
func (s *Set) arrayOrder() []*Module {
	ms := make([]*Module, len(s.Modules))
	for i := range s.Modules {
		ms[i] = &s.Modules[i]
	}
	sortModules(ms)
	return ms
}

// ModulesDep renders modules.dep as depmod does: one line per module,
// "path: dep dep ...", all transitive hard dependencies, listed so that
// loading them from the last to the first satisfies every dependency.
func (s *Set) ModulesDep() []byte {
	ms := s.arrayOrder()
	byName := map[string]*Module{}
	for _, m := range ms {
		byName[m.Name] = m
	}
	// Topological rank as depmod computes it, so lines match its output
	// byte for byte: a stack seeded with the modules nobody depends on (in
	// array order), each popped module's dependencies pushed once their
	// last user is ranked. A module ranks lower than everything it needs.
	users := map[string]int{}
	for _, m := range ms {
		for _, d := range m.Depends {
			users[d]++
		}
	}
	rank := map[string]int{}
	var stack []*Module
	for _, m := range ms {
		if users[m.Name] == 0 {
			stack = append(stack, m)
		}
	}
	for n := 0; len(stack) > 0; n++ {
		m := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		rank[m.Name] = n
		deps := make([]*Module, 0, len(m.Depends))
		for _, d := range m.Depends {
			if dm := byName[d]; dm != nil {
				deps = append(deps, dm)
			}
		}
		sortModules(deps)
		for i := len(deps) - 1; i >= 0; i-- {
			if users[deps[i].Name]--; users[deps[i].Name] == 0 {
				stack = append(stack, deps[i])
			}
		}
	}
	var b bytes.Buffer
	for _, m := range ms {
		all := map[string]*Module{}
		var walk func(*Module)
		walk = func(m *Module) {
			for _, d := range m.Depends {
				if dm := byName[d]; dm != nil && all[d] == nil {
					all[d] = dm
					walk(dm)
				}
			}
		}
		walk(m)
		deps := sortedModules(all)
		sortByRank(deps, rank)
		b.WriteString(m.Path + ":")
		for _, d := range deps {
			b.WriteString(" " + d.Path)
		}
		b.WriteByte('\n')
	}
	return b.Bytes()
}

func sortByRank(ms []*Module, rank map[string]int) {
	for i := 1; i < len(ms); i++ { // insertion sort: lists are short
		for j := i; j > 0 && rank[ms[j].Name] < rank[ms[j-1].Name]; j-- {
			ms[j], ms[j-1] = ms[j-1], ms[j]
		}
	}
}

// ModulesAlias renders modules.alias: "alias PATTERN module" lines.
func (s *Set) ModulesAlias() []byte {
	var b bytes.Buffer
	b.WriteString("# Aliases extracted from modules themselves.\n")
	for _, m := range s.arrayOrder() {
		for _, a := range m.Aliases {
			fmt.Fprintf(&b, "alias %s %s\n", a, m.Name)
		}
	}
	return b.Bytes()
}

// ModulesSoftdep renders modules.softdep: "softdep module pre: ... post: ..." lines.
func (s *Set) ModulesSoftdep() []byte {
	var b bytes.Buffer
	b.WriteString("# Soft dependencies extracted from modules themselves.\n")
	for _, m := range s.arrayOrder() {
		for _, sd := range m.softdeps {
			fmt.Fprintf(&b, "softdep %s %s\n", m.Name, sd)
		}
	}
	return b.Bytes()
}

// ModulesOrder renders modules.order for the subset (kernel build order).
func (s *Set) ModulesOrder() []byte {
	var b bytes.Buffer
	for _, m := range s.arrayOrder() {
		b.WriteString(m.Path + "\n")
	}
	return b.Bytes()
}

// IndexDigest is the digest initd computes of the index AddTo writes
// (modindex.Digest): the builder records it in initramfs.json and
// system.json so the boot need not hash the files itself.
func (s *Set) IndexDigest() string {
	d, _ := modindex.Digest(func(name string) ([]byte, error) {
		switch name {
		case "modules.dep":
			return s.ModulesDep(), nil
		case "modules.alias":
			return s.ModulesAlias(), nil
		}
		return s.ix.files[name], nil
	})
	return "sha256:" + d
}
