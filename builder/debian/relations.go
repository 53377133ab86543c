package debian

import (
	"fmt"
	"strings"
)

// relation is one term of a Depends-style field: "name[:arch] [(op version)]".
type relation struct {
	name    string
	arch    string // "", "any", "native" or an architecture name
	op      string // "", "<<", "<=", "=", ">=", ">>"
	version string
}

func (r relation) String() string {
	s := r.name
	if r.arch != "" {
		s += ":" + r.arch
	}
	if r.op != "" {
		s += " (" + r.op + " " + r.version + ")"
	}
	return s
}

// alternatives is "a | b | c": any one satisfies it.
type alternatives []relation

func (alts alternatives) String() string {
	parts := make([]string, len(alts))
	for i, r := range alts {
		parts[i] = r.String()
	}
	return strings.Join(parts, " | ")
}

// parseRelations parses a Depends / Pre-Depends / Provides field value
// (Debian Policy 7.1). Architecture lists "[...]" belong to source packages
// and are dropped.
func parseRelations(field string) ([]alternatives, error) {
	var out []alternatives
	for _, group := range strings.Split(field, ",") {
		group = strings.TrimSpace(group)
		if group == "" {
			continue
		}
		var alts alternatives
		for _, term := range strings.Split(group, "|") {
			r, err := parseRelation(term)
			if err != nil {
				return nil, fmt.Errorf("%q: %w", group, err)
			}
			alts = append(alts, r)
		}
		out = append(out, alts)
	}
	return out, nil
}

func parseRelation(term string) (relation, error) {
	term = dropBracketed(term, '[', ']')
	term = strings.TrimSpace(term)
	var r relation
	name := term
	if i := strings.IndexByte(term, '('); i >= 0 {
		name = strings.TrimSpace(term[:i])
		rest := term[i+1:]
		j := strings.IndexByte(rest, ')')
		if j < 0 {
			return r, fmt.Errorf("unclosed '(' in %q", term)
		}
		cons := strings.TrimSpace(rest[:j])
		for _, op := range []string{"<<", "<=", ">=", ">>", "=", "<", ">"} {
			if strings.HasPrefix(cons, op) {
				r.op, r.version = op, strings.TrimSpace(cons[len(op):])
				break
			}
		}
		// "<" and ">" are obsolete spellings of "<=" and ">=" (Policy 7.1).
		switch r.op {
		case "<":
			r.op = "<="
		case ">":
			r.op = ">="
		case "":
			return r, fmt.Errorf("bad version constraint %q", cons)
		}
		if r.version == "" {
			return r, fmt.Errorf("missing version in %q", cons)
		}
	}
	if strings.ContainsAny(name, " \t") || name == "" {
		return r, fmt.Errorf("bad package name %q", name)
	}
	r.name, r.arch, _ = strings.Cut(name, ":")
	return r, nil
}

func dropBracketed(s string, open, close byte) string {
	for {
		i := strings.IndexByte(s, open)
		if i < 0 {
			return s
		}
		j := strings.IndexByte(s[i:], close)
		if j < 0 {
			return s
		}
		s = s[:i] + s[i+j+1:]
	}
}

// versionSatisfies reports whether version v meets "op want".
func versionSatisfies(v, op, want string) bool {
	if op == "" {
		return true
	}
	c := CompareVersions(v, want)
	switch op {
	case "<<":
		return c < 0
	case "<=":
		return c <= 0
	case "=":
		return c == 0
	case ">=":
		return c >= 0
	case ">>":
		return c > 0
	}
	return false
}
