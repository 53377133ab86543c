// Package yamlpath gives field-path-aware access to decoded YAML/JSON (plain
// maps, slices, strings, json.Number and bools), so that every error names
// the field it is about, e.g. "config[2].subnets[0].address: want a string".
package yamlpath

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
)

// Map is a decoded mapping with the path that led to it.
type Map struct {
	Path   string // "" at the top level
	Values map[string]any
}

// Join appends key to path with a dot ("" + key is key).
func Join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// AsMap checks that v, found at path, is a mapping; null is an empty one.
func AsMap(path string, v any) (Map, error) {
	if v == nil {
		return Map{Path: path, Values: map[string]any{}}, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return Map{}, fmt.Errorf("%s: want a mapping, got %s", path, TypeName(v))
	}
	return Map{Path: path, Values: m}, nil
}

// TypeName names the kind of a decoded value for an error message.
func TypeName(v any) string {
	switch v.(type) {
	case map[string]any:
		return "a mapping"
	case []any:
		return "a list"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", v)
}

// Keys returns the mapping's keys in sorted order, so errors about unknown
// keys come out the same every time.
func (m Map) Keys() []string {
	k := make([]string, 0, len(m.Values))
	for s := range m.Values {
		k = append(k, s)
	}
	sort.Strings(k)
	return k
}

// Field is the path of key in m, for error messages.
func (m Map) Field(key string) string { return Join(m.Path, key) }

// Map returns the mapping under key; a missing key is an empty mapping.
func (m Map) Map(key string) (Map, error) { return AsMap(m.Field(key), m.Values[key]) }

// Str returns a scalar as text; numbers are accepted (e.g. "netmask: 24").
// A missing key is "".
func (m Map) Str(key string) (string, error) {
	switch v := m.Values[key].(type) {
	case nil:
		return "", nil
	case string:
		return v, nil
	case json.Number:
		return v.String(), nil
	default:
		return "", fmt.Errorf("%s: want a string, got %s", m.Field(key), TypeName(v))
	}
}

// Int returns a non-negative 32-bit integer, written as a number or a
// string. A missing key is 0.
func (m Map) Int(key string) (int, error) {
	switch v := m.Values[key].(type) {
	case nil:
		return 0, nil
	case json.Number:
		n, err := strconv.ParseInt(v.String(), 10, 32)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("%s: %s is not a non-negative integer", m.Field(key), v)
		}
		return int(n), nil
	case string:
		n, err := strconv.ParseInt(v, 10, 32)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("%s: %q is not a non-negative integer", m.Field(key), v)
		}
		return int(n), nil
	default:
		return 0, fmt.Errorf("%s: want an integer, got %s", m.Field(key), TypeName(v))
	}
}

// Bool accepts YAML 1.1 style yes/no/on/off strings as well as booleans,
// since cloud-init documents use both. A missing key is false.
func (m Map) Bool(key string) (bool, error) {
	switch v := m.Values[key].(type) {
	case nil:
		return false, nil
	case bool:
		return v, nil
	case string:
		switch v {
		case "true", "yes", "on":
			return true, nil
		case "false", "no", "off":
			return false, nil
		}
	}
	return false, fmt.Errorf("%s: want true or false, got %v", m.Field(key), m.Values[key])
}

// List returns the list under key; a missing key is nil.
func (m Map) List(key string) ([]any, error) {
	switch v := m.Values[key].(type) {
	case nil:
		return nil, nil
	case []any:
		return v, nil
	default:
		return nil, fmt.Errorf("%s: want a list, got %s", m.Field(key), TypeName(v))
	}
}

// StrList accepts a list of scalars, or a single scalar as a one-element list.
func (m Map) StrList(key string) ([]string, error) {
	switch v := m.Values[key].(type) {
	case string:
		return []string{v}, nil
	case json.Number:
		return []string{v.String()}, nil
	}
	l, err := m.List(key)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(l))
	for i, e := range l {
		switch s := e.(type) {
		case string:
			out = append(out, s)
		case json.Number:
			out = append(out, s.String())
		default:
			return nil, fmt.Errorf("%s[%d]: want a string, got %s", m.Field(key), i, TypeName(e))
		}
	}
	return out, nil
}

// Entries returns the values of a mapping of mappings under key in name
// order, with their names.
func (m Map) Entries(key string) ([]Map, []string, error) {
	sub, err := m.Map(key)
	if err != nil {
		return nil, nil, err
	}
	names := sub.Keys()
	out := make([]Map, 0, len(names))
	for _, n := range names {
		e, err := sub.Map(n)
		if err != nil {
			return nil, nil, err
		}
		out = append(out, e)
	}
	return out, names, nil
}
