package datasource

const backdoorAvailable = true

// backdoor executes IN EAX, DX with the registers in r (backdoor_amd64.s).
//
//go:noescape
func backdoor(r *bdRegs)
