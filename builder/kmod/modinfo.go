package kmod

import (
	"bytes"
	"debug/elf"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// Compressed module suffixes Debian and other distributions use.
var compressedExt = []string{".ko.xz", ".ko.zst"}

// moduleExt reports whether name is a kernel module file and, if so, the
// suffix after the module's base name (".ko", ".ko.xz", ".ko.zst").
func moduleExt(name string) (string, bool) {
	for _, ext := range append([]string{".ko"}, compressedExt...) {
		if strings.HasSuffix(name, ext) {
			return ext, true
		}
	}
	return "", false
}

// readModule returns the uncompressed ELF bytes of a module file.
func readModule(path string) ([]byte, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	switch {
	case strings.HasSuffix(path, ".ko.xz"):
		r, err := xz.NewReader(bytes.NewReader(raw))
		if err != nil {
			return nil, fmt.Errorf("%s: xz: %w", path, err)
		}
		out, err := io.ReadAll(r)
		if err != nil {
			return nil, fmt.Errorf("%s: xz: %w", path, err)
		}
		return out, nil
	case strings.HasSuffix(path, ".ko.zst"):
		d, err := zstd.NewReader(bytes.NewReader(raw))
		if err != nil {
			return nil, fmt.Errorf("%s: zstd: %w", path, err)
		}
		defer d.Close()
		out, err := io.ReadAll(d)
		if err != nil {
			return nil, fmt.Errorf("%s: zstd: %w", path, err)
		}
		return out, nil
	}
	return raw, nil
}

// modinfo is the parsed .modinfo section: "key=value" strings separated by
// NUL bytes, keys repeating (alias, softdep, parm...).
type modinfo map[string][]string

func parseModinfo(path string, ko []byte) (modinfo, error) {
	f, err := elf.NewFile(bytes.NewReader(ko))
	if err != nil {
		return nil, fmt.Errorf("%s: not an ELF module: %w", path, err)
	}
	defer f.Close()
	s := f.Section(".modinfo")
	if s == nil {
		return nil, fmt.Errorf("%s: no .modinfo section", path)
	}
	data, err := s.Data()
	if err != nil {
		return nil, fmt.Errorf("%s: .modinfo: %w", path, err)
	}
	mi := modinfo{}
	for _, kv := range bytes.Split(data, []byte{0}) {
		k, v, ok := bytes.Cut(kv, []byte("="))
		if !ok {
			continue // alignment padding between entries
		}
		mi[string(k)] = append(mi[string(k)], string(v))
	}
	return mi, nil
}

func (mi modinfo) first(key string) string {
	if v := mi[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// softdepPre returns the "pre:" modules of every softdep= entry
// (format: "pre: a b post: c").
func (mi modinfo) softdepPre() []string {
	var out []string
	for _, sd := range mi["softdep"] {
		pre := false
		for _, f := range strings.Fields(sd) {
			switch f {
			case "pre:":
				pre = true
			case "post:":
				pre = false
			default:
				if pre {
					out = append(out, f)
				}
			}
		}
	}
	return out
}

// Normalize returns a module name as the kernel spells it: '-' becomes '_'.
func Normalize(name string) string { return strings.ReplaceAll(name, "-", "_") }
