package cloudconfig

import (
	"encoding/json"
	"fmt"
	"sort"
)

// obj is a mapping with the path that led to it, so errors name the field.
type obj struct {
	path string
	m    map[string]any
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func asObj(path string, v any) (obj, error) {
	if v == nil {
		return obj{path: path, m: map[string]any{}}, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return obj{}, fmt.Errorf("%s: want a mapping, got %s", path, typeName(v))
	}
	return obj{path: path, m: m}, nil
}

func typeName(v any) string {
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

func (o obj) keys() []string {
	k := make([]string, 0, len(o.m))
	for s := range o.m {
		k = append(k, s)
	}
	sort.Strings(k)
	return k
}

func (o obj) field(key string) string { return join(o.path, key) }

func (o obj) obj(key string) (obj, error) { return asObj(o.field(key), o.m[key]) }

// str returns a scalar as text; numbers are accepted (e.g. "netmask: 24").
func (o obj) str(key string) (string, error) {
	switch v := o.m[key].(type) {
	case nil:
		return "", nil
	case string:
		return v, nil
	case json.Number:
		return v.String(), nil
	default:
		return "", fmt.Errorf("%s: want a string, got %s", o.field(key), typeName(v))
	}
}

func (o obj) bool(key string) (bool, error) {
	switch v := o.m[key].(type) {
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
	return false, fmt.Errorf("%s: want true or false, got %v", o.field(key), o.m[key])
}

func (o obj) list(key string) ([]any, error) {
	switch v := o.m[key].(type) {
	case nil:
		return nil, nil
	case []any:
		return v, nil
	default:
		return nil, fmt.Errorf("%s: want a list, got %s", o.field(key), typeName(v))
	}
}

// strList accepts a list of scalars, or a single scalar as a one-element list.
func (o obj) strList(key string) ([]string, error) {
	switch v := o.m[key].(type) {
	case string:
		return []string{v}, nil
	case json.Number:
		return []string{v.String()}, nil
	}
	l, err := o.list(key)
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
			return nil, fmt.Errorf("%s[%d]: want a string, got %s", o.field(key), i, typeName(e))
		}
	}
	return out, nil
}
