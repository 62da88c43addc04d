package mdns

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/miekg/dns"
)

// cacheFlush is the top bit of the class of a unique record in a response (RFC 6762
// §10.2); in a question the same bit asks for a unicast answer.
const cacheFlush = 1 << 15

// Instance is one service instance, a node of a service, named
// <node>.<service>.<domain>. (node and service may hold dots, as in Go Micro).
type Instance struct {
	Service string
	Node    string
	// Addr gives the SRV port and the A or AAAA record; an invalid Addr gives port 0
	// and no address record.
	Addr netip.AddrPort
	// Text holds the TXT strings, each at most 255 bytes.
	Text []string
	// TTL is the records' time to live in seconds.
	TTL uint32
}

// ServiceName returns the name browsed for a service: <service>.<domain>.
func ServiceName(service, domain string) string { return service + "." + domain + "." }

// EnumName returns the DNS-SD service enumeration name: _services._dns-sd._udp.<domain>.
func EnumName(domain string) string { return "_services._dns-sd._udp." + domain + "." }

// LegacyEnumName returns the name Go Micro's registry lists services with:
// _services.<domain>., answered with <service>._services.<domain>.
func LegacyEnumName(domain string) string { return "_services." + domain + "." }

// Name returns the instance name.
func (in *Instance) Name(domain string) string {
	return in.Node + "." + ServiceName(in.Service, domain)
}

// CheckName reports whether s can be used in a name: labels of 1 to 63 bytes of letters,
// digits and -_+~:, separated by dots.
func CheckName(s string) error {
	if s == "" {
		return fmt.Errorf("empty name")
	}
	for _, label := range strings.Split(s, ".") {
		if len(label) == 0 || len(label) > 63 {
			return fmt.Errorf("%q: every dot-separated part must be 1 to 63 bytes", s)
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-_+~:", c) >= 0
			if !ok {
				return fmt.Errorf("%q: byte %q cannot be part of an mDNS name", s, c)
			}
		}
	}
	return nil
}

// Records returns the records of in: PTR (service → instance), SRV, TXT and A or AAAA,
// with the given TTL (0 makes goodbye records).
func (in *Instance) Records(domain string, ttl uint32) []dns.RR {
	name := in.Name(domain)
	rrs := []dns.RR{
		&dns.PTR{Hdr: dns.RR_Header{Name: ServiceName(in.Service, domain), Rrtype: dns.TypePTR, Class: dns.ClassINET, Ttl: ttl}, Ptr: name},
		&dns.SRV{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeSRV, Class: dns.ClassINET | cacheFlush, Ttl: ttl}, Priority: 10, Weight: 1, Port: in.Addr.Port(), Target: name},
		&dns.TXT{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeTXT, Class: dns.ClassINET | cacheFlush, Ttl: ttl}, Txt: in.Text},
	}
	if a := in.Addr.Addr(); a.IsValid() {
		if a.Is4() || a.Is4In6() {
			rrs = append(rrs, &dns.A{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA, Class: dns.ClassINET | cacheFlush, Ttl: ttl}, A: a.Unmap().AsSlice()})
		} else {
			rrs = append(rrs, &dns.AAAA{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeAAAA, Class: dns.ClassINET | cacheFlush, Ttl: ttl}, AAAA: a.AsSlice()})
		}
	}
	return rrs
}

// Response returns an authoritative response message.
func Response(answers, extras []dns.RR) *dns.Msg {
	m := new(dns.Msg)
	m.Response = true
	m.Authoritative = true
	m.Compress = true
	m.Answer = answers
	m.Extra = extras
	return m
}

// Announcement returns the unsolicited response announcing in (or, with ttl 0, saying
// goodbye to it).
func Announcement(domain string, in *Instance, ttl uint32) *dns.Msg {
	return Response(in.Records(domain, ttl), nil)
}

// Query returns a one-shot query for the PTR records of name.
func Query(name string) *dns.Msg {
	m := new(dns.Msg)
	m.Id = dns.Id()
	m.Question = []dns.Question{{Name: name, Qtype: dns.TypePTR, Qclass: dns.ClassINET}}
	return m
}

func equalName(a, b string) bool { return strings.EqualFold(a, b) }

// knownAnswer reports whether the query's known-answer section holds rr with at least
// half its TTL left (RFC 6762 §7.1), so it need not be sent.
func knownAnswer(query *dns.Msg, rr dns.RR) bool {
	for _, k := range query.Answer {
		p, ok := k.(*dns.PTR)
		q, ok2 := rr.(*dns.PTR)
		if ok && ok2 && equalName(p.Hdr.Name, q.Hdr.Name) && equalName(p.Ptr, q.Ptr) && p.Hdr.Ttl >= q.Hdr.Ttl/2 {
			return true
		}
	}
	return false
}

// Answer returns the responses to query about instances: one message per instance
// concerned (so that each stays small), and one for service enumeration. Questions of
// other classes or types and names outside domain get nothing.
func Answer(domain string, query *dns.Msg, instances []*Instance) []*dns.Msg {
	var out []*dns.Msg
	asked := make(map[int][]uint16) // instance index -> record types answered
	var enum, legacy []dns.RR
	seenSvc := map[string]bool{}
	for _, q := range query.Question {
		if q.Qclass&^cacheFlush != dns.ClassINET && q.Qclass&^cacheFlush != dns.ClassANY {
			continue
		}
		switch {
		case q.Qtype == dns.TypePTR && equalName(q.Name, EnumName(domain)):
			for _, in := range instances {
				key := strings.ToLower(in.Service)
				if seenSvc["e"+key] {
					continue
				}
				seenSvc["e"+key] = true
				enum = append(enum, &dns.PTR{Hdr: dns.RR_Header{Name: EnumName(domain), Rrtype: dns.TypePTR, Class: dns.ClassINET, Ttl: in.TTL}, Ptr: ServiceName(in.Service, domain)})
			}
			for i := range instances {
				asked[i] = append(asked[i], dns.TypePTR)
			}
		case q.Qtype == dns.TypePTR && equalName(q.Name, LegacyEnumName(domain)):
			for _, in := range instances {
				key := strings.ToLower(in.Service)
				if seenSvc["l"+key] {
					continue
				}
				seenSvc["l"+key] = true
				legacy = append(legacy, &dns.PTR{Hdr: dns.RR_Header{Name: LegacyEnumName(domain), Rrtype: dns.TypePTR, Class: dns.ClassINET, Ttl: in.TTL}, Ptr: in.Service + "." + LegacyEnumName(domain)})
			}
		default:
			for i, in := range instances {
				switch {
				case (q.Qtype == dns.TypePTR || q.Qtype == dns.TypeANY) && equalName(q.Name, ServiceName(in.Service, domain)):
					asked[i] = append(asked[i], dns.TypePTR)
				case equalName(q.Name, in.Name(domain)):
					switch q.Qtype {
					case dns.TypeANY:
						asked[i] = append(asked[i], dns.TypeSRV, dns.TypeTXT, dns.TypeA, dns.TypeAAAA)
					case dns.TypeSRV, dns.TypeTXT, dns.TypeA, dns.TypeAAAA:
						asked[i] = append(asked[i], q.Qtype)
					}
				}
			}
		}
	}
	if len(enum) > 0 {
		out = append(out, Response(enum, nil))
	}
	if len(legacy) > 0 {
		out = append(out, Response(legacy, nil))
	}
	for i, in := range instances {
		types := asked[i]
		if len(types) == 0 {
			continue
		}
		var answers, extras []dns.RR
		for _, rr := range in.Records(domain, in.TTL) {
			want := false
			for _, t := range types {
				want = want || rr.Header().Rrtype == t
			}
			if want {
				if knownAnswer(query, rr) {
					continue
				}
				answers = append(answers, rr)
			} else {
				extras = append(extras, rr)
			}
		}
		if len(answers) > 0 {
			out = append(out, Response(answers, extras))
		}
	}
	return out
}

// Seen is what a response said about one instance.
type Seen struct {
	// Name is the instance name as received.
	Name string
	// Service is the service a PTR record named the instance under ("" without a PTR).
	Service string
	Port    uint16
	Target  string
	Addrs   []netip.Addr
	Text    []string
	HasText bool
	// TTL is the TTL of the PTR record, else of the TXT, else of the SRV record.
	TTL uint32
	// Goodbye is true when the records had TTL 0: the instance is gone.
	Goodbye bool
}

// Parsed is what a response said.
type Parsed struct {
	Instances []*Seen
	// Services are the names found by service enumeration (DNS-SD or Go Micro's).
	Services []string
}

// trimSuffixFold removes suffix from s, ignoring case, and reports whether it was there.
func trimSuffixFold(s, suffix string) (string, bool) {
	if len(s) <= len(suffix) || !strings.EqualFold(s[len(s)-len(suffix):], suffix) {
		return s, false
	}
	return s[:len(s)-len(suffix)], true
}

// Parse reads the records of a response that concern domain. It never fails: records it
// does not understand are skipped.
func Parse(domain string, m *dns.Msg) Parsed {
	var p Parsed
	byName := map[string]*Seen{}
	get := func(name string) *Seen {
		key := strings.ToLower(name)
		s := byName[key]
		if s == nil {
			s = &Seen{Name: name}
			byName[key] = s
			p.Instances = append(p.Instances, s)
		}
		return s
	}
	ttlSet := map[*Seen]int{} // 3 PTR, 2 TXT, 1 SRV: which record the TTL came from
	setTTL := func(s *Seen, ttl uint32, rank int) {
		if ttlSet[s] < rank {
			ttlSet[s] = rank
			s.TTL = ttl
		}
	}
	addrs := map[string][]netip.Addr{}
	suffix := "." + domain + "."
	sections := [][]dns.RR{m.Answer, m.Ns, m.Extra}
	for _, sec := range sections {
		for _, rr := range sec {
			h := rr.Header()
			if h.Class&^cacheFlush != dns.ClassINET {
				continue
			}
			if _, ok := trimSuffixFold(h.Name, suffix); !ok && !strings.EqualFold(h.Name, domain+".") {
				continue
			}
			switch r := rr.(type) {
			case *dns.PTR:
				switch {
				case equalName(h.Name, EnumName(domain)):
					if svc, ok := trimSuffixFold(r.Ptr, suffix); ok {
						p.Services = append(p.Services, svc)
					}
				case equalName(h.Name, LegacyEnumName(domain)):
					if svc, ok := trimSuffixFold(r.Ptr, "."+LegacyEnumName(domain)); ok {
						p.Services = append(p.Services, svc)
					}
				default:
					svc, _ := trimSuffixFold(h.Name, suffix)
					if _, ok := trimSuffixFold(r.Ptr, "."+h.Name); !ok {
						continue // an instance must be named under its service
					}
					s := get(r.Ptr)
					s.Service = svc
					setTTL(s, h.Ttl, 3)
				}
			case *dns.SRV:
				s := get(h.Name)
				s.Port, s.Target = r.Port, r.Target
				setTTL(s, h.Ttl, 1)
			case *dns.TXT:
				s := get(h.Name)
				if !s.HasText {
					s.Text, s.HasText = r.Txt, true
				}
				setTTL(s, h.Ttl, 2)
			case *dns.A:
				if a, ok := netip.AddrFromSlice(r.A); ok {
					addrs[strings.ToLower(h.Name)] = append(addrs[strings.ToLower(h.Name)], a.Unmap())
				}
			case *dns.AAAA:
				if a, ok := netip.AddrFromSlice(r.AAAA); ok {
					addrs[strings.ToLower(h.Name)] = append(addrs[strings.ToLower(h.Name)], a)
				}
			}
		}
	}
	for _, s := range p.Instances {
		if s.Target != "" {
			s.Addrs = addrs[strings.ToLower(s.Target)]
		}
		s.Goodbye = s.TTL == 0
	}
	return p
}
