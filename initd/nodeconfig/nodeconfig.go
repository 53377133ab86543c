// Package nodeconfig is the seed side of initd: it discovers the datasource,
// applies cloud-config (hostname, write_files, NTP) and brings up the
// network. initd calls Apply once, after switch_root.
package nodeconfig

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/kilnproject/kiln/initd/cloudconfig"
	"github.com/kilnproject/kiln/initd/datasource"
	"github.com/kilnproject/kiln/initd/netconf"
	"github.com/kilnproject/kiln/initd/network"
	"golang.org/x/sys/unix"
)

// Options configures Apply.
type Options struct {
	Log     func(format string, args ...any)
	Cmdline map[string]string // kernel command line key=value (flags map to "")
	Root    string            // filesystem root to write files into, "/" on a node (tests use a temp dir)
	Timeout time.Duration     // overall budget for datasource discovery (default 30s)
	// DHCP, when set, is DHCP started before Apply (network.StartDHCP):
	// used if the node ends up on DHCP, released if its seed configures
	// the network itself.
	DHCP *network.Prefetch
}

// Result reports what Apply did.
type Result struct {
	Source        string // e.g. "nocloud:/dev/sr1", "configdrive:/dev/vdb", "cmdline", "none"
	Hostname      string
	Addresses     []string // CIDRs configured on non-loopback links
	Ignored       []string // cloud-config keys not honoured
	MachineConfig []byte   // our machine config (raw YAML) if the seed carried one, for the cluster code
}

// perSource bounds one datasource; metadata services get the same budget.
const perSource = 8 * time.Second

// Seams for tests: the real ones touch the machine.
var (
	sources = func(o Options) []datasource.Source {
		return datasource.Defaults(o.Cmdline, datasource.Shared(datasource.SysVolumes{}), "")
	}
	netUp = func(ctx context.Context, cfg *netconf.Config, o network.Options) (netState, error) {
		n, err := network.Apply(ctx, cfg, o)
		if n == nil {
			return nil, err
		}
		return n, err
	}
	setHostname = func(name string) error { return unix.Sethostname([]byte(name)) }
	syncClock   = func(ctx context.Context, servers []string) (time.Duration, string, error) {
		return network.SyncClock(ctx, servers, nil)
	}
)

// netState is what Apply needs from a configured network.
type netState interface {
	Release()
	Stop()
}

func stateOf(n netState) (addrs, ntp []string) {
	if nn, ok := n.(*network.Network); ok {
		return nn.Addresses, nn.NTPServers
	}
	if f, ok := n.(interface{ Info() ([]string, []string) }); ok {
		return f.Info()
	}
	return nil, nil
}

// Apply discovers the seed, applies it and brings up the network. On a bad
// seed it still brings the network up (DHCP) so the node stays reachable,
// and returns the Result with an error naming the source and field.
func Apply(ctx context.Context, o Options) (*Result, error) {
	if o.Log == nil {
		o.Log = func(string, ...any) {}
	}
	if o.Root == "" {
		o.Root = "/"
	}
	if o.Timeout == 0 {
		o.Timeout = 30 * time.Second
	}
	res := &Result{Source: "none"}
	netOpts := network.Options{Root: o.Root, Log: o.Log, Prefetch: o.DHCP}
	defer o.DHCP.Cancel() // unless a DHCP network took it

	// Metadata services need DHCP first: bring it up once, on demand.
	var tempNet netState
	networkUp := func(ctx context.Context) error {
		n, err := netUp(ctx, nil, netOpts)
		if n != nil && err == nil {
			tempNet = n
		}
		return err
	}
	dctx, cancel := context.WithTimeout(ctx, o.Timeout)
	seed, err := datasource.Discover(dctx, sources(o), perSource, networkUp, o.Log)
	cancel()
	var seedErr error
	switch {
	case errors.Is(err, datasource.ErrNotFound):
		o.Log("nodeconfig: no seed found; using DHCP")
	case err != nil:
		seedErr = err
	default:
		res.Source = seed.Source
		o.Log("nodeconfig: seed from %s", seed.Source)
	}

	var cc *cloudconfig.Config
	var netCfg *netconf.Config
	if seed != nil {
		cc, netCfg, seedErr = applySeed(seed, o, res)
	}

	// Network: the seed's config, else keep the discovery DHCP, else DHCP now.
	var n netState
	var netErr error
	switch {
	case netCfg != nil:
		if tempNet != nil {
			tempNet.Release()
			tempNet = nil
		}
		n, netErr = netUp(ctx, netCfg, netOpts)
		if netErr != nil {
			o.Log("nodeconfig: network-config from %s: %v; falling back to DHCP", res.Source, netErr)
			if n != nil {
				n.Release()
			}
			n, netErr = netUp(ctx, nil, netOpts)
		}
	case tempNet != nil:
		n = tempNet
	default:
		n, netErr = netUp(ctx, nil, netOpts)
	}
	if netErr != nil {
		o.Log("nodeconfig: network: %v", netErr)
	}
	var dhcpNTP []string
	if n != nil {
		res.Addresses, dhcpNTP = stateOf(n)
	}

	// Clock before anything speaks TLS.
	var servers []string
	if cc != nil && cc.NTPEnabled {
		servers = append(servers, cc.NTPServers...)
	}
	if cc == nil || cc.NTPEnabled {
		servers = append(servers, dhcpNTP...)
	}
	if len(servers) == 0 {
		o.Log("nodeconfig: ntp: no servers from cloud-config or DHCP; clock not set")
	} else if off, used, err := syncClock(ctx, servers); err != nil {
		o.Log("nodeconfig: ntp: %v", err)
	} else {
		o.Log("nodeconfig: ntp: clock stepped by %v from %s", off, used)
	}
	if seedErr == nil && netErr != nil && len(res.Addresses) == 0 {
		// A node without DHCP still boots; say so but do not fail.
		o.Log("nodeconfig: no address configured")
	}
	return res, seedErr
}

// applySeed parses and applies user-data, hostname and write_files, and
// parses the network config. Errors name the source and the field.
func applySeed(seed *datasource.Seed, o Options, res *Result) (*cloudconfig.Config, *netconf.Config, error) {
	var errs []error
	var cc *cloudconfig.Config
	vendor, err := cloudconfig.Parse(seed.VendorData)
	if err != nil {
		o.Log("nodeconfig: %s vendor-data: %v (ignored)", seed.Source, err)
		vendor = nil
	}
	cc, err = cloudconfig.Parse(seed.UserData)
	if err != nil {
		errs = append(errs, fmt.Errorf("%s user-data: %s", seed.Source, strings.TrimPrefix(err.Error(), "user-data: ")))
		cc = nil
	}
	if cc != nil {
		if vendor != nil {
			// User-data wins; vendor-data fills what it leaves out.
			if len(cc.NTPServers) == 0 {
				cc.NTPServers = vendor.NTPServers
			}
			if cc.Hostname == "" && cc.FQDN == "" {
				cc.Hostname, cc.FQDN = vendor.Hostname, vendor.FQDN
			}
		}
		res.Ignored = cc.Ignored
		res.MachineConfig = cc.MachineConfig
		if err := cc.ApplyWriteFiles(o.Root); err != nil {
			errs = append(errs, fmt.Errorf("%s user-data: %v", seed.Source, err))
		} else {
			// One line per file: the operator sees on the console what the seed changed.
			for _, wf := range cc.WriteFiles {
				o.Log("nodeconfig: write_files[%d]: wrote %s (%d bytes, mode %04o, owner %d:%d)", wf.Index, wf.Path, len(wf.Content), wf.Perm, wf.UID, wf.GID)
			}
		}
	}
	// Hostname: cloud-config, else meta-data.
	short, fqdn := "", ""
	if cc != nil {
		short, fqdn = cc.KernelHostname(), cc.FullName()
	}
	if short == "" && seed.Hostname != "" {
		if err := cloudconfig.CheckHostname(seed.Hostname); err != nil {
			errs = append(errs, fmt.Errorf("%s meta-data: local-hostname: %v", seed.Source, err))
		} else {
			fqdn = seed.Hostname
			short, _, _ = strings.Cut(seed.Hostname, ".")
		}
	}
	if short != "" {
		if fqdn == short {
			fqdn = ""
		}
		res.Hostname = short
		if o.Root == "/" {
			if err := setHostname(short); err != nil {
				errs = append(errs, fmt.Errorf("sethostname %q: %v", short, err))
			}
		}
		if err := network.WriteHosts(o.Root, short, fqdn); err != nil {
			errs = append(errs, err)
		}
	}
	var nc *netconf.Config
	if len(seed.NetworkConfig) > 0 {
		nc, err = netconf.Parse(seed.NetworkFormat, seed.NetworkConfig)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s %v", seed.Source, err))
			nc = nil
		}
	}
	return cc, nc, errors.Join(errs...)
}
