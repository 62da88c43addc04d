package mdns

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/miekg/dns"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func testInstance() *Instance {
	return &Instance{Service: "go.micro.greeter", Node: "go.micro.greeter-1", Addr: netip.MustParseAddrPort("10.0.0.7:8080"), Text: []string{"abcd", "ef"}, TTL: 90}
}

// TestAnnouncementParses: the records of an instance read back as that instance, with
// dotted service and node names as Go Micro uses them.
func TestAnnouncementParses(t *testing.T) {
	in := testInstance()
	b, err := Announcement("micro", in, in.TTL).Pack()
	if err != nil {
		t.Fatal(err)
	}
	var m dns.Msg
	if err := m.Unpack(b); err != nil {
		t.Fatal(err)
	}
	p := Parse("micro", &m)
	if len(p.Instances) != 1 {
		t.Fatalf("instances %+v", p.Instances)
	}
	s := p.Instances[0]
	if s.Name != in.Name("micro") || s.Service != in.Service || s.Port != 8080 || len(s.Addrs) != 1 || s.Addrs[0] != in.Addr.Addr() ||
		strings.Join(s.Text, "") != "abcdef" || s.TTL != 90 || s.Goodbye {
		t.Fatalf("parsed %+v", s)
	}
	bye, _ := Announcement("micro", in, 0).Pack()
	_ = m.Unpack(bye)
	if p := Parse("micro", &m); len(p.Instances) != 1 || !p.Instances[0].Goodbye {
		t.Fatalf("goodbye parsed as %+v", p.Instances)
	}
	if p := Parse("other", &m); len(p.Instances) != 0 {
		t.Fatalf("records of another domain were taken: %+v", p.Instances)
	}
}

// TestAnswer: each kind of question gets the records it asks for, and nothing is
// answered for names not ours or for known answers.
func TestAnswer(t *testing.T) {
	in := testInstance()
	other := &Instance{Service: "other", Node: "other-1", Text: []string{"x"}, TTL: 90}
	ask := func(name string, qtype uint16) []*dns.Msg {
		q := new(dns.Msg)
		q.Question = []dns.Question{{Name: name, Qtype: qtype, Qclass: dns.ClassINET}}
		return Answer("micro", q, []*Instance{in, other})
	}
	if got := ask("go.micro.greeter.micro.", dns.TypePTR); len(got) != 1 || len(got[0].Answer) != 1 || len(got[0].Extra) != 3 {
		t.Fatalf("PTR of the service: %v", got)
	}
	if got := ask(EnumName("micro"), dns.TypePTR); len(got) != 3 || len(got[0].Answer) != 2 {
		t.Fatalf("enumeration: %v", got)
	}
	if got := ask(LegacyEnumName("micro"), dns.TypePTR); len(got) != 1 || got[0].Answer[0].(*dns.PTR).Ptr != "go.micro.greeter._services.micro." {
		t.Fatalf("Go Micro's listing: %v", got)
	}
	if got := ask(in.Name("micro"), dns.TypeSRV); len(got) != 1 || got[0].Answer[0].Header().Rrtype != dns.TypeSRV {
		t.Fatalf("SRV: %v", got)
	}
	if got := ask(in.Name("micro"), dns.TypeANY); len(got) != 1 || len(got[0].Answer) != 3 {
		t.Fatalf("ANY: %v", got)
	}
	if got := ask("nobody.micro.", dns.TypePTR); len(got) != 0 {
		t.Fatalf("a name not ours was answered: %v", got)
	}
	if got := ask("go.micro.greeter.local.", dns.TypePTR); len(got) != 0 {
		t.Fatalf("another domain was answered: %v", got)
	}
	q := new(dns.Msg)
	q.Question = []dns.Question{{Name: "go.micro.greeter.micro.", Qtype: dns.TypePTR, Qclass: dns.ClassINET}}
	q.Answer = []dns.RR{in.Records("micro", 90)[0]}
	if got := Answer("micro", q, []*Instance{in}); len(got) != 0 {
		t.Fatalf("a known answer was sent again: %v", got)
	}
}

func TestCheckName(t *testing.T) {
	for _, ok := range []string{"helloworld", "go.micro.srv.greeter", "a-b_c+d~e:f", strings.Repeat("a", 63)} {
		if err := CheckName(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "a..b", ".a", strings.Repeat("a", 64), "with space", `back\slash`, "quote\"", "new\nline", "é"} {
		if err := CheckName(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// FuzzParse reads arbitrary datagrams as responses and queries: no panic, and every
// answer built packs.
func FuzzParse(f *testing.F) {
	in := testInstance()
	for _, ttl := range []uint32{0, 90} {
		b, _ := Announcement("micro", in, ttl).Pack()
		f.Add(b)
		f.Add(b[:len(b)-3])
	}
	for _, name := range []string{"go.micro.greeter.micro.", EnumName("micro"), LegacyEnumName("micro"), in.Name("micro")} {
		b, _ := Query(name).Pack()
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte{0, 0, 0x84, 0, 0, 1, 0, 1, 0, 0, 0, 0})
	f.Add([]byte("\x00\x00\x84\x00\x00\x00\x00\x01\x00\x00\x00\x00\xc0\x0c\x00\x0c\x00\x01")) // a pointer to itself
	f.Fuzz(func(t *testing.T, data []byte) {
		var m dns.Msg
		if m.Unpack(data) != nil {
			return
		}
		p := Parse("micro", &m)
		for _, s := range p.Instances {
			if s.Name == "" {
				t.Fatal("an instance without a name")
			}
		}
		for _, out := range Answer("micro", &m, []*Instance{in}) {
			if _, err := out.Pack(); err != nil {
				t.Fatalf("answer does not pack: %v", err)
			}
		}
	})
}
