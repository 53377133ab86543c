// Package sysfs reads sysfs attributes, directories and links with as few
// system calls as possible. Under emulation (QEMU TCG) a system call costs
// up to a millisecond, and a Go syscall that takes that long also makes the
// scheduler hand the processor to another thread; sysfs reads never wait
// for I/O, so these make raw calls that skip that dance.
package sysfs

import (
	"io/fs"
	"sort"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// maxAttr is larger than any attribute: sysfs returns at most a page.
const maxAttr = 16 << 10

func open(path string, flags int) (int, error) {
	p, err := unix.BytePtrFromString(path)
	if err != nil {
		return -1, err
	}
	dirfd := unix.AT_FDCWD
	fd, _, errno := unix.RawSyscall6(unix.SYS_OPENAT, uintptr(dirfd), uintptr(unsafe.Pointer(p)),
		uintptr(flags|unix.O_RDONLY|unix.O_CLOEXEC), 0, 0, 0)
	if errno != 0 {
		return -1, errno
	}
	return int(fd), nil
}

func closeFD(fd int) { unix.RawSyscall(unix.SYS_CLOSE, uintptr(fd), 0, 0) }

// ReadAttr returns an attribute file's content without surrounding
// whitespace (sysfs ends values with a newline).
func ReadAttr(path string) (string, error) {
	fd, err := open(path, 0)
	if err != nil {
		return "", &fs.PathError{Op: "open", Path: path, Err: err}
	}
	defer closeFD(fd)
	buf := make([]byte, maxAttr)
	n := 0
	for n < len(buf) {
		m, _, errno := unix.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&buf[n])), uintptr(len(buf)-n))
		if errno == unix.EINTR {
			continue
		}
		if errno != 0 {
			return "", &fs.PathError{Op: "read", Path: path, Err: errno}
		}
		if m == 0 {
			break
		}
		n += int(m)
	}
	return strings.TrimSpace(string(buf[:n])), nil
}

// ReadDirNames returns the names in a directory, sorted, without "." and "..".
func ReadDirNames(path string) ([]string, error) {
	fd, err := open(path, unix.O_DIRECTORY)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	defer closeFD(fd)
	buf := make([]byte, 32<<10)
	var names []string
	for {
		n, _, errno := unix.RawSyscall(unix.SYS_GETDENTS64, uintptr(fd), uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)))
		if errno == unix.EINTR {
			continue
		}
		if errno != 0 {
			return nil, &fs.PathError{Op: "getdents", Path: path, Err: errno}
		}
		if n == 0 {
			break
		}
		_, _, names = unix.ParseDirent(buf[:n], -1, names)
	}
	sort.Strings(names)
	return names, nil
}

// Readlink returns a symbolic link's target as stored (often relative:
// /sys/class/block/vda1 -> ../../devices/.../block/vda/vda1).
func Readlink(path string) (string, error) {
	p, err := unix.BytePtrFromString(path)
	if err != nil {
		return "", err
	}
	buf := make([]byte, 4096)
	dirfd := unix.AT_FDCWD
	n, _, errno := unix.RawSyscall6(unix.SYS_READLINKAT, uintptr(dirfd), uintptr(unsafe.Pointer(p)),
		uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)), 0, 0)
	if errno != 0 {
		return "", &fs.PathError{Op: "readlink", Path: path, Err: errno}
	}
	return string(buf[:n]), nil
}
