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

// Mount mounts and names everything in its error.
func Mount(source, target, fstype string, flags uintptr, data string) error {
	if err := os.MkdirAll(target, 0o755); err != nil {
		return fmt.Errorf("mount %s on %s: %w", fstype, target, err)
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

// SwitchRoot makes newRoot the root filesystem: it frees the initramfs
// (deleting its files, staying on the root device), moves newRoot onto /,
// chroots and changes directory to the new /. The caller then execs init.
func SwitchRoot(newRoot string) error {
	var rootSt, newSt unix.Stat_t
	if err := unix.Stat("/", &rootSt); err != nil {
		return fmt.Errorf("switch_root: stat /: %w", err)
	}
	if err := unix.Stat(newRoot, &newSt); err != nil {
		return fmt.Errorf("switch_root: stat %s: %w", newRoot, err)
	}
	if rootSt.Dev == newSt.Dev {
		return fmt.Errorf("switch_root: %s is not a mount point", newRoot)
	}
	if err := os.Chdir(newRoot); err != nil {
		return fmt.Errorf("switch_root: %w", err)
	}
	// The initramfs is a rootfs (ramfs/tmpfs) that cannot be unmounted; its
	// files would pin RAM forever, so delete them.
	removeOnDevice("/", rootSt.Dev)
	if err := unix.Mount(".", "/", "", unix.MS_MOVE, ""); err != nil {
		return fmt.Errorf("switch_root: move %s to /: %w", newRoot, err)
	}
	if err := unix.Chroot("."); err != nil {
		return fmt.Errorf("switch_root: chroot: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return fmt.Errorf("switch_root: chdir /: %w", err)
	}
	return nil
}

// removeOnDevice deletes dir's contents that live on device dev, without
// descending into other mounts.
func removeOnDevice(dir string, dev uint64) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		var st unix.Stat_t
		if unix.Lstat(p, &st) != nil || st.Dev != dev {
			continue
		}
		if e.IsDir() {
			removeOnDevice(p, dev)
		}
		os.Remove(p)
	}
}
