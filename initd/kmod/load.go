package kmod

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// ErrNotFound means a module is in neither modules.dep nor modules.builtin.
var ErrNotFound = errors.New("not in modules.dep")

// Loader loads modules from one /lib/modules/KVER directory.
type Loader struct {
	Dir     string // /lib/modules/KVER
	Deps    Deps
	Aliases *Aliases
	Builtin map[string]bool
	Log     func(format string, args ...any)

	// insert loads one module file; finit_module unless a test replaces it.
	insert func(path string) error
	loaded map[string]bool
}

// Open reads modules.dep, modules.alias and (if present) modules.builtin
// from dir.
func Open(dir string) (*Loader, error) {
	l := &Loader{Dir: dir, Builtin: map[string]bool{}, insert: finit}
	f, err := os.Open(filepath.Join(dir, "modules.dep"))
	if err != nil {
		return nil, err
	}
	l.Deps, err = ParseDep(f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.Name(), err)
	}
	if f, err = os.Open(filepath.Join(dir, "modules.alias")); err != nil {
		return nil, err
	}
	l.Aliases, err = ParseAlias(f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.Name(), err)
	}
	if f, err := os.Open(filepath.Join(dir, "modules.builtin")); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if s := strings.TrimSpace(sc.Text()); s != "" {
				l.Builtin[Name(s)] = true
			}
		}
		f.Close()
	}
	return l, nil
}

func (l *Loader) logf(format string, args ...any) {
	if l.Log != nil {
		l.Log(format, args...)
	}
}

// Load loads name after its dependencies. Already loaded and built-in
// modules are fine (EEXIST); a module this kernel does not know is
// ErrNotFound.
func (l *Loader) Load(name string) error {
	name = Name(name)
	if l.Builtin[name] {
		return nil
	}
	order, err := l.Deps.Order(name)
	if err != nil {
		return err
	}
	if l.loaded == nil {
		l.loaded = map[string]bool{}
	}
	for _, m := range order {
		if l.loaded[m] {
			continue
		}
		p := filepath.Join(l.Dir, l.Deps[m].Path)
		if err := l.insert(p); err != nil {
			return fmt.Errorf("load module %s (%s): %w", m, p, err)
		}
		l.loaded[m] = true
		l.logf("module %s loaded", m)
	}
	return nil
}

// LoadAlias loads every module whose alias matches modalias. It returns how
// many it loaded now (not counting earlier loads) and the failures.
func (l *Loader) LoadAlias(modalias string) (int, error) {
	var errs []error
	n := 0
	for _, m := range l.Aliases.Match(modalias) {
		if l.loaded[m] || l.Builtin[m] {
			continue
		}
		if err := l.Load(m); err != nil {
			errs = append(errs, err)
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}

// Loaded reports whether Load inserted name (or found it loaded).
func (l *Loader) Loaded(name string) bool { return l.loaded[Name(name)] }

func finit(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	flags := 0
	if strings.HasSuffix(path, ".xz") || strings.HasSuffix(path, ".zst") || strings.HasSuffix(path, ".gz") {
		flags |= 4 // MODULE_INIT_COMPRESSED_FILE: the kernel decompresses
	}
	err = unix.FinitModule(int(f.Fd()), "", flags)
	if err == unix.EEXIST {
		return nil
	}
	return err
}
