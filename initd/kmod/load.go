package kmod

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/kilnproject/kiln/internal/modindex"
	"golang.org/x/sys/unix"
)

// ErrNotFound means a module is in neither modules.dep nor modules.builtin.
var ErrNotFound = errors.New("not in modules.dep")

// Loader loads modules from one /lib/modules/KVER directory. Its methods
// may be called from several goroutines: each module is inserted once, and
// a load that needs a module another goroutine is inserting waits for it.
type Loader struct {
	Dir     string // /lib/modules/KVER
	Deps    Deps
	Aliases *Aliases
	Builtin map[string]bool
	Log     func(format string, args ...any)
	// Insert loads one module file with its parameters ("" or
	// AsyncProbe); nil means finit_module. Tests replace it.
	Insert func(path, params string) error
	// Options are the kernel command line's module parameters and
	// blacklist (ParseOptions).
	Options Options

	mu    sync.Mutex
	state map[string]*loadState
}

// loadState is one module's insertion: done is closed when it finished.
type loadState struct {
	done chan struct{}
	err  error
}

// Open reads modules.dep, modules.alias and (if present) modules.builtin
// from dir.
func Open(dir string) (*Loader, error) {
	l := &Loader{Dir: dir, Builtin: map[string]bool{}}
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

// Digest fingerprints dir's module index (modules.dep, modules.alias,
// modules.builtin; see modindex): two directories with the same digest
// match every device to the same modules, so a device handled with one
// need not be matched again with the other. The builder records it in
// initramfs.json and system.json, so a boot normally reads it there.
func Digest(dir string) (string, error) {
	return modindex.Digest(func(name string) ([]byte, error) {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if name == "modules.builtin" && errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return b, err
	})
}

func (l *Loader) logf(format string, args ...any) {
	if l.Log != nil {
		l.Log(format, args...)
	}
}

// MarkLoaded records modules the kernel already has (read from
// /proc/modules by ReadProcModules), so loading them again costs nothing:
// finit_module would read, verify and relocate the whole file before it
// says EEXIST.
func (l *Loader) MarkLoaded(names []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.state == nil {
		l.state = map[string]*loadState{}
	}
	for _, n := range names {
		n = Name(n)
		if _, ok := l.state[n]; !ok {
			st := &loadState{done: make(chan struct{})}
			close(st.done)
			l.state[n] = st
		}
	}
}

// ReadProcModules returns the module names in a /proc/modules listing
// ("name size refcount deps state address" lines).
func ReadProcModules(r io.Reader) ([]string, error) {
	var out []string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) > 0 {
			out = append(out, Name(f[0]))
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("/proc/modules: %w", err)
	}
	return out, nil
}

// AsyncProbe is the module parameter every module accepts (the kernel
// handles it) that asks for its drivers to probe devices asynchronously.
// It also spares finit_module the wait for all of the kernel's pending
// asynchronous work before it returns: without it, a module loaded while
// a disk controller scans its ports (ahci: a third of a second of link
// debouncing) returns only when the scan is done.
const AsyncProbe = "async_probe"

// Load loads name after its dependencies. Already loaded and built-in
// modules are fine (EEXIST); a module this kernel does not know is
// ErrNotFound.
func (l *Loader) Load(name string) error {
	_, err := l.load(name, "")
	return err
}

// LoadAsync is Load with AsyncProbe.
func (l *Loader) LoadAsync(name string) error {
	_, err := l.load(name, AsyncProbe)
	return err
}

// load is Load that also says whether this call inserted name itself.
func (l *Loader) load(name, params string) (bool, error) {
	name = Name(name)
	if l.Builtin[name] {
		return false, nil
	}
	order, err := l.Deps.Order(name)
	if err != nil {
		return false, err
	}
	inserted := false
	for _, m := range order {
		mine, err := l.insertOnce(m, params)
		if err != nil {
			return false, err
		}
		inserted = mine && m == name
	}
	return inserted, nil
}

// insertOnce inserts m unless it is loaded or being loaded; in that case
// it waits and returns the other insertion's result.
func (l *Loader) insertOnce(m, params string) (bool, error) {
	l.mu.Lock()
	if l.state == nil {
		l.state = map[string]*loadState{}
	}
	if st, ok := l.state[m]; ok {
		l.mu.Unlock()
		<-st.done
		return false, st.err
	}
	st := &loadState{done: make(chan struct{})}
	l.state[m] = st
	l.mu.Unlock()

	p := filepath.Join(l.Dir, l.Deps[m].Path)
	insert := l.Insert
	if insert == nil {
		insert = finit
	}
	if opt := l.Options.For(m); opt != "" {
		params = strings.TrimSpace(params + " " + opt)
		l.logf("module %s: parameters %q", m, opt)
	}
	start := time.Now()
	if err := insert(p, params); err != nil {
		st.err = fmt.Errorf("load module %s (%s): %w", m, p, err)
	} else {
		l.logf("module %s loaded in %dms", m, time.Since(start).Milliseconds())
	}
	close(st.done)
	return st.err == nil, st.err
}

// LoadAlias loads every module whose alias matches modalias, one after the
// other. It returns how many this call loaded (not counting modules loaded
// earlier or by other goroutines) and the failures.
func (l *Loader) LoadAlias(modalias string) (int, error) {
	return l.loadAlias(modalias, "")
}

// LoadAliasAsync is LoadAlias with AsyncProbe: the drivers bind their
// devices in the background, which then appear (with their uevents) a
// little after it returns.
func (l *Loader) LoadAliasAsync(modalias string) (int, error) {
	return l.loadAlias(modalias, AsyncProbe)
}

// Wanted reports whether modalias matches a module that is neither built
// in nor loaded or being loaded: the cheap test before starting a load,
// which most devices (ACPI, platform, DMI) fail.
func (l *Loader) Wanted(modalias string) bool {
	for _, m := range l.Aliases.Match(modalias) {
		if l.Builtin[m] {
			continue
		}
		l.mu.Lock()
		_, seen := l.state[m]
		l.mu.Unlock()
		if !seen {
			return true
		}
	}
	return false
}

func (l *Loader) loadAlias(modalias, params string) (int, error) {
	var errs []error
	n := 0
	for _, m := range l.Aliases.Match(modalias) {
		if l.Builtin[m] || l.Loaded(m) {
			continue
		}
		if l.Options.Blacklisted(m) {
			l.logf("module %s not loaded for %s: modprobe.blacklist", m, modalias)
			continue
		}
		mine, err := l.load(m, params)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if mine {
			n++
		}
	}
	return n, errors.Join(errs...)
}

// Loaded reports whether name is loaded (by this Loader, or found in
// /proc/modules).
func (l *Loader) Loaded(name string) bool {
	l.mu.Lock()
	st, ok := l.state[Name(name)]
	l.mu.Unlock()
	if !ok {
		return false
	}
	select {
	case <-st.done:
		return st.err == nil
	default:
		return false
	}
}

func finit(path, params string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	flags := 0
	if strings.HasSuffix(path, ".xz") || strings.HasSuffix(path, ".zst") || strings.HasSuffix(path, ".gz") {
		flags |= 4 // MODULE_INIT_COMPRESSED_FILE: the kernel decompresses
	}
	err = unix.FinitModule(int(f.Fd()), params, flags)
	if err == unix.EEXIST {
		return nil
	}
	return err
}
