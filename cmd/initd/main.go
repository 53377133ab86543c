// Command initd is kiln's init daemon: /init in the initramfs and
// /sbin/init in the system image. Build it static: CGO_ENABLED=0.
package main

import (
	"os"

	"github.com/kilnproject/kiln/initd"
)

func main() { os.Exit(initd.Main()) }
