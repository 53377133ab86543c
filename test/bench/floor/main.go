// Command floor is a stand-in PID 1 for measuring what the kernel alone
// needs to reach the boot medium: it inserts the modules named by
// floor.mods= on the kernel command line, one after the other, in that
// order (dependencies first, each with async_probe; libata with the VM
// default initd gives it), then waits for floor.wait= (a /sys path, such
// as /sys/class/block/sr0) and prints the times. test/bench/floor.sh puts
// it in place of initd in a kiln initramfs; initd's own figure for the
// same boot is its "medium found" time.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	os.MkdirAll("/proc", 0o555)
	unix.Mount("proc", "/proc", "proc", 0, "")
	unix.Mount("sysfs", "/sys", "sysfs", 0, "")
	unix.Mount("devtmpfs", "/dev", "devtmpfs", 0, "")
	con, err := os.OpenFile("/dev/console", os.O_WRONLY, 0)
	if err != nil {
		con = os.Stdout
	}
	t0 := uptime()
	fmt.Fprintf(con, "floor: started at %.3fs\n", t0)
	cmdline, _ := os.ReadFile("/proc/cmdline")
	var mods []string
	wait := ""
	for _, f := range strings.Fields(string(cmdline)) {
		if v, ok := strings.CutPrefix(f, "floor.mods="); ok {
			mods = strings.Split(v, ",")
		}
		if v, ok := strings.CutPrefix(f, "floor.wait="); ok {
			wait = v
		}
	}
	paths, err := modulePaths()
	if err != nil {
		fmt.Fprintf(con, "floor: %v\n", err)
	}
	for _, m := range mods {
		start := time.Now()
		err := insert(paths[m], m)
		fmt.Fprintf(con, "floor: module %s: %v in %dms\n", m, errOrOK(err), time.Since(start).Milliseconds())
	}
	fmt.Fprintf(con, "floor: modules inserted at +%.3fs\n", uptime()-t0)
	if wait != "" {
		for i := 0; i < 6000; i++ {
			if _, err := os.Stat(wait); err == nil {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		fmt.Fprintf(con, "floor: %s at +%.3fs\n", wait, uptime()-t0)
	}
	fmt.Fprintf(con, "floor: done\n")
	for {
		time.Sleep(time.Hour)
	}
}

func insert(path, name string) error {
	if path == "" {
		return fmt.Errorf("not in modules.dep")
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	params := "async_probe"
	if name == "libata" {
		params += " force=nodbdelay" // as initd in a VM (initd/hypervisor.go)
	}
	if err := unix.FinitModule(int(f.Fd()), params, 0); err != nil && err != unix.EEXIST {
		return err
	}
	return nil
}

// modulePaths maps module names to their files from modules.dep.
func modulePaths() (map[string]string, error) {
	deps, _ := filepath.Glob("/lib/modules/*/modules.dep")
	if len(deps) != 1 {
		return nil, fmt.Errorf("want one /lib/modules/*/modules.dep, found %d", len(deps))
	}
	data, err := os.ReadFile(deps[0])
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, l := range strings.Split(string(data), "\n") {
		if p, _, ok := strings.Cut(l, ":"); ok {
			n := strings.ReplaceAll(strings.TrimSuffix(filepath.Base(p), ".ko"), "-", "_")
			out[n] = filepath.Join(filepath.Dir(deps[0]), p)
		}
	}
	return out, nil
}

func uptime() float64 {
	b, _ := os.ReadFile("/proc/uptime")
	var u float64
	fmt.Sscanf(string(b), "%f", &u)
	return u
}

func errOrOK(err error) string {
	if err != nil {
		return err.Error()
	}
	return "ok"
}
