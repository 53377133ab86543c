package kmod

import (
	"os"
	"strings"

	"github.com/kilnproject/kiln/initd/cmdline"
)

// Options holds module parameters given on the kernel command line as
// "module.param=value" (or a bare "module.flag"), and the modules
// "modprobe.blacklist=a,b" keeps from loading for a device. The kernel
// applies such parameters only to built-in code; for a loadable module it
// is the loader's job, as modprobe does, so "libata.force=..." or
// "ahci.mobile_lpm_policy=..." behave the same whether a driver is built
// in or not.
type Options struct {
	params    map[string][]string // module name -> "param=value" in order
	blacklist map[string]bool
}

// ParseOptions reads the module options from the kernel command line's
// parameters (cmdline.Split). Module names are matched the way Name
// spells them ("-" and "_" are the same).
func ParseOptions(params []string) Options {
	o := Options{params: map[string][]string{}, blacklist: map[string]bool{}}
	for _, p := range params {
		key, val, hasVal := strings.Cut(p, "=")
		mod, param, ok := strings.Cut(key, ".")
		if !ok || mod == "" || param == "" {
			continue
		}
		mod = strings.ReplaceAll(mod, "-", "_")
		if mod == "modprobe" && param == "blacklist" {
			for _, m := range strings.Split(val, ",") {
				if m = strings.TrimSpace(m); m != "" {
					o.blacklist[Name(m)] = true
				}
			}
			continue
		}
		if !hasVal {
			o.params[mod] = append(o.params[mod], param)
			continue
		}
		if strings.ContainsAny(val, " \t") {
			val = `"` + val + `"`
		}
		o.params[mod] = append(o.params[mod], param+"="+val)
	}
	return o
}

// For returns name's parameters as finit_module takes them ("" if none).
func (o Options) For(name string) string {
	return strings.Join(o.params[Name(name)], " ")
}

// Blacklisted reports whether modprobe.blacklist names name.
func (o Options) Blacklisted(name string) bool { return o.blacklist[Name(name)] }

// ReadOptions reads the module options from a command line file
// (/proc/cmdline). A file that cannot be read gives no options.
func ReadOptions(path string) Options {
	b, err := os.ReadFile(path)
	if err != nil {
		return ParseOptions(nil)
	}
	return ParseOptions(cmdline.Split(string(b)))
}

// Default gives module the parameter param=value unless the command line
// set that parameter: the user's word wins.
func (o *Options) Default(module, param, value string) {
	module = Name(module)
	for _, p := range o.params[module] {
		if k, _, _ := strings.Cut(p, "="); k == param {
			return
		}
	}
	if o.params == nil {
		o.params = map[string][]string{}
	}
	o.params[module] = append(o.params[module], param+"="+value)
}
