package datasource

import (
	"sync"

	"github.com/kilnproject/kiln/initd/mounts"
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
	infos, _ := mounts.ReadInfo(mountinfo)
	for _, in := range infos {
		if in.Source == device && in.Root == "/" {
			return in.MountPoint
		}
	}
	return ""
}
