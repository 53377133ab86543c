package mounts

import (
	"os"
	"strings"
)

// Info is one line of /proc/PID/mountinfo.
type Info struct {
	Root       string // the mounted filesystem's directory ("/" for all of it)
	MountPoint string
	FSType     string
	Source     string // e.g. /dev/sr0
}

// ReadInfo reads a mountinfo file, in mount order:
// "id parent maj:min root mountpoint options [optional...] - fstype source superoptions".
func ReadInfo(path string) ([]Info, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []Info
	for _, line := range strings.Split(string(b), "\n") {
		pre, post, _ := strings.Cut(line, " - ")
		pf, qf := strings.Fields(pre), strings.Fields(post)
		if len(pf) < 5 {
			continue
		}
		in := Info{Root: unescape(pf[3]), MountPoint: unescape(pf[4])}
		if len(qf) >= 2 {
			in.FSType, in.Source = qf[0], unescape(qf[1])
		}
		out = append(out, in)
	}
	return out, nil
}

// unescape undoes mountinfo's octal escapes (\040 for space).
func unescape(s string) string {
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
