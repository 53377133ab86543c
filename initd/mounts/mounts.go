// Package mounts holds initd's mount steps: the early pseudo filesystems,
// moving them into the new root, and switch_root.
package mounts

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// NeedFS, when set, is called by Mount with the filesystem type before
// mounting, so the modules behind it can be loaded first: on a kiln node
// the kernel's own request_module() has no modprobe to call, and loading
// every filesystem up front costs seconds of CPU under emulation.
var NeedFS func(fstype string)

// Mount mounts and names everything in its error.
func Mount(source, target, fstype string, flags uintptr, data string) error {
	if err := os.MkdirAll(target, 0o755); err != nil {
		return fmt.Errorf("mount %s on %s: %w", fstype, target, err)
	}
	if NeedFS != nil {
		NeedFS(fstype)
	}
	if err := unix.Mount(source, target, fstype, flags, data); err != nil {
		return fmt.Errorf("mount %s (%s) on %s: %w", source, fstype, target, err)
	}
	return nil
}

// IsMountpoint reports whether path is a mount point (its device differs
// from its parent's, or it is a bind of its parent's device at the root).
func IsMountpoint(path string) bool {
	var st, pst unix.Stat_t
	if unix.Lstat(path, &st) != nil || unix.Lstat(filepath.Join(path, ".."), &pst) != nil {
		return false
	}
	return st.Dev != pst.Dev || st.Ino == pst.Ino
}

// Early mounts /proc, /sys, /dev (devtmpfs) and /run (tmpfs), skipping the
// ones already there (the kernel may have mounted devtmpfs itself).
func Early() error {
	const nosuid, nodev, noexec = unix.MS_NOSUID, unix.MS_NODEV, unix.MS_NOEXEC
	for _, m := range []struct {
		src, target, fstype string
		flags               uintptr
		data                string
	}{
		{"proc", "/proc", "proc", nosuid | nodev | noexec, ""},
		{"sysfs", "/sys", "sysfs", nosuid | nodev | noexec, ""},
		{"devtmpfs", "/dev", "devtmpfs", nosuid, "mode=0755"},
		{"tmpfs", "/run", "tmpfs", nosuid | nodev, "mode=0755"},
	} {
		if IsMountpoint(m.target) {
			continue
		}
		if err := Mount(m.src, m.target, m.fstype, m.flags, m.data); err != nil {
			return err
		}
	}
	return nil
}

// Cgroup2 mounts the unified cgroup hierarchy at /sys/fs/cgroup.
func Cgroup2() error {
	if IsMountpoint("/sys/fs/cgroup") {
		return nil
	}
	return Mount("cgroup2", "/sys/fs/cgroup", "cgroup2", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "nsdelegate")
}

// MoveInto moves each mount (e.g. /dev, /proc, /sys, /run) to the same path
// under newRoot.
func MoveInto(newRoot string, dirs ...string) error {
	for _, d := range dirs {
		target := filepath.Join(newRoot, d)
		if err := os.MkdirAll(target, 0o755); err != nil && !errors.Is(err, unix.EROFS) {
			return fmt.Errorf("move %s: %w", d, err)
		}
		if err := unix.Mount(d, target, "", unix.MS_MOVE, ""); err != nil {
			return fmt.Errorf("move %s to %s: %w", d, target, err)
		}
	}
	return nil
}

// SwitchRoot makes newRoot the root filesystem: it moves newRoot onto /,
// chroots and changes directory to the new /. It returns the old root (the
// initramfs, a rootfs that cannot be unmounted) as an open directory: its
// files pin RAM until FreeRoot deletes them, which the caller may do in the
// background, or must do before exec.
func SwitchRoot(newRoot string) (*os.File, error) {
	var rootSt, newSt unix.Stat_t
	if err := unix.Stat("/", &rootSt); err != nil {
		return nil, fmt.Errorf("switch_root: stat /: %w", err)
	}
	if err := unix.Stat(newRoot, &newSt); err != nil {
		return nil, fmt.Errorf("switch_root: stat %s: %w", newRoot, err)
	}
	if rootSt.Dev == newSt.Dev {
		return nil, fmt.Errorf("switch_root: %s is not a mount point", newRoot)
	}
	old, err := os.Open("/")
	if err != nil {
		return nil, fmt.Errorf("switch_root: %w", err)
	}
	if err := os.Chdir(newRoot); err != nil {
		old.Close()
		return nil, fmt.Errorf("switch_root: %w", err)
	}
	if err := unix.Mount(".", "/", "", unix.MS_MOVE, ""); err != nil {
		old.Close()
		return nil, fmt.Errorf("switch_root: move %s to /: %w", newRoot, err)
	}
	if err := unix.Chroot("."); err != nil {
		old.Close()
		return nil, fmt.Errorf("switch_root: chroot: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		old.Close()
		return nil, fmt.Errorf("switch_root: chdir /: %w", err)
	}
	return old, nil
}

// FreeRoot deletes what SwitchRoot's old root holds on its own device,
// without descending into other mounts, and closes it.
func FreeRoot(old *os.File) {
	var st unix.Stat_t
	if unix.Fstat(int(old.Fd()), &st) == nil {
		removeAt(old, st.Dev)
	}
	old.Close()
}

// removeAt deletes dir's contents that live on device dev, without
// descending into other mounts. It works on open directories because the
// old root is out of reach by path once the new one is mounted over it.
func removeAt(dir *os.File, dev uint64) {
	names, err := dir.Readdirnames(-1)
	if err != nil {
		return
	}
	fd := int(dir.Fd())
	for _, name := range names {
		var st unix.Stat_t
		if unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW) != nil || st.Dev != dev {
			continue
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			unix.Unlinkat(fd, name, 0)
			continue
		}
		if sub, err := unix.Openat(fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0); err == nil {
			f := os.NewFile(uintptr(sub), name)
			removeAt(f, dev)
			f.Close()
		}
		unix.Unlinkat(fd, name, unix.AT_REMOVEDIR)
	}
}
