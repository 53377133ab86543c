// Package profile loads and validates kiln build profiles (profiles/*.yaml).
//
// Parsing is strict: an unknown field, a value of the wrong type or an
// out-of-range value is an error that names the file, the line and the field.
package profile

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/kilnproject/kiln/builder/components"
)

// Profile is one build profile.
type Profile struct {
	Name        string            `yaml:"name"`
	Version     string            `yaml:"version"`
	Arches      []string          `yaml:"arches"`
	VolumeLabel string            `yaml:"volumeLabel"`
	Kernel      Kernel            `yaml:"kernel"`
	Packages    []string          `yaml:"packages"`
	Components  []string          `yaml:"components"`
	Images      []string          `yaml:"images"`
	Cmdline     string            `yaml:"cmdline"`
	Overlays    []string          `yaml:"overlays"`
	System      System            `yaml:"system"`
	Disk        Disk              `yaml:"disk"`
	Formats     []string          `yaml:"formats"`
	VM          VM                `yaml:"vm"`
	Debian      Debian            `yaml:"debian"`
	Labels      map[string]string `yaml:"labels"`

	// File is the path the profile was read from (for error messages).
	File string `yaml:"-"`
}

// Kernel pins the Debian kernel package per architecture and the module subsets.
type Kernel struct {
	Packages map[string]PackagePin `yaml:"packages"` // arch -> package
	// InitramfsModules are loaded before coldplug in the initramfs (boot-critical).
	InitramfsModules []string `yaml:"initramfsModules"`
	// Modules go into the system image (loaded on demand by coldplug / services).
	Modules []string `yaml:"modules"`
	// ArchModules adds modules for one architecture only.
	ArchModules map[string][]string `yaml:"archModules"`
}

// ModulesFor returns the module list for one architecture.
func (k Kernel) ModulesFor(arch string) []string {
	return append(append([]string(nil), k.Modules...), k.ArchModules[arch]...)
}

// PackagePin is a Debian package name with its exact version.
type PackagePin struct {
	Name    string `yaml:"name"`
	Version string `yaml:"version"`
}

// Disk holds the partition sizes of disk images.
type Disk struct {
	Size  Size `yaml:"size"`  // whole disk
	ESP   Size `yaml:"esp"`   // EFI system partition
	Sys   Size `yaml:"sys"`   // each of SYS-A and SYS-B
	State Size `yaml:"state"` // initial STATE partition; grown to fill the disk on first boot
}

// System tunes the system image (the squashfs).
type System struct {
	// BlockSize is the squashfs data block size: larger blocks compress big
	// binaries better (1MiB: about 7% smaller than 128KiB for Go binaries)
	// at the cost of reading more for a small random read.
	BlockSize Size `yaml:"blockSize"`
}

// VM holds the virtual hardware written into OVA descriptors.
type VM struct {
	CPUs      int  `yaml:"cpus"`
	MemoryMiB int  `yaml:"memoryMiB"`
	UEFI      bool `yaml:"uefi"`
}

// Debian selects the archive the inputs come from. Empty fields take the
// host's apt sources.
type Debian struct {
	Suites []string `yaml:"suites"` // keep only these suites of the mirror (default: all Debian suites)
}

// Size is a byte count written as "64MiB", "2GiB" or a plain number.
type Size int64

// UnmarshalYAML parses a size with an optional binary unit.
func (s *Size) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseSize(n.Value)
	if err != nil {
		return &fieldError{line: n.Line, msg: err.Error()}
	}
	*s = Size(v)
	return nil
}

func (s Size) String() string {
	switch {
	case s > 0 && s%(1<<30) == 0:
		return fmt.Sprintf("%dGiB", s>>30)
	case s > 0 && s%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", s>>20)
	}
	return strconv.FormatInt(int64(s), 10)
}

var sizeRe = regexp.MustCompile(`^([0-9]+)\s*(B|KiB|MiB|GiB|TiB)?$`)

// ParseSize parses "512", "64MiB", "2GiB".
func ParseSize(v string) (int64, error) {
	m := sizeRe.FindStringSubmatch(strings.TrimSpace(v))
	if m == nil {
		return 0, fmt.Errorf("%q is not a size (use a number with B, KiB, MiB, GiB or TiB)", v)
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q: %v", v, err)
	}
	shift := map[string]uint{"": 0, "B": 0, "KiB": 10, "MiB": 20, "GiB": 30, "TiB": 40}[m[2]]
	if n > (1<<62)>>shift {
		return 0, fmt.Errorf("%q is too large", v)
	}
	return n << shift, nil
}

type fieldError struct {
	line int
	msg  string
}

func (e *fieldError) Error() string { return e.msg }

// Known values.
var (
	KnownArches  = []string{"amd64", "arm64"}
	KnownFormats = []string{"iso", "raw", "qcow2", "vmdk", "ova", "vhd", "vhd-dynamic", "uki", "pxe"}
)

const MiB = 1 << 20

// Defaults fill fields the profile left empty.
func (p *Profile) defaults() {
	if p.VolumeLabel == "" {
		p.VolumeLabel = strings.ToUpper("KILN-" + p.Name)
		if len(p.VolumeLabel) > 32 {
			p.VolumeLabel = p.VolumeLabel[:32]
		}
	}
	if p.Disk.ESP == 0 {
		p.Disk.ESP = 64 * MiB
	}
	if p.Disk.State == 0 {
		p.Disk.State = 16 * MiB
	}
	if p.VM.CPUs == 0 {
		p.VM.CPUs = 2
	}
	if p.System.BlockSize == 0 {
		p.System.BlockSize = 128 << 10
	}
	if p.VM.MemoryMiB == 0 {
		p.VM.MemoryMiB = 2048
	}
	if len(p.Formats) == 0 {
		p.Formats = []string{"iso"}
	}
}

// Load reads and validates a profile file.
func Load(file string) (*Profile, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("profile: %w", err)
	}
	return Parse(file, data)
}

// Parse validates profile bytes; file is used in error messages only.
func Parse(file string, data []byte) (*Profile, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("%s: %s", file, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	p := &Profile{File: file}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(p); err != nil {
		return nil, yamlError(file, err)
	}
	p.defaults()
	v := validator{file: file, root: &root}
	p.validate(&v)
	if len(v.errs) > 0 {
		return nil, errors.Join(v.errs...)
	}
	return p, nil
}

// yamlError rewrites the yaml package's messages as "file:line: message".
func yamlError(file string, err error) error {
	var fe *fieldError
	if errors.As(err, &fe) {
		return fmt.Errorf("%s:%d: %s", file, fe.line, fe.msg)
	}
	var te *yaml.TypeError
	if errors.As(err, &te) {
		var out []error
		for _, e := range te.Errors {
			// e.g. "line 4: field colour not found in type profile.Profile"
			msg := e
			var line string
			if strings.HasPrefix(msg, "line ") {
				if i := strings.Index(msg, ": "); i > 0 {
					line, msg = strings.TrimPrefix(msg[:i], "line "), msg[i+2:]
				}
			}
			if m := regexp.MustCompile(`^field (\S+) not found in type \S+$`).FindStringSubmatch(msg); m != nil {
				msg = fmt.Sprintf("unknown field %q", m[1])
			}
			out = append(out, fmt.Errorf("%s:%s: %s", file, line, msg))
		}
		return errors.Join(out...)
	}
	return fmt.Errorf("%s: %s", file, strings.TrimPrefix(err.Error(), "yaml: "))
}

type validator struct {
	file string
	root *yaml.Node
	errs []error
}

// fail records an error for the dotted field path, with the line it is on.
func (v *validator) fail(field, format string, args ...any) {
	line := lineOf(v.root, strings.Split(field, "."))
	msg := fmt.Sprintf(format, args...)
	if line > 0 {
		v.errs = append(v.errs, fmt.Errorf("%s:%d: %s: %s", v.file, line, field, msg))
	} else {
		v.errs = append(v.errs, fmt.Errorf("%s: %s: %s", v.file, field, msg))
	}
}

// lineOf finds the line of a dotted path (map keys; list indexes as numbers).
func lineOf(n *yaml.Node, path []string) int {
	if n == nil {
		return 0
	}
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		return lineOf(n.Content[0], path)
	}
	if len(path) == 0 {
		return n.Line
	}
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == path[0] {
				if len(path) == 1 {
					return n.Content[i].Line
				}
				return lineOf(n.Content[i+1], path[1:])
			}
		}
	case yaml.SequenceNode:
		if i, err := strconv.Atoi(path[0]); err == nil && i < len(n.Content) {
			return lineOf(n.Content[i], path[1:])
		}
	}
	return n.Line
}

var (
	nameRe  = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)
	verRe   = regexp.MustCompile(`^[0-9A-Za-z][0-9A-Za-z.+~-]{0,63}$`)
	labelRe = regexp.MustCompile(`^[A-Z0-9_-]{1,32}$`)
	debRe   = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]+(:[a-z0-9]+)?(=[0-9A-Za-z.+~:-]+)?$`)
)

func (p *Profile) validate(v *validator) {
	if p.Name == "" {
		v.fail("name", "required")
	} else if !nameRe.MatchString(p.Name) {
		v.fail("name", "%q must be lower-case letters, digits and '-'", p.Name)
	}
	if p.Version == "" {
		v.fail("version", "required")
	} else if !verRe.MatchString(p.Version) {
		v.fail("version", "%q is not a valid version", p.Version)
	}
	if len(p.Arches) == 0 {
		v.fail("arches", "at least one of %s is required", strings.Join(KnownArches, ", "))
	}
	for i, a := range p.Arches {
		if !contains(KnownArches, a) {
			v.fail(fmt.Sprintf("arches.%d", i), "unknown architecture %q (allowed: %s)", a, strings.Join(KnownArches, ", "))
		}
	}
	if !labelRe.MatchString(p.VolumeLabel) {
		v.fail("volumeLabel", "%q must be 1-32 upper-case letters, digits, '_' or '-'", p.VolumeLabel)
	}
	for _, a := range p.Arches {
		pin, ok := p.Kernel.Packages[a]
		switch {
		case !ok:
			v.fail("kernel.packages", "no kernel package for arch %s", a)
		case pin.Name == "":
			v.fail("kernel.packages."+a+".name", "required")
		case pin.Version == "":
			v.fail("kernel.packages."+a+".version", "required: kernels are pinned to an exact Debian version")
		}
	}
	for a := range p.Kernel.Packages {
		if !contains(KnownArches, a) {
			v.fail("kernel.packages."+a, "unknown architecture %q (allowed: %s)", a, strings.Join(KnownArches, ", "))
		}
	}
	for i, pk := range p.Packages {
		if !debRe.MatchString(pk) {
			v.fail(fmt.Sprintf("packages.%d", i), "%q is not a Debian package name (name or name=version)", pk)
		}
	}
	known := components.KnownNames()
	for i, c := range p.Components {
		name, _, _ := strings.Cut(c, "@")
		if !contains(known, name) {
			v.fail(fmt.Sprintf("components.%d", i), "unknown component %q (known: %s)", c, strings.Join(known, ", "))
		}
	}
	for i, im := range p.Images {
		if !nameRe.MatchString(im) {
			v.fail(fmt.Sprintf("images.%d", i), "%q is not an image set name (kubeadm, or an addon such as metrics-server or kiln-probe)", im)
		}
	}
	seen := map[string]bool{}
	for i, f := range p.Formats {
		if !contains(KnownFormats, f) {
			v.fail(fmt.Sprintf("formats.%d", i), "unknown format %q (allowed: %s)", f, strings.Join(KnownFormats, ", "))
		}
		if seen[f] {
			v.fail(fmt.Sprintf("formats.%d", i), "format %q listed twice", f)
		}
		seen[f] = true
	}
	if p.Disk.ESP < 32*MiB {
		v.fail("disk.esp", "%s is too small: an ESP needs at least 32MiB (FAT32)", p.Disk.ESP)
	}
	if p.Disk.State < 1*MiB {
		v.fail("disk.state", "%s is too small: at least 1MiB", p.Disk.State)
	}
	for _, f := range []struct {
		name string
		v    Size
	}{{"disk.size", p.Disk.Size}, {"disk.esp", p.Disk.ESP}, {"disk.sys", p.Disk.Sys}, {"disk.state", p.Disk.State}} {
		if f.v%MiB != 0 {
			v.fail(f.name, "%d is not a multiple of 1MiB", int64(f.v))
		}
	}
	if p.Disk.Size != 0 && p.Disk.Sys != 0 {
		need := 2*MiB + p.Disk.ESP + 2*p.Disk.Sys + p.Disk.State
		if p.Disk.Size < need {
			v.fail("disk.size", "%s is smaller than its partitions (esp + 2 x sys + state + 2MiB of GPT = %s)", p.Disk.Size, need)
		}
	}
	if bs := p.System.BlockSize; bs < 4<<10 || bs > 1<<20 || bs&(bs-1) != 0 {
		v.fail("system.blockSize", "%s: want a power of two from 4KiB to 1MiB", bs)
	}
	if p.VM.CPUs < 1 || p.VM.CPUs > 256 {
		v.fail("vm.cpus", "%d is out of range 1..256", p.VM.CPUs)
	}
	if p.VM.MemoryMiB < 256 {
		v.fail("vm.memoryMiB", "%d is below the 256 MiB a node needs to boot", p.VM.MemoryMiB)
	}
	if strings.ContainsAny(p.Cmdline, "\n\x00") {
		v.fail("cmdline", "must be a single line")
	}
}

// HasFormat reports whether the profile asks for format f.
func (p *Profile) HasFormat(f string) bool { return contains(p.Formats, f) }

// HasArch reports whether the profile builds for arch a.
func (p *Profile) HasArch(a string) bool { return contains(p.Arches, a) }

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
