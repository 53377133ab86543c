package network

import (
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// A link whose carrier is on counts as up before the link watch has
// moved its operational state (flags as rtnetlink reports them).
func TestHasCarrier(t *testing.T) {
	for _, c := range []struct {
		name  string
		attrs netlink.LinkAttrs
		want  bool
	}{
		{"oper up", netlink.LinkAttrs{OperState: netlink.OperUp, RawFlags: unix.IFF_UP | unix.IFF_RUNNING | unix.IFF_LOWER_UP}, true},
		{"carrier, link watch pending", netlink.LinkAttrs{OperState: netlink.OperDown, RawFlags: unix.IFF_UP | unix.IFF_LOWER_UP}, true},
		{"up, no carrier", netlink.LinkAttrs{OperState: netlink.OperDown, RawFlags: unix.IFF_UP}, false},
		{"down", netlink.LinkAttrs{OperState: netlink.OperDown}, false},
	} {
		if got := hasCarrier(&c.attrs); got != c.want {
			t.Errorf("%s: hasCarrier = %v, want %v", c.name, got, c.want)
		}
	}
}
