//go:build !amd64

package datasource

// The backdoor I/O port exists only on x86; elsewhere GuestInfo is absent.
const backdoorAvailable = false

func backdoor(r *bdRegs) {}
