package qemu

import "runtime"

func hostArchIs(goarch string) bool { return runtime.GOARCH == goarch }
