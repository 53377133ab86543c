// Command init is the PID 1 of the UKI boot test: it proves the kernel found
// the initramfs inside the UKI, then powers the VM off.
package main

import (
	"os"
	"syscall"
)

func main() {
	msg := []byte("uki-ok\n")
	os.Stdout.Write(msg)
	if c, err := os.OpenFile("/dev/console", os.O_WRONLY, 0); err == nil {
		c.Write(msg)
		c.Close()
	}
	syscall.Sync()
	syscall.Reboot(syscall.LINUX_REBOOT_CMD_POWER_OFF)
	select {}
}
