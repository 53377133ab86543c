package netconf

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/kilnproject/kiln/initd/yamlpath"
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
// The work is done by yamlpath; these short names keep the parsers terse.
type obj struct {
	path string
	m    map[string]any
}

func (o obj) ym() yamlpath.Map { return yamlpath.Map{Path: o.path, Values: o.m} }

func fromMap(m yamlpath.Map, err error) (obj, error) { return obj{path: m.Path, m: m.Values}, err }

func asObj(path string, v any) (obj, error) { return fromMap(yamlpath.AsMap(path, v)) }

func typeName(v any) string { return yamlpath.TypeName(v) }

func (o obj) keys() []string                       { return o.ym().Keys() }
func (o obj) field(key string) string              { return o.ym().Field(key) }
func (o obj) obj(key string) (obj, error)          { return fromMap(o.ym().Map(key)) }
func (o obj) str(key string) (string, error)       { return o.ym().Str(key) }
func (o obj) int(key string) (int, error)          { return o.ym().Int(key) }
func (o obj) bool(key string) (bool, error)        { return o.ym().Bool(key) }
func (o obj) list(key string) ([]any, error)       { return o.ym().List(key) }
func (o obj) strList(key string) ([]string, error) { return o.ym().StrList(key) }

// mapKeyed returns the entries of a mapping of mappings in name order.
func (o obj) mapKeyed(key string) ([]obj, []string, error) {
	ms, names, err := o.ym().Entries(key)
	if err != nil {
		return nil, nil, err
	}
	out := make([]obj, len(ms))
	for i, m := range ms {
		out[i] = obj{path: m.Path, m: m.Values}
	}
	return out, names, nil
}
