package initd

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
)

// The kernel's tick profiler (profile=N on the command line, see
// Documentation/admin-guide/kernel-parameters) counts timer ticks per
// 2^N bytes of kernel text in /proc/profile. With kiln.debug, initd resets
// it when it starts and names the busiest kernel functions at ready: under
// emulation most of initd's time is the kernel's (module insertion,
// driver probes, page zeroing), and this says which part.

const procProfile = "/proc/profile"

// resetKernelProfile zeroes the counters so the report covers initd only.
// Writing anything resets; no profiler, nothing to do.
func resetKernelProfile() {
	if f, err := os.OpenFile(procProfile, os.O_WRONLY, 0); err == nil {
		f.Write([]byte{0})
		f.Close()
	}
}

// kernelTop says which n kernel functions took the most ticks in prof
// (/proc/profile's contents), named from kallsyms, and the share of ticks
// in module code (the profiler's last counter: addresses past the
// kernel's text).
func kernelTop(prof []byte, kallsyms string, n int) (string, error) {
	step, counts, err := parseProfile(prof)
	if err != nil {
		return "", fmt.Errorf("%s: %w", procProfile, err)
	}
	f, err := os.Open(kallsyms)
	if err != nil {
		return "", err
	}
	defer f.Close()
	syms, err := parseKallsyms(f)
	if err != nil {
		return "", fmt.Errorf("%s: %w", kallsyms, err)
	}
	return profileTop(step, counts, syms, n)
}

// parseProfile splits /proc/profile: the sample step (bytes of text per
// counter), then one 32-bit counter per step in the CPU's byte order.
func parseProfile(b []byte) (step uint32, counts []uint32, err error) {
	if len(b) < 8 || len(b)%4 != 0 {
		return 0, nil, fmt.Errorf("%d bytes: not a profile", len(b))
	}
	step = binary.NativeEndian.Uint32(b)
	if step == 0 || step&(step-1) != 0 {
		return 0, nil, fmt.Errorf("sample step %d: not a power of two", step)
	}
	counts = make([]uint32, len(b)/4-1)
	for i := range counts {
		counts[i] = binary.NativeEndian.Uint32(b[4+4*i:])
	}
	return step, counts, nil
}

type ksym struct {
	addr uint64
	name string
}

// parseKallsyms reads the text symbols ("address type name [module]") of
// the kernel proper, sorted by address. All-zero addresses mean the
// reader may not see them (kptr_restrict).
func parseKallsyms(r io.Reader) ([]ksym, error) {
	var out []ksym
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 3 || len(f) > 3 || (f[1] != "t" && f[1] != "T") {
			continue // data, or a module's symbol (a fourth field)
		}
		a, err := strconv.ParseUint(f[0], 16, 64)
		if err != nil {
			return nil, fmt.Errorf("address %q: %w", f[0], err)
		}
		out = append(out, ksym{a, f[2]})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].addr < out[j].addr })
	if len(out) == 0 || out[len(out)-1].addr == 0 {
		return nil, fmt.Errorf("no symbol addresses (kptr_restrict?)")
	}
	return out, nil
}

// profileTop attributes counter i to the symbol at or below
// _stext + i*step, as readprofile does.
func profileTop(step uint32, counts []uint32, syms []ksym, n int) (string, error) {
	var stext uint64
	for _, s := range syms {
		if s.name == "_stext" {
			stext = s.addr
		}
	}
	if stext == 0 {
		return "", fmt.Errorf("no _stext symbol")
	}
	var total, modules uint64
	by := map[string]uint64{}
	for i, c := range counts {
		if c == 0 {
			continue
		}
		total += uint64(c)
		if i == len(counts)-1 {
			modules += uint64(c)
			continue
		}
		addr := stext + uint64(i)*uint64(step)
		j := sort.Search(len(syms), func(k int) bool { return syms[k].addr > addr }) - 1
		name := "?"
		if j >= 0 {
			name = syms[j].name
		}
		by[name] += uint64(c)
	}
	if total == 0 {
		return "kernel profile: no ticks", nil
	}
	names := topKeys(by, n)
	pct := func(c uint64) string { return fmt.Sprintf("%.0f%%", 100*float64(c)/float64(total)) }
	parts := []string{fmt.Sprintf("kernel profile since initd started: %d ticks", total)}
	if modules > 0 {
		parts = append(parts, "module code "+pct(modules))
	}
	for _, k := range names {
		parts = append(parts, k+" "+pct(by[k]))
	}
	return strings.Join(parts, ", "), nil
}
