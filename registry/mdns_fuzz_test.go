package registry

import (
	"bytes"
	"compress/zlib"
	"encoding/hex"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/seed-b3892490/micro/internal/mdns"
	"github.com/seed-b3892490/micro/logger"
)

var fuzzPeer = netip.MustParseAddrPort("10.253.0.9:5353")

// mdnsSeeds are packets of every kind the handler meets, good and hostile.
func mdnsSeeds(t testing.TB) [][]byte {
	r := NewMDNSRegistry().(*mdnsRegistry)
	s := &Service{Name: "greeter", Version: "1", Endpoints: []*Endpoint{{Name: "Greeter.Hello", Metadata: map[string]string{"a": "b"}}}}
	n := &Node{Id: "greeter-1", Address: "10.253.0.9:8080", Metadata: map[string]string{"k": "v"}}
	in, err := r.instance("micro", s, n, 90, 7)
	if err != nil {
		t.Fatal(err)
	}
	pack := func(m *dns.Msg) []byte {
		b, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	announce := pack(mdns.Announcement("micro", in, 90))
	goodbye := pack(mdns.Announcement("micro", in, 0))
	query := pack(mdns.Query("greeter.micro."))
	enum := pack(mdns.Query(mdns.EnumName("micro")))
	legacy := pack(mdns.Query(mdns.LegacyEnumName("micro")))
	any := new(dns.Msg)
	any.Question = []dns.Question{{Name: in.Name("micro"), Qtype: dns.TypeANY, Qclass: dns.ClassINET | 1<<15}}

	// a TXT payload that inflates to 8 MiB of zeros
	var bomb bytes.Buffer
	zw, _ := zlib.NewWriterLevel(&bomb, zlib.BestCompression)
	_, _ = zw.Write(make([]byte, 8<<20))
	_ = zw.Close()
	bombHex := hex.EncodeToString(bomb.Bytes())
	var bombTxt []string
	for len(bombHex) > 255 {
		bombTxt, bombHex = append(bombTxt, bombHex[:255]), bombHex[255:]
	}
	bombIn := *in
	bombIn.Text = append(bombTxt, bombHex)
	bombMsg, _ := mdns.Announcement("micro", &bombIn, 90).Pack()

	// one 64 KiB TXT record (many strings), past the message limit
	bigIn := *in
	bigIn.Text = nil
	for i := 0; i < 250; i++ {
		bigIn.Text = append(bigIn.Text, strings.Repeat("ab", 127))
	}
	bigMsg, _ := mdns.Announcement("micro", &bigIn, 90).Pack()

	// a node claiming another service's name in its TXT
	spoof := *in
	spoof.Service = "other"
	spoofMsg, _ := mdns.Announcement("micro", &spoof, 90).Pack()

	return [][]byte{
		announce, goodbye, query, enum, legacy, pack(any), bombMsg, bigMsg, spoofMsg,
		announce[:len(announce)/2],                  // truncated
		{}, {0, 0, 0x84, 0, 0, 0, 0, 1, 0, 0, 0, 0}, // header only, claims one answer
		[]byte("not a dns message at all"),
	}
}

// FuzzMDNSHandle feeds the packet handler arbitrary datagrams as responses, queries and
// unicast replies: it must never panic, and what it learns must be well formed.
func FuzzMDNSHandle(f *testing.F) {
	for _, s := range mdnsSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := NewMDNSRegistry(Logger(logger.NewLogger(logger.WithOutput(&bytes.Buffer{})))).(*mdnsRegistry)
		w := newQueueWatcher(WatchOptions{}, nil)
		r.watchers[w] = struct{}{}
		l := &mdnsLookup{found: map[string]*mdnsNode{}, gone: map[string]uint64{}}
		var m dns.Msg
		if m.Unpack(data) == nil {
			l.id = m.Id
		}
		r.lookups[l] = struct{}{}
		// a node registered here, so that queries have something to answer
		s := &Service{Name: "greeter", Version: "1"}
		n := &Node{Id: "greeter-local", Address: "10.253.0.1:1"}
		in, err := r.instance("micro", s, n, 90, 1)
		if err != nil {
			t.Fatal(err)
		}
		r.regs[nodeKey(s.Name, n.Id)] = &mdnsReg{svc: oneNode(s, n), inst: in, ttl: 90, seq: 1, announced: time.Now()}

		r.handle(mdns.Packet{Data: data, Src: fuzzPeer})
		r.handle(mdns.Packet{Data: data, Src: fuzzPeer, Reply: true})
		r.handle(mdns.Packet{Data: data, Src: netip.MustParseAddrPort("10.253.0.9:40000")})
		if m.Unpack(data) == nil && !m.Response {
			for _, out := range mdns.Answer("micro", &m, []*mdns.Instance{in}) {
				if _, err := out.Pack(); err != nil {
					t.Fatalf("an answer does not pack: %v", err)
				}
			}
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.timer != nil {
			r.timer.Stop()
		}
		for key, node := range r.view {
			if len(node.svc.Nodes) != 1 || node.svc.Name == "" || nodeKey(node.svc.Name, node.svc.Nodes[0].Id) != key {
				t.Fatalf("view entry %q holds %+v", key, node.svc)
			}
		}
		if _, ok := r.view[nodeKey("greeter", "greeter-local")]; ok {
			t.Fatal("a packet took over the node registered here")
		}
	})
}

// FuzzMDNSTxt decodes arbitrary TXT strings: errors, never panics, and never a payload
// past the limit.
func FuzzMDNSTxt(f *testing.F) {
	good, _ := encodeTxt(&mdnsTxt{Service: "greeter", Version: "1", Metadata: map[string]string{"k": "v"}, Seq: 3, TTL: 90})
	f.Add(strings.Join(good, ""))
	f.Add("")
	f.Add("zz")
	f.Add("78da")
	f.Add(hex.EncodeToString([]byte("not zlib")))
	for _, s := range []string{`{}`, `{"Service":""}`, `{"Service":"x","Endpoints":[null]}`, `[1,2]`, `{"Service":"x","Metadata":{"a":1}}`, `{"Service":"x","Seq":-1}`} {
		var b bytes.Buffer
		zw := zlib.NewWriter(&b)
		_, _ = zw.Write([]byte(s))
		_ = zw.Close()
		f.Add(hex.EncodeToString(b.Bytes()))
	}
	f.Fuzz(func(t *testing.T, s string) {
		var strs []string
		for len(s) > 255 {
			strs, s = append(strs, s[:255]), s[255:]
		}
		strs = append(strs, s)
		txt, err := decodeTxt(strs)
		if err == nil && txt.Service == "" {
			t.Fatal("decoded a payload without a service")
		}
	})
}
