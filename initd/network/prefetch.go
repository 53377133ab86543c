package network

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Prefetch is DHCP begun before the node knows whether it wants it: its
// seed, read meanwhile, may configure the network itself. The exchanges
// run on every NIC with carrier, but nothing is configured until Apply
// takes the leases; Cancel releases them instead. On a node that ends up
// on DHCP, the exchange (and the wait for carrier) is off the boot's path.
type Prefetch struct {
	cancel context.CancelFunc
	done   chan struct{}

	covered map[int]bool // link indexes it ran on (or waited for)

	mu      sync.Mutex
	settled bool     // taken by Apply or cancelled
	answers []answer // in the order they came
	err     error    // why no exchange ran
}

// answer is one link's first exchange.
type answer struct {
	c     *dhcpClient
	lease *nclient4.Lease
	err   error
}

// errUsedAlready makes a second Apply ask the server itself.
var errUsedAlready = errors.New("network: DHCP prefetch used already")

// StartDHCP brings every NIC up and starts DHCP on those that get carrier
// (within Options.CarrierWait), in the background. Sockets are opened
// here, in the calling thread's network namespace. It returns nil when
// there is no NIC (yet): call it again once a driver bound one.
func StartDHCP(o Options) *Prefetch {
	o.defaults()
	ctx, cancel := context.WithCancel(context.Background())
	p := &Prefetch{cancel: cancel, done: make(chan struct{}), covered: map[int]bool{}}
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		p.err = fmt.Errorf("netlink: %w", err)
		close(p.done)
		return p
	}
	n := &Network{h: h, log: o.Log}
	if n.log == nil {
		n.log = func(string, ...any) {}
	}
	links, err := n.upLinks()
	if err != nil {
		h.Close()
		cancel()
		return nil
	}
	clients := map[int]*dhcpClient{}
	for _, l := range links {
		p.covered[l.Attrs().Index] = true
		c, err := n.newDHCPClient(l, o.DHCPTimeout, 0)
		if err != nil {
			n.log("network: %v", err)
			continue
		}
		clients[l.Attrs().Index] = c
	}
	go func() {
		defer close(p.done)
		defer h.Close()
		up := n.waitCarrier(ctx, links, o.CarrierWait)
		dctx, dcancel := context.WithTimeout(ctx, o.DHCPTimeout)
		defer dcancel()
		answers := make(chan answer)
		running := 0
		for _, l := range up {
			c := clients[l.Attrs().Index]
			if c == nil {
				continue
			}
			delete(clients, l.Attrs().Index)
			c.link = l
			running++
			go func() {
				lease, err := c.client.Request(dctx, dhcpOptions)
				if err != nil {
					err = fmt.Errorf("dhcp %s: %w", l.Attrs().Name, err)
				}
				answers <- answer{c: c, lease: lease, err: err}
			}()
		}
		for _, c := range clients { // no carrier
			c.client.Close()
		}
		var got []answer
		for ; running > 0; running-- {
			got = append(got, <-answers)
		}
		p.mu.Lock()
		p.answers = got
		if len(got) == 0 {
			p.err = fmt.Errorf("network: no NIC has carrier after %v", o.CarrierWait)
		}
		p.mu.Unlock()
	}()
	return p
}

// take waits for the exchanges and hands their answers over, once.
func (p *Prefetch) take(ctx context.Context) ([]answer, error) {
	p.mu.Lock()
	if p.settled {
		p.mu.Unlock()
		return nil, errUsedAlready
	}
	p.settled = true
	p.mu.Unlock()
	select {
	case <-p.done:
	case <-ctx.Done():
		p.cancel()
		<-p.done
		p.release()
		return nil, ctx.Err()
	}
	return p.answers, p.err
}

// Cancel stops the exchanges and releases what they obtained: the node
// configures its network otherwise. It does nothing once Apply took the
// leases, so it can be deferred.
func (p *Prefetch) Cancel() {
	if p == nil {
		return
	}
	p.mu.Lock()
	if p.settled {
		p.mu.Unlock()
		return
	}
	p.settled = true
	p.mu.Unlock()
	p.cancel()
	<-p.done
	p.release()
}

// lateLinks brings up and returns the NICs a prefetch did not cover.
func (n *Network) lateLinks(covered map[int]bool) []netlink.Link {
	all, err := n.physicalLinks()
	if err != nil {
		return nil
	}
	var late []netlink.Link
	for _, l := range all {
		if !covered[l.Attrs().Index] {
			if err := n.h.LinkSetUp(l); err != nil {
				n.log("network: %s up: %v", l.Attrs().Name, err)
			}
			late = append(late, l)
		}
	}
	return late
}

// release gives the leases back to their servers and closes the sockets.
func (p *Prefetch) release() {
	for _, a := range p.answers {
		if a.lease != nil {
			a.c.client.Release(a.lease) // best effort: a server that misses it lets the lease expire
		}
		a.c.client.Close()
	}
}

// adopt applies what o.Prefetch obtained, as dhcpAll would have, and runs
// DHCP on NICs that appeared after it started. When it was used already,
// it asks again.
func (n *Network) adopt(ctx, rctx context.Context, o Options) error {
	answers, err := o.Prefetch.take(ctx)
	switch {
	case errors.Is(err, errUsedAlready):
		return n.dhcpAll(ctx, rctx, o)
	case err != nil:
		return err
	}
	var errs []error
	metric := 100 // the first answer gets the default route with the lowest metric
	for _, a := range answers {
		if a.err != nil {
			errs = append(errs, a.err)
			a.c.client.Close()
			continue
		}
		a.c.n, a.c.lease, a.c.metric = n, a.lease, metric
		lease := leaseFrom(a.c.link.Attrs().Name, a.lease)
		if err := n.applyLease(a.c.link, lease, metric, true); err != nil {
			errs = append(errs, err)
			a.c.client.Close()
			continue
		}
		metric++
		n.keep(rctx, a.c, lease)
	}
	if late := n.lateLinks(o.Prefetch.covered); len(late) > 0 {
		if up := n.waitCarrier(ctx, late, o.CarrierWait); len(up) > 0 {
			if err := n.dhcp(ctx, rctx, up, o, len(n.Leases)); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if len(n.Leases) == 0 {
		return errors.Join(errs...)
	}
	for _, e := range errs {
		n.log("network: %v", e)
	}
	return nil
}
