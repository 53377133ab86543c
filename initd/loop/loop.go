// Package loop attaches a file to a free loop device (the ISO's
// /kiln/system.sqfs, which is then mounted as squashfs).
package loop

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Attach binds file to a free loop device and returns the open device
// (its Name is the /dev path). The device is set to autoclear: it detaches
// when its last user goes, so close the returned file only after mounting it.
func Attach(file string, readOnly bool) (*os.File, error) {
	flag, loFlags := os.O_RDWR, uint32(unix.LO_FLAGS_AUTOCLEAR)
	if readOnly {
		flag, loFlags = os.O_RDONLY, loFlags|unix.LO_FLAGS_READ_ONLY
	}
	bf, err := os.OpenFile(file, flag, 0)
	if err != nil {
		return nil, fmt.Errorf("loop: %w", err)
	}
	defer bf.Close()
	ctl, err := os.OpenFile("/dev/loop-control", os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("loop: %w (is the loop module loaded?)", err)
	}
	defer ctl.Close()
	// Another process may grab the same free device between GET_FREE and
	// configure: retry on EBUSY.
	for try := 0; try < 8; try++ {
		n, err := unix.IoctlRetInt(int(ctl.Fd()), unix.LOOP_CTL_GET_FREE)
		if err != nil {
			return nil, fmt.Errorf("loop: LOOP_CTL_GET_FREE: %w", err)
		}
		dev := fmt.Sprintf("/dev/loop%d", n)
		lf, err := os.OpenFile(dev, flag, 0)
		if err != nil {
			return nil, fmt.Errorf("loop: %w", err)
		}
		err = configure(lf, bf, file, loFlags)
		if err == nil {
			return lf, nil
		}
		lf.Close()
		if errors.Is(err, unix.EBUSY) {
			continue
		}
		return nil, fmt.Errorf("loop: attach %s to %s: %w", file, dev, err)
	}
	return nil, fmt.Errorf("loop: attach %s: every free device was taken", file)
}

func configure(lf, bf *os.File, name string, flags uint32) error {
	info := unix.LoopInfo64{Flags: flags}
	copy(info.File_name[:], name)
	cfg := unix.LoopConfig{Fd: uint32(bf.Fd()), Info: info}
	err := unix.IoctlLoopConfigure(int(lf.Fd()), &cfg)
	if err == nil || (err != unix.EINVAL && err != unix.ENOTTY) {
		return err
	}
	// Kernels before 5.8 have no LOOP_CONFIGURE.
	if err := unix.IoctlSetInt(int(lf.Fd()), unix.LOOP_SET_FD, int(bf.Fd())); err != nil {
		return err
	}
	if err := unix.IoctlLoopSetStatus64(int(lf.Fd()), &info); err != nil {
		unix.IoctlSetInt(int(lf.Fd()), unix.LOOP_CLR_FD, 0)
		return err
	}
	return nil
}
