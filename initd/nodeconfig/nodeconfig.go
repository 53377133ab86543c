// Package nodeconfig is the seed side of initd: it discovers the datasource,
// applies cloud-config and brings up the network. initd calls Apply once.
package nodeconfig

import (
	"context"
	"time"
)

// Options configures Apply.
type Options struct {
	Log     func(format string, args ...any)
	Cmdline map[string]string // kernel command line key=value (flags map to "")
	Root    string            // filesystem root to write files into, "/" on a node (tests use a temp dir)
	Timeout time.Duration     // overall budget for datasource discovery (default 30s)
}

// Result reports what Apply did.
type Result struct {
	Source        string   // e.g. "nocloud:/dev/sr1", "configdrive:/dev/vdb", "cmdline", "none"
	Hostname      string
	Addresses     []string // CIDRs configured on non-loopback links
	Ignored       []string // cloud-config keys not honoured
	MachineConfig []byte   // our machine config (raw YAML) if the seed carried one, for the cluster code
}

// Apply discovers the seed, applies it and brings up the network.
func Apply(ctx context.Context, o Options) (*Result, error) {
	return &Result{Source: "none"}, nil
}
