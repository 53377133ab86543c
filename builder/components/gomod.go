package components

import (
	"bufio"
	"bytes"
	"fmt"
	"strings"
)

// modFile is what Build needs from a component's go.mod: the versions it
// requires and the packages its tool directives name.
type modFile struct {
	module   string
	requires map[string]string // module path -> version
	tools    map[string]bool
}

// parseGoMod reads the require and tool directives (single-line and block
// forms). It is not a full go.mod parser: the go command validates the rest.
func parseGoMod(name string, data []byte) (*modFile, error) {
	m := &modFile{requires: map[string]string{}, tools: map[string]bool{}}
	block := ""
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if i := strings.Index(line, "//"); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if block != "" {
			if f[0] == ")" {
				block = ""
				continue
			}
			if err := m.directive(block, f); err != nil {
				return nil, fmt.Errorf("%s:%d: %v", name, n, err)
			}
			continue
		}
		if len(f) == 2 && f[1] == "(" {
			block = f[0]
			continue
		}
		if err := m.directive(f[0], f[1:]); err != nil {
			return nil, fmt.Errorf("%s:%d: %v", name, n, err)
		}
	}
	if m.module == "" {
		return nil, fmt.Errorf("%s: no module directive", name)
	}
	return m, sc.Err()
}

func (m *modFile) directive(verb string, args []string) error {
	switch verb {
	case "module":
		if len(args) != 1 {
			return fmt.Errorf("module: want one path")
		}
		m.module = strings.Trim(args[0], `"`)
	case "require":
		if len(args) != 2 {
			return fmt.Errorf("require: want module and version, got %q", strings.Join(args, " "))
		}
		m.requires[args[0]] = args[1]
	case "tool":
		if len(args) != 1 {
			return fmt.Errorf("tool: want one package, got %q", strings.Join(args, " "))
		}
		m.tools[args[0]] = true
	}
	return nil
}

// sumOf returns the h1 digest go.sum records for module@version's tree.
func sumOf(gosum []byte, module, version string) string {
	for _, line := range strings.Split(string(gosum), "\n") {
		f := strings.Fields(line)
		if len(f) == 3 && f[0] == module && f[1] == version {
			return f[2]
		}
	}
	return ""
}
