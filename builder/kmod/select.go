package kmod

import (
	"fmt"
	"sort"
)

// Set is a closed subset of one kernel's modules, in load order
// (every module after the modules it depends on).
type Set struct {
	KernelVersion string
	Modules       []Module

	ix *Index
}

// Select returns the named modules plus everything they need: depends= and
// softdep pre: entries, transitively. Names may use '-' or '_'. A name that
// is built into the kernel is accepted and needs nothing; a name that is
// neither a module nor built in is an error.
func (ix *Index) Select(names []string) (*Set, error) {
	chosen := map[string]*Module{}
	var queue []*Module
	want := func(m *Module) {
		if chosen[m.Name] == nil {
			chosen[m.Name] = m
			queue = append(queue, m)
		}
	}
	for _, n := range names {
		if m := ix.Module(n); m != nil {
			want(m)
		} else if !ix.Builtin(n) {
			return nil, fmt.Errorf("kmod: module %q is not in kernel %s (neither in %s nor in modules.builtin)", n, ix.KernelVersion, ix.Dir)
		}
	}
	for len(queue) > 0 {
		m := queue[0]
		queue = queue[1:]
		for _, d := range m.Depends {
			if dm := ix.modules[d]; dm != nil {
				want(dm)
			} else if !ix.builtin[d] {
				return nil, fmt.Errorf("kmod: %s (%s) depends on %q, which is not in kernel %s", m.Name, m.Path, d, ix.KernelVersion)
			}
		}
		// Soft dependencies are best effort, as in modprobe: a name or an
		// exact alias; anything else (built in, absent) is skipped.
		for _, d := range m.SoftPre {
			for _, dm := range ix.resolveSoft(d) {
				want(dm)
			}
		}
	}

	// Depth-first from modules.order: deps (and soft pre-deps) before users.
	roots := sortedModules(chosen)
	done := map[string]bool{}
	var order []Module
	var visit func(m *Module)
	visit = func(m *Module) {
		if done[m.Name] {
			return
		}
		done[m.Name] = true // also breaks softdep cycles
		var before []*Module
		for _, d := range m.Depends {
			if dm := chosen[d]; dm != nil {
				before = append(before, dm)
			}
		}
		for _, d := range m.SoftPre {
			before = append(before, ix.resolveSoft(d)...)
		}
		sortModules(before)
		for _, dm := range before {
			visit(dm)
		}
		order = append(order, *m)
	}
	for _, m := range roots {
		visit(m)
	}
	return &Set{KernelVersion: ix.KernelVersion, Modules: order, ix: ix}, nil
}

func (ix *Index) resolveSoft(name string) []*Module {
	if m := ix.Module(name); m != nil {
		return []*Module{m}
	}
	var out []*Module
	for _, n := range ix.aliasIdx[name] {
		out = append(out, ix.modules[n])
	}
	return out
}

// Names returns the module names of the set in load order.
func (s *Set) Names() []string {
	out := make([]string, len(s.Modules))
	for i, m := range s.Modules {
		out[i] = m.Name
	}
	return out
}

func sortedModules(ms map[string]*Module) []*Module {
	out := make([]*Module, 0, len(ms))
	for _, m := range ms {
		out = append(out, m)
	}
	sortModules(out)
	return out
}

// sortModules orders modules as modules.order lists them, unlisted ones
// after, by path: the order depmod keeps its module array in.
func sortModules(ms []*Module) {
	sort.SliceStable(ms, func(i, j int) bool {
		if ms[i].order != ms[j].order {
			return ms[i].order < ms[j].order
		}
		return ms[i].Path < ms[j].Path
	})
}
