package yamlpath

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// decode turns JSON into the values yamlpath works on (numbers as json.Number).
func decode(t *testing.T, s string) Map {
	t.Helper()
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		t.Fatal(err)
	}
	m, err := AsMap("", v)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestAccessors(t *testing.T) {
	root := decode(t, `{"net": {"mtu": 1500, "vlan": "7", "name": "eth0", "mask": 24,
		"dhcp": "yes", "off": false, "dns": ["1.1.1.1", 53], "one": "9.9.9.9",
		"bonds": {"b1": {}, "b0": {"x": 1}}}, "null": null}`)
	net, err := root.Map("net")
	if err != nil || net.Path != "net" {
		t.Fatalf("Map(net) = %+v, %v", net, err)
	}
	if s, err := net.Str("name"); s != "eth0" || err != nil {
		t.Errorf("Str(name) = %q, %v", s, err)
	}
	if s, err := net.Str("mask"); s != "24" || err != nil {
		t.Errorf("Str(mask) = %q, %v (numbers are text too)", s, err)
	}
	if s, err := net.Str("missing"); s != "" || err != nil {
		t.Errorf("Str(missing) = %q, %v", s, err)
	}
	if n, err := net.Int("mtu"); n != 1500 || err != nil {
		t.Errorf("Int(mtu) = %d, %v", n, err)
	}
	if n, err := net.Int("vlan"); n != 7 || err != nil {
		t.Errorf("Int(vlan) = %d, %v", n, err)
	}
	if b, err := net.Bool("dhcp"); !b || err != nil {
		t.Errorf("Bool(dhcp) = %v, %v", b, err)
	}
	if b, err := net.Bool("off"); b || err != nil {
		t.Errorf("Bool(off) = %v, %v", b, err)
	}
	if l, err := net.StrList("dns"); !reflect.DeepEqual(l, []string{"1.1.1.1", "53"}) || err != nil {
		t.Errorf("StrList(dns) = %q, %v", l, err)
	}
	if l, err := net.StrList("one"); !reflect.DeepEqual(l, []string{"9.9.9.9"}) || err != nil {
		t.Errorf("StrList(one) = %q, %v", l, err)
	}
	if l, err := net.List("missing"); l != nil || err != nil {
		t.Errorf("List(missing) = %v, %v", l, err)
	}
	bonds, names, err := net.Entries("bonds")
	if err != nil || !reflect.DeepEqual(names, []string{"b0", "b1"}) || bonds[0].Path != "net.bonds.b0" {
		t.Errorf("Entries(bonds) = %+v %q, %v", bonds, names, err)
	}
	if m, err := root.Map("null"); err != nil || m.Values == nil || len(m.Values) != 0 {
		t.Errorf("Map(null) = %+v, %v; want an empty mapping", m, err)
	}
	if k := root.Keys(); !reflect.DeepEqual(k, []string{"net", "null"}) {
		t.Errorf("Keys() = %q", k)
	}
}

// TestErrorsNameTheField: the whole point of the package.
func TestErrorsNameTheField(t *testing.T) {
	root := decode(t, `{"a": {"s": [1], "n": -1, "q": "x", "b": "maybe", "l": "x",
		"sl": ["ok", {}], "m": 3, "e": {"k": 1}, "f": true}}`)
	a, _ := root.Map("a")
	for _, c := range []struct {
		what string
		err  error
		want string
	}{
		{"Str", second(a.Str("s")), "a.s: want a string, got a list"},
		{"Int negative", second(a.Int("n")), "a.n: -1 is not a non-negative integer"},
		{"Int string", second(a.Int("q")), `a.q: "x" is not a non-negative integer`},
		{"Int bool", second(a.Int("f")), "a.f: want an integer, got a boolean"},
		{"Bool", second(a.Bool("b")), "a.b: want true or false, got maybe"},
		{"List", second(a.List("l")), "a.l: want a list, got a string"},
		{"StrList", second(a.StrList("sl")), "a.sl[1]: want a string, got a mapping"},
		{"Map", second(a.Map("m")), "a.m: want a mapping, got a number"},
		{"Entries", third(a.Entries("e")), "a.e.k: want a mapping, got a number"},
	} {
		if c.err == nil || c.err.Error() != c.want {
			t.Errorf("%s: err = %v, want %q", c.what, c.err, c.want)
		}
	}
	if _, err := AsMap("top", []any{}); err == nil || err.Error() != "top: want a mapping, got a list" {
		t.Errorf("AsMap(list) = %v", err)
	}
}

func second[T any](_ T, err error) error        { return err }
func third[T, U any](_ T, _ U, err error) error { return err }

func TestJoin(t *testing.T) {
	if Join("", "a") != "a" || Join("a[0]", "b") != "a[0].b" {
		t.Error(Join("", "a"), Join("a[0]", "b"))
	}
}
