package datasource

import (
	"bufio"
	"os"
	"strings"
	"sync"
)

// Shared wraps vols for one discovery: the volumes are listed once (each
// listing opens every block device, and opening a CD-ROM sends it
// commands), and a volume mounted already, such as the boot ISO holding
// the system image, is read where it is instead of being mounted again by
// each source that looks at it (NoCloud, config-2, OVF and the boot
// medium all may).
func Shared(vols Volumes) Volumes {
	return &shared{inner: vols, mountinfo: "/proc/self/mountinfo"}
}

type shared struct {
	inner     Volumes
	mountinfo string

	once sync.Once
	list []Volume
	err  error
}

func (s *shared) List() ([]Volume, error) {
	s.once.Do(func() { s.list, s.err = s.inner.List() })
	return s.list, s.err
}

func (s *shared) Mount(v Volume) (string, func(), error) {
	if dir := mountedAt(s.mountinfo, v.Device); dir != "" {
		return dir, func() {}, nil
	}
	return s.inner.Mount(v)
}

// mountedAt returns where device's whole filesystem is mounted, per a
// /proc/PID/mountinfo listing ("" if nowhere).
func mountedAt(mountinfo, device string) string {
	f, err := os.Open(mountinfo)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// id parent maj:min root mountpoint options [optional...] - fstype source superoptions
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		pf, qf := strings.Fields(pre), strings.Fields(post)
		if len(pf) < 5 || len(qf) < 2 || qf[1] != device || pf[3] != "/" {
			continue
		}
		return unescapeMountinfo(pf[4])
	}
	return ""
}

// unescapeMountinfo undoes the kernel's octal escapes (\040 for a space).
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && isOctal(s[i+1]) && isOctal(s[i+2]) && isOctal(s[i+3]) {
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }
