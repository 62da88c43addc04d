// Package mdns is the multicast DNS layer of the default registry (RFC 6762, with DNS-SD
// naming after RFC 6763): sockets shared with other processes on port 5353, per
// interface sends, and the building and parsing of service instance records with
// github.com/miekg/dns. It knows nothing of registry types; package registry adapts it.
package mdns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// Port is the mDNS port.
const Port = 5353

// MaxMessage is the largest message this package sends or accepts to send: RFC 6762 §17
// caps a multicast DNS packet at 9000 bytes, IP and UDP headers included (48 for IPv6).
const MaxMessage = 9000 - 48

// maxPacket is the longest datagram read: RFC 6762 §17 caps mDNS packets at 9000
// bytes, headers included; longer ones are dropped.
const maxPacket = 9000

// The mDNS groups.
var (
	GroupV4 = netip.AddrPortFrom(netip.AddrFrom4([4]byte{224, 0, 0, 251}), Port)
	GroupV6 = netip.AddrPortFrom(netip.MustParseAddr("ff02::fb"), Port)
)

// ErrNoMulticast is returned by Listen when no interface could join an mDNS group.
var ErrNoMulticast = errors.New("mdns: no network interface can send and receive multicast")

// Packet is one received datagram. Data is valid only while the handler runs.
type Packet struct {
	Data    []byte
	Src     netip.AddrPort
	IfIndex int
	// Reply is true for a datagram that arrived on a query socket: a unicast answer to a
	// query of ours.
	Reply bool
}

// Config configures Listen.
type Config struct {
	// Interfaces limits the interfaces used, by name; empty means every interface that is
	// up and can multicast.
	Interfaces []string
	// Handler receives every datagram, from one goroutine per socket. It must not block
	// for long.
	Handler func(Packet)
	// Port overrides Port, for tests that must not meet other responders. 0 means Port.
	Port int
}

type family struct {
	v6     bool
	group  netip.AddrPort
	listen net.PacketConn // bound to the mDNS port, joined on ifaces
	query  net.PacketConn // ephemeral port: sends queries, receives unicast answers
	p4l    *ipv4.PacketConn
	p4q    *ipv4.PacketConn
	p6l    *ipv6.PacketConn
	p6q    *ipv6.PacketConn
	ifaces []net.Interface
	mu     sync.Mutex // serialises SetMulticastInterface + WriteTo
}

// Conn is a set of mDNS sockets: for each address family with at least one usable
// interface, one socket on the mDNS port shared with other processes (SO_REUSEADDR and
// SO_REUSEPORT) and joined to the group on every interface, and one socket on an
// ephemeral port for queries. It is safe for concurrent use.
type Conn struct {
	fams     []*family
	handler  func(Packet)
	wg       sync.WaitGroup
	once     sync.Once
	ifAddrs  map[int][]netip.Prefix
	loopback map[int]bool
}

// Interfaces returns the interfaces Listen would use for names: those of them, or all
// when names is empty, that are up and can multicast.
func Interfaces(names []string) ([]net.Interface, error) {
	all, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	var out []net.Interface
	for _, ifi := range all {
		if len(names) > 0 {
			found := false
			for _, n := range names {
				found = found || n == ifi.Name
			}
			if !found {
				continue
			}
		}
		if ifi.Flags&net.FlagUp == 0 || ifi.Flags&net.FlagMulticast == 0 {
			continue
		}
		out = append(out, ifi)
	}
	return out, nil
}

// Listen opens the sockets and starts reading. It fails with ErrNoMulticast (wrapped,
// with the reasons) when no interface of either family can join its group.
func Listen(cfg Config) (*Conn, error) {
	ifaces, err := Interfaces(cfg.Interfaces)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoMulticast, err)
	}
	if len(ifaces) == 0 {
		return nil, fmt.Errorf("%w: no interface is up with multicast enabled", ErrNoMulticast)
	}
	port := cfg.Port
	if port == 0 {
		port = Port
	}
	c := &Conn{handler: cfg.Handler, ifAddrs: map[int][]netip.Prefix{}, loopback: map[int]bool{}}
	for _, ifi := range ifaces {
		c.loopback[ifi.Index] = ifi.Flags&net.FlagLoopback != 0
		addrs, _ := ifi.Addrs()
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok {
				if p, err := netip.ParsePrefix(ipn.String()); err == nil {
					c.ifAddrs[ifi.Index] = append(c.ifAddrs[ifi.Index], p)
				}
			}
		}
	}
	var reasons []string
	for _, v6 := range []bool{false, true} {
		f, err := openFamily(v6, port, ifaces, c.ifAddrs)
		if err != nil {
			reasons = append(reasons, err.Error())
			continue
		}
		c.fams = append(c.fams, f)
	}
	if len(c.fams) == 0 {
		return nil, fmt.Errorf("%w: %s", ErrNoMulticast, strings.Join(reasons, "; "))
	}
	for _, f := range c.fams {
		c.wg.Add(2)
		go c.read(f, false)
		go c.read(f, true)
	}
	return c, nil
}

func openFamily(v6 bool, port int, ifaces []net.Interface, ifAddrs map[int][]netip.Prefix) (*family, error) {
	network, any := "udp4", "0.0.0.0"
	group := GroupV4
	if v6 {
		network, any = "udp6", "::"
		group = GroupV6
	}
	group = netip.AddrPortFrom(group.Addr(), uint16(port))
	lc := net.ListenConfig{Control: reuse}
	ln, err := lc.ListenPacket(context.Background(), network, net.JoinHostPort(any, fmt.Sprint(port)))
	if err != nil {
		return nil, fmt.Errorf("%s: listen on port %d: %v", network, port, err)
	}
	q, err := net.ListenPacket(network, net.JoinHostPort(any, "0"))
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("%s: query socket: %v", network, err)
	}
	f := &family{v6: v6, group: group, listen: ln, query: q}
	gaddr := &net.UDPAddr{IP: group.Addr().AsSlice()}
	var joinErrs []string
	if v6 {
		f.p6l, f.p6q = ipv6.NewPacketConn(ln), ipv6.NewPacketConn(q)
		_ = f.p6l.SetControlMessage(ipv6.FlagInterface, true)
		_ = f.p6q.SetControlMessage(ipv6.FlagInterface, true)
		for _, p := range []*ipv6.PacketConn{f.p6l, f.p6q} {
			_ = p.SetMulticastHopLimit(255)
			_ = p.SetMulticastLoopback(true)
		}
	} else {
		f.p4l, f.p4q = ipv4.NewPacketConn(ln), ipv4.NewPacketConn(q)
		_ = f.p4l.SetControlMessage(ipv4.FlagInterface, true)
		_ = f.p4q.SetControlMessage(ipv4.FlagInterface, true)
		for _, p := range []*ipv4.PacketConn{f.p4l, f.p4q} {
			_ = p.SetMulticastTTL(255)
			_ = p.SetMulticastLoopback(true)
		}
	}
	for _, ifi := range ifaces {
		if !hasFamily(ifAddrs[ifi.Index], v6) {
			continue
		}
		var err error
		if v6 {
			err = f.p6l.JoinGroup(&ifi, gaddr)
		} else {
			err = f.p4l.JoinGroup(&ifi, gaddr)
		}
		if err != nil {
			joinErrs = append(joinErrs, fmt.Sprintf("join %s on %s: %v", group.Addr(), ifi.Name, err))
			continue
		}
		f.ifaces = append(f.ifaces, ifi)
	}
	if len(f.ifaces) == 0 {
		ln.Close()
		q.Close()
		if len(joinErrs) == 0 {
			joinErrs = append(joinErrs, "no interface has an address of this family")
		}
		return nil, fmt.Errorf("%s: %s", network, strings.Join(joinErrs, ", "))
	}
	return f, nil
}

func hasFamily(prefixes []netip.Prefix, v6 bool) bool {
	for _, p := range prefixes {
		is6 := p.Addr().Is6() && !p.Addr().Is4In6()
		if is6 == v6 {
			return true
		}
	}
	return false
}

// read delivers datagrams until the socket closes. It reuses its buffers: a flood of
// packets makes no garbage here.
func (c *Conn) read(f *family, query bool) {
	defer c.wg.Done()
	sock := f.listen
	if query {
		sock = f.query
	}
	uc, ok := sock.(*net.UDPConn)
	if !ok {
		return
	}
	buf := make([]byte, maxPacket+1) // a longer datagram arrives truncated, and is dropped
	oob := make([]byte, 256)
	var cm4 ipv4.ControlMessage
	var cm6 ipv6.ControlMessage
	for {
		n, oobn, _, src, err := uc.ReadMsgUDPAddrPort(buf, oob)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// a transient error (ICMP feedback on a query socket): keep reading
			time.Sleep(time.Millisecond)
			continue
		}
		ifIdx := 0
		if f.v6 {
			if cm6.Parse(oob[:oobn]) == nil {
				ifIdx = cm6.IfIndex
			}
		} else if cm4.Parse(oob[:oobn]) == nil {
			ifIdx = cm4.IfIndex
		}
		if c.handler == nil || n > maxPacket {
			continue
		}
		src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
		c.handler(Packet{Data: buf[:n], Src: src, IfIndex: ifIdx, Reply: query})
	}
}

// Multicast sends b to the group of each family on every interface, from the mDNS
// port: announcements, goodbyes and multicast answers. It returns the last error, if
// every send failed.
func (c *Conn) Multicast(b []byte) error {
	return c.send(b, false, -1)
}

// MulticastOn sends b to the group on one interface only, from the mDNS port.
func (c *Conn) MulticastOn(ifIndex int, v6 bool, b []byte) error {
	for _, f := range c.fams {
		if f.v6 == v6 {
			return c.sendFamily(f, b, false, ifIndex)
		}
	}
	return nil
}

// Query sends b to the group of each family on every interface from the query sockets,
// so that responders answer by unicast to this process alone (RFC 6762 §6.7).
func (c *Conn) Query(b []byte) error {
	return c.send(b, true, -1)
}

func (c *Conn) send(b []byte, query bool, ifIndex int) error {
	var last error
	ok := false
	for _, f := range c.fams {
		if err := c.sendFamily(f, b, query, ifIndex); err != nil {
			last = err
		} else {
			ok = true
		}
	}
	if ok {
		return nil
	}
	return last
}

func (c *Conn) sendFamily(f *family, b []byte, query bool, ifIndex int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	var last error
	sent := false
	for i := range f.ifaces {
		ifi := &f.ifaces[i]
		if ifIndex >= 0 && ifi.Index != ifIndex {
			continue
		}
		var err error
		if f.v6 {
			p := f.p6l
			if query {
				p = f.p6q
			}
			if err = p.SetMulticastInterface(ifi); err == nil {
				_, err = p.WriteTo(b, nil, &net.UDPAddr{IP: f.group.Addr().AsSlice(), Port: int(f.group.Port()), Zone: ifi.Name})
			}
		} else {
			p := f.p4l
			if query {
				p = f.p4q
			}
			if err = p.SetMulticastInterface(ifi); err == nil {
				_, err = p.WriteTo(b, nil, &net.UDPAddr{IP: f.group.Addr().AsSlice(), Port: int(f.group.Port())})
			}
		}
		if err != nil {
			last = err
		} else {
			sent = true
		}
	}
	if sent || last == nil {
		return nil
	}
	return last
}

// Unicast sends b to dst from the mDNS port: the answer to a legacy (one-shot) query.
// A query that came over loopback from an unspecified address (the kernel picks none
// for multicast from a host-scoped address) is answered on 127.0.0.1 or ::1.
func (c *Conn) Unicast(b []byte, dst netip.AddrPort) error {
	if dst.Addr().IsUnspecified() {
		if dst.Addr().Is4() {
			dst = netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), dst.Port())
		} else {
			dst = netip.AddrPortFrom(netip.IPv6Loopback(), dst.Port())
		}
	}
	for _, f := range c.fams {
		if f.v6 != (dst.Addr().Is6() && !dst.Addr().Is4In6()) {
			continue
		}
		ua := net.UDPAddrFromAddrPort(dst)
		ua.Zone = dst.Addr().Zone()
		_, err := f.listen.WriteTo(b, ua)
		return err
	}
	return fmt.Errorf("mdns: no socket for %s", dst)
}

// OnLink reports whether a packet from ip that came in on the interface is from the
// local link: from a loopback interface, a loopback or link-local address, or the
// subnet of an address of the interface. Only such sources get answers (RFC 6762 §11).
func (c *Conn) OnLink(ifIndex int, ip netip.Addr) bool {
	ip = ip.WithZone("")
	if ip.IsLoopback() || ip.IsLinkLocalUnicast() {
		return true
	}
	if c.loopback[ifIndex] {
		return true // only this host sends on a loopback interface
	}
	for _, p := range c.ifAddrs[ifIndex] {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// Families reports which families are open: "udp4", "udp6".
func (c *Conn) Families() []string {
	var out []string
	for _, f := range c.fams {
		if f.v6 {
			out = append(out, "udp6")
		} else {
			out = append(out, "udp4")
		}
	}
	return out
}

// Close closes the sockets and waits for the readers to return. It is idempotent.
func (c *Conn) Close() error {
	c.once.Do(func() {
		for _, f := range c.fams {
			f.listen.Close()
			f.query.Close()
		}
	})
	c.wg.Wait()
	return nil
}
