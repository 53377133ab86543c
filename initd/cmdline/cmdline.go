// Package cmdline parses the kernel command line into the kiln.* keys initd
// reads (see docs/boot-contract.md).
package cmdline

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Cmdline maps each parameter to its value; a bare flag maps to "".
// When a key repeats, the last occurrence wins (as the kernel does for console=).
type Cmdline map[string]string

// DefaultTimeout is how long initd waits for the boot medium without kiln.timeout.
const DefaultTimeout = 30 * time.Second

// Parse splits a command line the way the kernel does: whitespace separates
// parameters, double quotes may wrap a value (or a whole parameter) with spaces.
func Parse(s string) Cmdline {
	c := Cmdline{}
	for _, p := range Split(s) {
		k, v, _ := strings.Cut(p, "=")
		if k == "" {
			continue
		}
		c[k] = v
	}
	return c
}

// Split returns the parameters of a command line in order, quotes removed,
// repeats kept (module options may repeat; Parse keeps the last).
func Split(s string) []string {
	var out []string
	var cur strings.Builder
	inQuote, have := false, false
	for _, r := range s {
		switch {
		case r == '"':
			inQuote = !inQuote
			have = true
		case !inQuote && (r == ' ' || r == '\t' || r == '\n'):
			if have {
				out = append(out, cur.String())
				cur.Reset()
				have = false
			}
		default:
			cur.WriteRune(r)
			have = true
		}
	}
	if have {
		out = append(out, cur.String())
	}
	return out
}

// Read parses the command line file (normally /proc/cmdline).
func Read(path string) (Cmdline, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read kernel command line %s: %w", path, err)
	}
	return Parse(string(b)), nil
}

// Has reports whether key was given, with or without a value.
func (c Cmdline) Has(key string) bool { _, ok := c[key]; return ok }

// Label is kiln.label: the ISO9660 volume ID of the boot medium.
func (c Cmdline) Label() string { return c["kiln.label"] }

// Slot is kiln.slot upper-cased, "A" when absent.
func (c Cmdline) Slot() (string, error) {
	s := strings.ToUpper(c["kiln.slot"])
	switch s {
	case "":
		return "A", nil
	case "A", "B":
		return s, nil
	}
	return "", fmt.Errorf("kernel command line: kiln.slot=%q: want A or B", c["kiln.slot"])
}

// Debug reports whether kiln.debug was given (kiln.debug=0 turns it off).
func (c Cmdline) Debug() bool {
	v, ok := c["kiln.debug"]
	return ok && v != "0" && v != "false"
}

// Timeout is kiln.timeout in seconds (fractions allowed), DefaultTimeout when absent.
func (c Cmdline) Timeout() (time.Duration, error) {
	v, ok := c["kiln.timeout"]
	if !ok || v == "" {
		return DefaultTimeout, nil
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f <= 0 {
		return DefaultTimeout, fmt.Errorf("kernel command line: kiln.timeout=%q: want a positive number of seconds", v)
	}
	return time.Duration(f * float64(time.Second)), nil
}
