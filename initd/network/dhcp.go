package network

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
	"github.com/vishvananda/netlink"
)

// Lease is what a DHCPv4 server gave one link.
type Lease struct {
	Link        string
	Address     net.IPNet
	Router      net.IP
	DNS         []string
	Search      []string
	NTP         []string
	LeaseTime   time.Duration
	RenewalTime time.Duration // T1
}

func leaseFrom(link string, l *nclient4.Lease) *Lease {
	ack := l.ACK
	out := &Lease{Link: link, Address: net.IPNet{IP: ack.YourIPAddr, Mask: ack.SubnetMask()}}
	if out.Address.Mask == nil {
		out.Address.Mask = ack.YourIPAddr.DefaultMask()
	}
	if r := ack.Router(); len(r) > 0 {
		out.Router = r[0]
	}
	for _, ip := range ack.DNS() {
		out.DNS = append(out.DNS, ip.String())
	}
	for _, ip := range ack.NTPServers() {
		out.NTP = append(out.NTP, ip.String())
	}
	if ds := ack.DomainSearch(); ds != nil {
		out.Search = append(out.Search, ds.Labels...)
	} else if dn := ack.DomainName(); dn != "" {
		out.Search = []string{dn}
	}
	out.LeaseTime = ack.IPAddressLeaseTime(time.Hour)
	out.RenewalTime = ack.IPAddressRenewalTime(out.LeaseTime / 2)
	if out.RenewalTime <= 0 || out.RenewalTime > out.LeaseTime {
		out.RenewalTime = out.LeaseTime / 2
	}
	return out
}

var dhcpOptions = dhcpv4.WithRequestedOptions(
	dhcpv4.OptionSubnetMask, dhcpv4.OptionRouter, dhcpv4.OptionDomainNameServer, dhcpv4.OptionDomainName,
	dhcpv4.OptionNTPServers, dhcpv4.OptionDNSDomainSearchList, dhcpv4.OptionInterfaceMTU,
)

// dhcpClient runs DHCP on one link: the first lease, then renewal at T1 in
// a goroutine until stopped.
type dhcpClient struct {
	n      *Network
	link   netlink.Link
	client *nclient4.Client
	lease  *nclient4.Lease
	metric int
}

// newDHCPClient opens the packet socket; call it on the goroutine that is in
// the target network namespace.
func (n *Network) newDHCPClient(link netlink.Link, timeout time.Duration, metric int) (*dhcpClient, error) {
	c, err := nclient4.New(link.Attrs().Name, nclient4.WithTimeout(timeout/3+time.Second), nclient4.WithRetry(3))
	if err != nil {
		return nil, fmt.Errorf("dhcp %s: %w", link.Attrs().Name, err)
	}
	return &dhcpClient{n: n, link: link, client: c, metric: metric}, nil
}

func (d *dhcpClient) request(ctx context.Context, withRoute bool) (*Lease, error) {
	l, err := d.client.Request(ctx, dhcpOptions)
	if err != nil {
		return nil, fmt.Errorf("dhcp %s: %w", d.link.Attrs().Name, err)
	}
	d.lease = l
	lease := leaseFrom(d.link.Attrs().Name, l)
	if err := d.n.applyLease(d.link, lease, d.metric, withRoute); err != nil {
		return nil, err
	}
	return lease, nil
}

// renewLoop renews at T1; when the server stays silent it retries at half
// the remaining time, and rebinds from scratch once the lease has expired.
func (d *dhcpClient) renewLoop(ctx context.Context, lease *Lease, withRoute bool, wg *sync.WaitGroup) {
	defer wg.Done()
	defer d.client.Close()
	name := d.link.Attrs().Name
	expires := time.Now().Add(lease.LeaseTime)
	wait := lease.RenewalTime
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		var nl *nclient4.Lease
		var err error
		if time.Now().After(expires) {
			nl, err = d.client.Request(ctx, dhcpOptions)
		} else {
			nl, err = d.client.Renew(ctx, d.lease, dhcpOptions)
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			d.n.log("network: dhcp %s: renew: %v", name, err)
			wait = time.Until(expires) / 2
			if wait < 2*time.Second {
				wait = 2 * time.Second
			}
			continue
		}
		d.lease = nl
		l := leaseFrom(name, nl)
		if err := d.n.applyLease(d.link, l, d.metric, withRoute); err != nil {
			d.n.log("network: dhcp %s: %v", name, err)
		}
		d.n.mu.Lock()
		d.n.renewals++
		d.n.mu.Unlock()
		d.n.log("network: dhcp %s: renewed %s for %v", name, l.Address.String(), l.LeaseTime)
		expires = time.Now().Add(l.LeaseTime)
		wait = l.RenewalTime
	}
}

func (n *Network) applyLease(link netlink.Link, l *Lease, metric int, withRoute bool) error {
	name := link.Attrs().Name
	secs := int(l.LeaseTime / time.Second)
	addr := &netlink.Addr{IPNet: &l.Address, ValidLft: secs, PreferedLft: secs}
	if err := n.h.AddrReplace(link, addr); err != nil {
		return fmt.Errorf("dhcp %s: add %s: %w", name, l.Address.String(), err)
	}
	if withRoute && l.Router != nil {
		r := &netlink.Route{LinkIndex: link.Attrs().Index, Gw: l.Router, Priority: metric,
			Dst: &net.IPNet{IP: net.IPv4zero, Mask: net.CIDRMask(0, 32)}}
		if err := n.h.RouteReplace(r); err != nil {
			return fmt.Errorf("dhcp %s: default route via %s: %w", name, l.Router, err)
		}
	}
	return nil
}
