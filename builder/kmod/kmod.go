// Package kmod picks the kernel modules an image needs out of a kernel
// package's lib/modules/<kver> and writes them with regenerated depmod
// files (modules.dep, modules.alias, modules.softdep, modules.order), so no
// depmod has to run at build time or on the node.
//
// Dependencies come from each module's .modinfo (depends=, softdep=), which
// is what depmod derives from symbols at kernel build time.
package kmod

import (
	"bufio"
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Module is one loadable kernel module.
type Module struct {
	Name    string   // normalised (underscores), from .modinfo name=
	Path    string   // relative to lib/modules/<kver>, uncompressed name: kernel/fs/fat/vfat.ko
	Depends []string // direct hard dependencies (depends=)
	Aliases []string // alias= patterns
	SoftPre []string // softdep pre: names (modules or aliases), loaded before this one

	softdeps []string // raw softdep= values for modules.softdep
	source   string   // host path, possibly compressed
	order    int      // position in modules.order; modules not listed sort after
}

// Index is every module of one kernel, by name.
type Index struct {
	KernelVersion string
	Dir           string

	modules  map[string]*Module
	builtin  map[string]bool // normalised names of built-in modules
	files    map[string][]byte
	aliasIdx map[string][]string // exact (non-wildcard) alias -> module names
}

// Files copied verbatim into the subset when present.
var copiedFiles = []string{"modules.builtin", "modules.builtin.modinfo"}

// Scan reads every module under modulesDir (an extracted lib/modules/<kver>;
// its base name is the kernel version).
func Scan(modulesDir string) (*Index, error) {
	ix := &Index{
		KernelVersion: filepath.Base(filepath.Clean(modulesDir)),
		Dir:           modulesDir,
		modules:       map[string]*Module{},
		builtin:       map[string]bool{},
		files:         map[string][]byte{},
		aliasIdx:      map[string][]string{},
	}
	for _, name := range copiedFiles {
		b, err := os.ReadFile(filepath.Join(modulesDir, name))
		if err == nil {
			ix.files[name] = b
		} else if !os.IsNotExist(err) {
			return nil, fmt.Errorf("kmod: %w", err)
		}
	}
	for _, line := range lines(ix.files["modules.builtin"]) {
		ix.builtin[nameFromPath(line)] = true
	}
	order := map[string]int{}
	orderData, err := os.ReadFile(filepath.Join(modulesDir, "modules.order"))
	if err != nil && !os.IsNotExist(err) {
		return nil, fmt.Errorf("kmod: %w", err)
	}
	for i, line := range lines(orderData) {
		order[stripCompression(line)] = i
	}

	err = filepath.WalkDir(modulesDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if _, ok := moduleExt(d.Name()); !ok || d.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(modulesDir, p)
		rel = filepath.ToSlash(rel)
		ko, err := readModule(p)
		if err != nil {
			return err
		}
		mi, err := parseModinfo(p, ko)
		if err != nil {
			return err
		}
		m := &Module{
			Name:     Normalize(mi.first("name")),
			Path:     stripCompression(rel),
			Aliases:  mi["alias"],
			SoftPre:  mi.softdepPre(),
			softdeps: mi["softdep"],
			source:   p,
			order:    len(order),
		}
		if m.Name == "" { // kernels before 4.x have no name= field
			m.Name = nameFromPath(rel)
		}
		if i, ok := order[m.Path]; ok {
			m.order = i
		}
		for _, dep := range strings.Split(mi.first("depends"), ",") {
			if dep != "" {
				m.Depends = append(m.Depends, Normalize(dep))
			}
		}
		if old, dup := ix.modules[m.Name]; dup {
			return fmt.Errorf("kmod: module %s found twice: %s and %s", m.Name, old.source, p)
		}
		ix.modules[m.Name] = m
		for _, a := range m.Aliases {
			if !strings.ContainsAny(a, "*?[") {
				ix.aliasIdx[a] = append(ix.aliasIdx[a], m.Name)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("kmod: scan %s: %w", modulesDir, err)
	}
	for _, names := range ix.aliasIdx {
		sort.Strings(names)
	}
	return ix, nil
}

// Module returns the module called name ('-' or '_'), or nil.
func (ix *Index) Module(name string) *Module { return ix.modules[Normalize(name)] }

// Builtin reports whether name is compiled into the kernel.
func (ix *Index) Builtin(name string) bool { return ix.builtin[Normalize(name)] }

// Len is the number of loadable modules.
func (ix *Index) Len() int { return len(ix.modules) }

func lines(b []byte) []string {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return out
}

func stripCompression(p string) string {
	for _, ext := range compressedExt {
		if s, ok := strings.CutSuffix(p, ext); ok {
			return s + ".ko"
		}
	}
	return p
}

// nameFromPath turns kernel/drivers/usb/storage/usb-storage.ko[.xz] into usb_storage.
func nameFromPath(p string) string {
	base := p[strings.LastIndex(p, "/")+1:]
	if ext, ok := moduleExt(base); ok {
		base = strings.TrimSuffix(base, ext)
	}
	return Normalize(base)
}
