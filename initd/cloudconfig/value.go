package cloudconfig

import "github.com/kilnproject/kiln/initd/yamlpath"

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
func (o obj) bool(key string) (bool, error)        { return o.ym().Bool(key) }
func (o obj) list(key string) ([]any, error)       { return o.ym().List(key) }
func (o obj) strList(key string) ([]string, error) { return o.ym().StrList(key) }
