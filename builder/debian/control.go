package debian

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// stanza is one deb822 paragraph. Field names are case-insensitive
// (deb822(5)), so keys are stored lower-cased. A multi-line value keeps its
// continuation lines, joined by "\n" with the leading blank removed.
type stanza map[string]string

// readStanzas calls fn for each paragraph of r; line is the 1-based line
// number where the paragraph starts, for error messages.
func readStanzas(r io.Reader, fn func(st stanza, line int) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 16*1024*1024)
	st := stanza{}
	var last string
	start, n := 0, 0
	flush := func() error {
		if len(st) == 0 {
			return nil
		}
		err := fn(st, start)
		st, last = stanza{}, ""
		return err
	}
	for sc.Scan() {
		n++
		line := sc.Text()
		switch {
		case strings.TrimSpace(line) == "":
			if err := flush(); err != nil {
				return err
			}
		case line[0] == '#':
			// comment (allowed in sources files)
		case line[0] == ' ' || line[0] == '\t':
			if last == "" {
				return fmt.Errorf("line %d: continuation line without a field", n)
			}
			st[last] += "\n" + strings.TrimSpace(line)
		default:
			name, value, ok := strings.Cut(line, ":")
			if !ok || name == "" {
				return fmt.Errorf("line %d: %q is not a field", n, line)
			}
			if len(st) == 0 {
				start = n
			}
			last = strings.ToLower(name)
			st[last] = strings.TrimSpace(value)
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return flush()
}
