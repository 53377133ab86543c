package debian

import (
	"fmt"
	"sort"
	"strings"
)

// Resolve returns the named packages and everything they need through
// Depends and Pre-Depends, sorted by name, one version per name.
//
// names may pin a version as "name=version". A dependency on a name in
// exclude counts as satisfied and the excluded package is left out (for
// things the image provides otherwise, or that only matter to dpkg).
//
// Choices, made the way apt makes them for a fresh install:
//   - "a | b": an alternative already chosen wins, else the first one that
//     can be satisfied, in the order written;
//   - a name with no real package is virtual: an already chosen provider
//     wins, else the first provider by name (highest version); a versioned
//     dependency is only met by a versioned Provides;
//   - ":any" / ":native" / ":arch" qualifiers are ignored (one architecture);
//   - Recommends, Suggests, Conflicts and Breaks are not considered.
//
// Cycles are fine. Errors name the package and the dependency it could not
// satisfy.
func (ix *Index) Resolve(names []string, exclude []string) ([]*Package, error) {
	r := &resolver{ix: ix, chosen: map[string]*Package{}, excluded: map[string]bool{}}
	for _, n := range exclude {
		r.excluded[n] = true
	}
	for _, spec := range names {
		name, version, _ := strings.Cut(strings.TrimSpace(spec), "=")
		name, _, _ = strings.Cut(name, ":")
		p, err := ix.Lookup(name, version)
		if err != nil {
			return nil, err
		}
		if have := r.chosen[p.Name]; have != nil && have != p {
			return nil, fmt.Errorf("debian: %q asked for twice with different versions (%s and %s)", name, have.Version, p.Version)
		}
		r.choose(p)
	}
	for len(r.queue) > 0 {
		p := r.queue[0]
		r.queue = r.queue[1:]
		if err := r.visit(p); err != nil {
			return nil, err
		}
	}
	out := make([]*Package, 0, len(r.chosen))
	for _, p := range r.chosen {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

type resolver struct {
	ix       *Index
	chosen   map[string]*Package
	excluded map[string]bool
	queue    []*Package
}

func (r *resolver) choose(p *Package) {
	if r.chosen[p.Name] == p {
		return
	}
	r.chosen[p.Name] = p
	r.queue = append(r.queue, p)
}

func (r *resolver) visit(p *Package) error {
	for _, field := range []struct{ name, value string }{{"Pre-Depends", p.PreDepends}, {"Depends", p.Depends}} {
		groups, err := parseRelations(field.value)
		if err != nil {
			return fmt.Errorf("debian: %s: %s: %w", p, field.name, err)
		}
		for _, alts := range groups {
			if r.satisfied(alts) {
				continue
			}
			c, why := r.candidate(alts)
			if c == nil {
				return fmt.Errorf("debian: %s %s: %s: cannot satisfy %q: %s", p.Name, p.Version, field.name, alts.String(), why)
			}
			r.choose(c)
		}
	}
	return nil
}

// satisfied: some alternative is excluded or met by a chosen package.
func (r *resolver) satisfied(alts alternatives) bool {
	for _, rel := range alts {
		if r.excluded[rel.name] {
			return true
		}
		if p := r.chosen[rel.name]; p != nil && versionSatisfies(p.Version, rel.op, rel.version) {
			return true
		}
		for _, pr := range r.ix.provides[rel.name] {
			if r.chosen[pr.pkg.Name] == pr.pkg && provideSatisfies(pr, rel) {
				return true
			}
		}
	}
	return false
}

func provideSatisfies(pr provider, rel relation) bool {
	if rel.op == "" {
		return true
	}
	return pr.version != "" && versionSatisfies(pr.version, rel.op, rel.version)
}

// candidate picks a package for the first alternative that can be met;
// why explains the failure otherwise.
func (r *resolver) candidate(alts alternatives) (*Package, string) {
	var why []string
	for _, rel := range alts {
		// A name already chosen at a version that does not fit cannot be
		// swapped for another version: one version per name.
		if have := r.chosen[rel.name]; have != nil {
			why = append(why, fmt.Sprintf("%s is already chosen at version %s", rel.name, have.Version))
		} else if list := r.ix.packages[rel.name]; len(list) > 0 {
			for _, p := range list {
				if versionSatisfies(p.Version, rel.op, rel.version) {
					return p, ""
				}
			}
			var have []string
			for _, p := range list {
				have = append(have, p.Version)
			}
			why = append(why, fmt.Sprintf("%s has only version %s", rel.name, strings.Join(have, ", ")))
		}
		for _, pr := range r.ix.provides[rel.name] {
			if !provideSatisfies(pr, rel) || r.excluded[pr.pkg.Name] {
				continue
			}
			if have := r.chosen[pr.pkg.Name]; have != nil && have != pr.pkg {
				continue
			}
			return pr.pkg, ""
		}
		if r.chosen[rel.name] == nil && len(r.ix.packages[rel.name]) == 0 {
			if len(r.ix.provides[rel.name]) > 0 {
				why = append(why, fmt.Sprintf("no provider of %s fits", rel.name))
			} else {
				why = append(why, fmt.Sprintf("%s is not in the %s index", rel.name, r.ix.Arch))
			}
		}
	}
	return nil, strings.Join(why, "; ")
}
