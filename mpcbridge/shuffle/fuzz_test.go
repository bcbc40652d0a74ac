package shuffle

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/markkurossi/mpc/ot"

	"github.com/cipherprune/cipherprune/internal/fuzzedit"
	"github.com/cipherprune/cipherprune/mpcbridge/internal/nettest"
)

// FuzzParseHello decodes arbitrary hellos: no panic, and anything accepted
// re-encodes to the same bytes and respects the size bounds.
func FuzzParseHello(f *testing.F) {
	good := (&hello{role: roleAssistant, n: 128, width: 769}).marshal()
	f.Add(good)
	f.Add((&hello{role: rolePermuter, status: statusAbort, n: 1 << 31}).marshal())
	f.Add(good[:helloSize-1])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := parseHello(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			return
		}
		if !bytes.Equal(h.marshal(), b) {
			t.Fatalf("hello %x re-encodes as %x", b, h.marshal())
		}
		if h.status == statusOK && (h.n > MaxRows || h.width > MaxWidth) {
			t.Fatalf("accepted n = %d, width = %d", h.n, h.width)
		}
	})
}

// readerConn reads from r and discards writes.
type readerConn struct{ r io.Reader }

func (c readerConn) Read(b []byte) (int, error)  { return c.r.Read(b) }
func (c readerConn) Write(b []byte) (int, error) { return len(b), nil }

// FuzzCorrections decodes arbitrary correction messages on the permuter's
// side (n and width from the first byte, keys and switch bits from the
// second; the ring from the first too): a short message fails with io.ErrUnexpectedEOF or io.EOF, any
// long enough one is accepted, and whatever the corrections, each switch
// preserves m_a + m_b, so the column sums of the slots are unchanged.
func FuzzCorrections(f *testing.F) {
	f.Add([]byte{0x00, 0x00})
	f.Add(append([]byte{0x12, 0x34}, make([]byte, 8*3*6)...))
	f.Add(append([]byte{0xff, 0xff}, bytes.Repeat([]byte{0xff}, 4000)...))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) < 2 {
			return
		}
		n, width := 1+int(b[0]&7), 1+int(b[0]>>3&3)
		ring := Ring(b[0] >> 5 & 1)
		if ring == Ring128 {
			width *= 2
		}
		r := rand.New(rand.NewPCG(uint64(b[1]), 1))
		size := paddedSize(n)
		nw := newNetwork(size)
		bits := route(sourceOf(r.Perm(n), size))
		keys := make([]ot.Label, numSwitches(size))
		for i := range keys {
			keys[i] = ot.Label{D0: r.Uint64(), D1: r.Uint64()}
		}
		m := make([]uint64, size*width)
		for i := range m[:n*width] {
			m[i] = r.Uint64()
		}
		sum := func() []uint64 {
			s := make([]uint64, width)
			for i := 0; i < len(m); i += width {
				ring.add(s, s, m[i:i+width])
			}
			return s
		}
		before := sum()
		s := newStream(readerConn{bytes.NewReader(b[2:])})
		err := evalPermuter(ring, nw, bits, keys, m, width, s.readWords)
		need := 8 * numSwitches(size) * width
		switch {
		case len(b)-2 < need:
			if !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
				t.Fatalf("%d bytes of %d: err = %v", len(b)-2, need, err)
			}
		case err != nil:
			t.Fatalf("%d bytes of %d: err = %v", len(b)-2, need, err)
		default:
			after := sum()
			for k := range before {
				if before[k] != after[k] {
					t.Fatalf("column %d sum changed", k)
				}
			}
		}
	})
}

// FuzzChunk decodes arbitrary IKNP matrix chunks (the one length-prefixed
// message the OT library reads from the peer): a chunk is accepted only
// with a valid length, and then holds exactly the bytes that followed it.
func FuzzChunk(f *testing.F) {
	f.Add([]byte{0, 0, 0, 128})
	f.Add(append([]byte{0, 0, 0x20, 0}, make([]byte, 8192)...))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		s := newStream(readerConn{bytes.NewReader(b)})
		chunk, err := s.ReceiveData()
		if err != nil {
			return
		}
		if checkChunk(len(chunk)) != nil || len(b) < 4+len(chunk) || !bytes.Equal(chunk, b[4:4+len(chunk)]) {
			t.Fatalf("accepted a chunk of %d bytes from %d", len(chunk), len(b))
		}
	})
}

// FuzzPermuteStream runs the permuter (n = 4, width 2) against an arbitrary
// peer byte stream: it must fail cleanly (no panic, no hang: the stream
// ends) and never accept a stream that is not a whole protocol run.
func FuzzPermuteStream(f *testing.F) {
	good := (&hello{role: roleAssistant, n: 4, width: 2}).marshal()
	f.Add(good)
	f.Add(append(append([]byte(nil), good...), make([]byte, 8*8+ot.K*pointSize)...))
	f.Add(append(append([]byte(nil), good...), bytes.Repeat([]byte{7}, 9000)...))
	ctx := context.Background()
	perm := []int{3, 1, 0, 2}
	share := constRows(4, 2, 1)
	f.Fuzz(func(t *testing.T, b []byte) {
		out, err := Permute(ctx, readerConn{bytes.NewReader(b)}, perm, share, nil)
		if err == nil {
			t.Fatalf("accepted %d bytes: %v", len(b), out)
		}
	})
}

// permuterTranscript returns what an honest permuter writes in one
// Permute of n rows of the given width with the ring.
func permuterTranscript(tb testing.TB, ring Ring, n, width int) []byte {
	tb.Helper()
	a, b := nettest.Pair(tb, "pipe")
	pc := &nettest.CountConn{Conn: a, Keep: true}
	r := rand.New(rand.NewPCG(9, uint64(n)))
	pr, qr := runPair(testCtx(tb), Config{Ring: ring}, pc, b, r.Perm(n), randomRows(r, n, width), randomRows(r, n, width))
	if pr.err != nil || qr.err != nil {
		tb.Fatal(pr.err, qr.err)
	}
	return bytes.Clone(pc.Sent.Bytes())
}

// FuzzAssistStream runs the assistant (n = 4, width 2, both rings) against
// an arbitrary permuter's byte stream: hello, base-OT answers and IKNP
// matrix chunks. The edited streams are honest permuters' transcripts,
// which the semi-honest OTs accept with other randomness, so the edits
// reach every message; the call must return (the stream ends) without a
// panic.
func FuzzAssistStream(f *testing.F) {
	rings := []Ring{Ring64, Ring128}
	bases := make([][]byte, len(rings))
	for i, ring := range rings {
		b := permuterTranscript(f, ring, 4, 2)
		bases[i] = b
		at := helloSize + (len(b)-helloSize)/2
		f.Add(uint8(i), false, []byte{})
		f.Add(uint8(i), false, []byte{0xff})
		f.Add(uint8(i), false, []byte{0, byte(at >> 16), byte(at >> 8), byte(at), 0x10})
		f.Add(uint8(i), false, []byte{0, 0, 0, 20, 0x01})
		f.Add(uint8(i), true, bytes.Clone(b[:helloSize]))
		f.Add(uint8(i), true, []byte{})
	}
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, which uint8, raw bool, data []byte) {
		i := int(which) % len(rings)
		b := fuzzedit.Input(raw, data, bases[i])
		out, err := Config{Ring: rings[i]}.Assist(ctx, readerConn{bytes.NewReader(b)}, constRows(4, 2, 3), nil)
		if err == nil && len(out) != 4 {
			t.Fatalf("accepted %d bytes with %d rows out", len(b), len(out))
		}
	})
}
