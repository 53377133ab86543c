package netconf

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"

	"sigs.k8s.io/yaml"
)

// decodeYAML turns YAML (or JSON) into plain maps, slices, strings,
// json.Number and bools, bounded in size.
func decodeYAML(doc string, data []byte) (any, error) {
	if len(data) > MaxSize {
		return nil, fmt.Errorf("%s: %d bytes exceeds the %d byte limit", doc, len(data), MaxSize)
	}
	j, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", doc, err)
	}
	d := json.NewDecoder(bytes.NewReader(j))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, fmt.Errorf("%s: %v", doc, err)
	}
	return v, nil
}

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

func (o obj) int(key string) (int, error) {
	switch v := o.m[key].(type) {
	case nil:
		return 0, nil
	case json.Number:
		n, err := strconv.ParseInt(v.String(), 10, 32)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("%s: %s is not a non-negative integer", o.field(key), v)
		}
		return int(n), nil
	case string:
		n, err := strconv.ParseInt(v, 10, 32)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("%s: %q is not a non-negative integer", o.field(key), v)
		}
		return int(n), nil
	default:
		return 0, fmt.Errorf("%s: want an integer, got %s", o.field(key), typeName(v))
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

// mapKeyed returns the entries of a mapping of mappings in name order.
func (o obj) mapKeyed(key string) ([]obj, []string, error) {
	sub, err := o.obj(key)
	if err != nil {
		return nil, nil, err
	}
	names := sub.keys()
	out := make([]obj, 0, len(names))
	for _, n := range names {
		e, err := sub.obj(n)
		if err != nil {
			return nil, nil, err
		}
		out = append(out, e)
	}
	return out, names, nil
}
