package frame_test

import (
	"bytes"
	"errors"
	"io"
	"runtime"
	"testing"

	"github.com/seed-b3892490/micro/internal/frame"
)

func TestRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	_ = frame.Write(&buf, frame.Open, []byte("open"))
	_ = frame.Write(&buf, frame.Message, nil)
	_ = frame.Write(&buf, frame.End, []byte(`{"code":400}`))
	for _, want := range []struct {
		f frame.Flags
		p string
	}{{frame.Open, "open"}, {frame.Message, ""}, {frame.End, `{"code":400}`}} {
		f, p, err := frame.Read(&buf, 1<<20)
		if err != nil || f != want.f || string(p) != want.p {
			t.Fatalf("got %d %q %v", f, p, err)
		}
	}
	if _, _, err := frame.Read(&buf, 1<<20); err != io.EOF {
		t.Fatalf("end: %v", err)
	}
}

// TestF2LyingLengths: a length claiming 4 GiB with 4 bytes behind it is refused without
// allocating for it; a truncated frame is an unexpected EOF.
func TestF2LyingLengths(t *testing.T) {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, _, err := frame.Read(bytes.NewReader([]byte{0, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4}), 4<<20)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, frame.ErrTooLarge) {
		t.Fatalf("got %v", err)
	}
	if d := after.TotalAlloc - before.TotalAlloc; d > 64<<10 {
		t.Fatalf("allocated %d bytes for a lying length", d)
	}
	if _, _, err := frame.Read(bytes.NewReader([]byte{0, 0, 0, 0, 10, 1, 2}), 4<<20); err != io.ErrUnexpectedEOF {
		t.Fatalf("truncated payload: %v", err)
	}
	if _, _, err := frame.Read(bytes.NewReader([]byte{0, 0, 0}), 4<<20); err != io.ErrUnexpectedEOF {
		t.Fatalf("truncated header: %v", err)
	}
	if _, _, err := frame.Read(bytes.NewReader([]byte{9, 0, 0, 0, 0}), 4<<20); !errors.Is(err, frame.ErrBadFlags) {
		t.Fatalf("bad flags: %v", err)
	}
}

func FuzzRead(f *testing.F) {
	for _, s := range [][]byte{{}, {0}, {0, 0, 0, 0, 0}, {1, 0, 0, 0, 1, 'x'}, {2, 0, 0, 0, 2, '{', '}'}, {0, 0xff, 0xff, 0xff, 0xff}, {3, 0, 0, 0, 0}, {0, 0, 0, 0, 5, 'a'}, {0, 0, 0, 0, 1, 'a', 0, 0, 0, 0, 1, 'b'}, bytes.Repeat([]byte{0, 0, 0, 0, 0}, 50)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		for {
			fl, p, err := frame.Read(r, 1<<16)
			if err != nil {
				return
			}
			var buf bytes.Buffer
			_ = frame.Write(&buf, fl, p)
			fl2, p2, err := frame.Read(&buf, 1<<16)
			if err != nil || fl2 != fl || !bytes.Equal(p, p2) {
				t.Fatalf("round trip: %v", err)
			}
		}
	})
}
