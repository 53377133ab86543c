// Package strictyaml decodes a YAML document into Go structs strictly:
// unknown fields, duplicate keys and wrong types are errors that name the
// field path and the line ("spec.nodeAPI.prot: unknown field (line 9)").
// Decoding goes on past an error, so one pass reports every problem and
// the fields that are fine are filled in. Struct fields are matched by
// their `yaml:"name"` tag; a *yaml.Node field keeps its subtree as raw
// YAML (passthrough).
package strictyaml

import (
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// FieldError is one problem at a field.
type FieldError struct {
	Field string // "spec.role", "" for the document itself
	Line  int    // 0 when unknown
	Msg   string
}

func (e FieldError) Error() string {
	s := e.Msg
	if e.Field != "" {
		s = e.Field + ": " + s
	}
	if e.Line > 0 {
		s += fmt.Sprintf(" (line %d)", e.Line)
	}
	return s
}

// Errors is every problem found in one source, in document order.
type Errors struct {
	Source string // "machine config", "secrets.yaml", ...
	List   []FieldError
	Syntax bool // the input is not one readable YAML document: nothing was decoded
}

func (e *Errors) Error() string {
	lines := make([]string, len(e.List))
	for i, fe := range e.List {
		lines[i] = e.Source + ": " + fe.Error()
	}
	return strings.Join(lines, "\n")
}

// Lines maps a field path to the line of its key, for errors found after
// decoding (validation).
type Lines map[string]int

// Add records a problem at field; the line comes from lines: the field's
// own, else its closest parent's (a missing field has no line of its own).
func (e *Errors) Add(lines Lines, field, format string, args ...any) {
	e.List = append(e.List, FieldError{Field: field, Line: lines.Of(field), Msg: fmt.Sprintf(format, args...)})
}

// Of returns the line of field or of its closest parent, 0 if none.
func (l Lines) Of(field string) int {
	for field != "" {
		if n, ok := l[field]; ok {
			return n
		}
		i := strings.LastIndexAny(field, ".[")
		if i < 0 {
			break
		}
		field = field[:i]
	}
	return 0
}

// Err returns e when it holds a problem, else nil.
func (e *Errors) Err() error {
	if e == nil || len(e.List) == 0 {
		return nil
	}
	return e
}

// Decode decodes the single YAML document in data into v (a pointer to a
// struct). The error, if any, is an *Errors naming source.
func Decode(source string, data []byte, v any) (Lines, error) {
	errs := &Errors{Source: source}
	lines := Lines{}
	var doc yaml.Node
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	if err := dec.Decode(&doc); err != nil {
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		if errors.Is(err, io.EOF) {
			msg = "empty document"
		}
		errs.List = append(errs.List, FieldError{Msg: msg})
		errs.Syntax = true
		return lines, errs
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		errs.List = append(errs.List, FieldError{Line: extra.Line, Msg: "more than one YAML document"})
		errs.Syntax = true
		return lines, errs
	}
	d := decoder{errs: errs, lines: lines}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	d.value(root, reflect.ValueOf(v).Elem(), "")
	return lines, errs.Err()
}

var nodeType = reflect.TypeOf(yaml.Node{})

type decoder struct {
	errs  *Errors
	lines Lines
}

func (d *decoder) fail(n *yaml.Node, path, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	d.errs.List = append(d.errs.List, FieldError{Field: path, Line: line, Msg: fmt.Sprintf(format, args...)})
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	switch n.ShortTag() {
	case "!!str":
		return "a string"
	case "!!int", "!!float":
		return "a number"
	case "!!bool":
		return "a boolean"
	case "!!null":
		return "null"
	}
	return n.ShortTag()
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" }

func (d *decoder) value(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if v.Kind() == reflect.Pointer {
		if isNull(n) {
			return
		}
		if v.Type().Elem() == nodeType {
			c := *n
			v.Set(reflect.ValueOf(&c))
			return
		}
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.value(n, v.Elem(), path)
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		d.structure(n, v, path)
	case reflect.Map:
		d.mapping(n, v, path)
	case reflect.Slice:
		if isNull(n) {
			return
		}
		if n.Kind != yaml.SequenceNode {
			d.fail(n, path, "want a list, got %s", kindName(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, c := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			d.lines[p] = c.Line
			d.value(c, s.Index(i), p)
		}
		v.Set(s)
	default:
		d.scalar(n, v, path)
	}
}

func (d *decoder) structure(n *yaml.Node, v reflect.Value, path string) {
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "want a mapping, got %s", kindName(n))
		return
	}
	fields := map[string]int{}
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if name != "" && name != "-" {
			fields[name] = i
		}
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		p := join(path, k.Value)
		if k.Kind != yaml.ScalarNode {
			d.fail(k, path, "want string keys, got %s", kindName(k))
			continue
		}
		if seen[k.Value] {
			d.fail(k, p, "duplicate key")
			continue
		}
		seen[k.Value] = true
		idx, ok := fields[k.Value]
		if !ok {
			d.fail(k, p, "unknown field")
			continue
		}
		d.lines[p] = k.Line
		d.value(val, v.Field(idx), p)
	}
}

func (d *decoder) mapping(n *yaml.Node, v reflect.Value, path string) {
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "want a mapping, got %s", kindName(n))
		return
	}
	if v.Type().Key().Kind() != reflect.String {
		panic("strictyaml: map keys must be strings")
	}
	m := reflect.MakeMapWithSize(v.Type(), len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		p := join(path, k.Value)
		if k.Kind != yaml.ScalarNode {
			d.fail(k, path, "want string keys, got %s", kindName(k))
			continue
		}
		key := reflect.ValueOf(k.Value).Convert(v.Type().Key())
		if m.MapIndex(key).IsValid() {
			d.fail(k, p, "duplicate key")
			continue
		}
		d.lines[p] = k.Line
		e := reflect.New(v.Type().Elem()).Elem()
		d.value(val, e, p)
		m.SetMapIndex(key, e)
	}
	v.Set(m)
}

func (d *decoder) scalar(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.ScalarNode {
		d.fail(n, path, "want %s, got %s", goKind(v.Kind()), kindName(n))
		return
	}
	tag := n.ShortTag()
	if tag == "!!null" {
		return
	}
	switch v.Kind() {
	case reflect.String:
		// A number or boolean where text is wanted is an error, as in
		// Kubernetes' own decoding: "version: 1.30" is not "1.30".
		if tag != "!!str" {
			d.fail(n, path, "want a string, got %s %s (quote it)", kindName(n), n.Value)
			return
		}
		v.SetString(n.Value)
	case reflect.Bool:
		if tag != "!!bool" {
			d.fail(n, path, "want a boolean, got %s", kindName(n))
			return
		}
		v.SetBool(n.Value == "true" || n.Value == "True" || n.Value == "TRUE")
	case reflect.Int, reflect.Int32, reflect.Int64, reflect.Uint16, reflect.Uint32:
		if tag != "!!int" {
			d.fail(n, path, "want an integer, got %s", kindName(n))
			return
		}
		i, err := strconv.ParseInt(strings.ReplaceAll(n.Value, "_", ""), 0, 64)
		if err != nil || overflows(v, i) {
			d.fail(n, path, "integer %s out of range", n.Value)
			return
		}
		if v.CanUint() {
			v.SetUint(uint64(i))
		} else {
			v.SetInt(i)
		}
	default:
		panic(fmt.Sprintf("strictyaml: unsupported field type %s at %s", v.Type(), path))
	}
}

func overflows(v reflect.Value, i int64) bool {
	if v.CanUint() {
		return i < 0 || v.OverflowUint(uint64(i))
	}
	return i < math.MinInt64 || v.OverflowInt(i)
}

func goKind(k reflect.Kind) string {
	switch k {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	}
	return "an integer"
}
