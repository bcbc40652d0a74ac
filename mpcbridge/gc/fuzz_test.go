package gc

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/cipherprune/cipherprune/internal/fuzzedit"
	"github.com/cipherprune/cipherprune/mpcbridge/internal/nettest"
)

// FuzzParseHello decodes arbitrary hellos: no panic, a refusal is
// ErrMalformed, and an accepted hello re-encodes to the same bytes.
func FuzzParseHello(f *testing.F) {
	p := mustParams(f, DefaultParamsLiteral)
	for _, h := range []hello{newHello(roleGarbler, p, 8, nil), newHello(roleEvaluator, p, 1<<31, errors.New("refused"))} {
		f.Add(h.marshal())
	}
	f.Add(bytes.Repeat([]byte{0xff}, helloSize))
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
	})
}

// readerConn reads the peer's bytes from r and discards writes; it is safe
// for a Write concurrent with a Read, as the protocol needs.
type readerConn struct{ r io.Reader }

func (c readerConn) Read(b []byte) (int, error)  { return c.r.Read(b) }
func (c readerConn) Write(b []byte) (int, error) { return len(b), nil }

// fuzzM is the number of scores of the stream fuzz targets, and fuzzLits
// their parameters: small circuits, the comparison over both OTs and the
// top-K circuit.
const fuzzM = 3

var fuzzLits = []ParamsLiteral{{K: 16, F: 8}, {K: 16, F: 8, OT: ChouOrlandi}, {K: 16, F: 8, KeepGroup: 4, KeepBase: 1}}

// fuzzTies are the tie orders' shares of the top-K calls (nil for the
// comparison): each party's shares of the orders 0, 1, 2.
func fuzzTies(p Params, garbler bool) []uint64 {
	if p.KeepGroup() == 0 {
		return nil
	}
	g := []uint64{7, 8, 9}
	if garbler {
		return g
	}
	e := make([]uint64, len(g))
	for j := range e {
		e[j] = uint64(j) - g[j]
	}
	return e
}

// garble runs the garbler's side of p's circuit.
func garble(ctx context.Context, cache *Cache, conn io.ReadWriter, p Params, v []uint64, theta, beta uint64) ([]bool, []bool, error) {
	if ties := fuzzTies(p, true); ties != nil {
		return cache.GarbleTopK(ctx, conn, p, v, ties, theta, beta)
	}
	return cache.Garble(ctx, conn, p, v, theta, beta)
}

// evaluate runs the evaluator's side of p's circuit.
func evaluate(ctx context.Context, cache *Cache, conn io.ReadWriter, p Params, c []uint64) ([]bool, []bool, error) {
	if ties := fuzzTies(p, false); ties != nil {
		return cache.EvaluateTopK(ctx, conn, p, c, ties)
	}
	return cache.Evaluate(ctx, conn, p, c)
}

// transcripts returns what each party writes in one honest run with p.
func transcripts(tb testing.TB, p Params) (garbler, evaluator []byte) {
	tb.Helper()
	ga, ea := nettest.Pair(tb, "pipe")
	g := &nettest.CountConn{Conn: ga, Keep: true}
	e := &nettest.CountConn{Conn: ea, Keep: true}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r := rand.New(rand.NewPCG(3, 4))
	c, v := split(r, p.K(), scoresFor(r, p.K(), fuzzM, 5, 9))
	done := make(chan error, 1)
	go func() { _, _, err := garble(ctx, nil, g, p, v, 5, 9); done <- err }()
	_, _, eerr := evaluate(ctx, nil, e, p, c)
	if gerr := <-done; gerr != nil || eerr != nil {
		tb.Fatal(gerr, eerr)
	}
	return bytes.Clone(g.Sent.Bytes()), bytes.Clone(e.Sent.Bytes())
}

// addEdits adds, for each parameter set, the honest transcript, cut by a
// byte, with a byte flipped in its last part and in its hello, and raw
// streams: the hello alone and nothing.
func addEdits(f *testing.F, bases [][]byte) {
	for i, b := range bases {
		w := uint8(i)
		at := len(b) - 20
		f.Add(w, false, []byte{})
		f.Add(w, false, []byte{0xff})
		f.Add(w, false, []byte{0, byte(at >> 16), byte(at >> 8), byte(at), 0x01})
		f.Add(w, false, []byte{0, 0, 0, 8, 0x80})
		f.Add(w, true, bytes.Clone(b[:helloSize]))
		f.Add(w, true, []byte{})
	}
}

// fuzzCall runs call on the peer stream b: it must return (the stream
// ends, so a call that waits for more fails), never panic, and fail only
// with an error, never by a timeout.
func fuzzCall(t *testing.T, b []byte, call func(ctx context.Context, conn io.ReadWriter) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := call(ctx, readerConn{bytes.NewReader(b)})
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("the call hung on %d bytes: %v", len(b), err)
	}
	return err
}

// fuzzSetup returns the parameters of the stream targets and, for each, an
// honest garbler's and evaluator's transcript.
func fuzzSetup(f *testing.F) (ps []Params, garblers, evaluators [][]byte) {
	for _, lit := range fuzzLits {
		p := mustParams(f, lit)
		g, e := transcripts(f, p)
		ps, garblers, evaluators = append(ps, p), append(garblers, g), append(evaluators, e)
	}
	return ps, garblers, evaluators
}

// FuzzEvaluate runs the evaluator (the client) against an arbitrary
// garbler's byte stream: hello, base and extended OT messages, the garbled
// circuit. The edited streams are honest garblers' transcripts, which the
// OTs accept with other randomness (they are semi-honest), so the edits
// reach the garbled-circuit decoder.
func FuzzEvaluate(f *testing.F) {
	ps, garblers, _ := fuzzSetup(f)
	addEdits(f, garblers)
	cache := NewCache()
	shares := make([]uint64, fuzzM)
	f.Fuzz(func(t *testing.T, which uint8, raw bool, data []byte) {
		i := int(which) % len(ps)
		b := fuzzedit.Input(raw, data, garblers[i])
		var keep, high []bool
		err := fuzzCall(t, b, func(ctx context.Context, conn io.ReadWriter) error {
			var err error
			keep, high, err = evaluate(ctx, cache, conn, ps[i], shares)
			return err
		})
		if err == nil && (len(keep) != fuzzM || len(high) != fuzzM) {
			t.Fatalf("accepted a stream with %d and %d bits for %d scores", len(keep), len(high), fuzzM)
		}
	})
}

// FuzzGarble runs the garbler (the server) against an arbitrary
// evaluator's byte stream: hello, OT messages, output labels. An output
// label that is not one of its wire's two is ErrMalformed, so a replayed
// or edited transcript is never accepted.
func FuzzGarble(f *testing.F) {
	ps, _, evaluators := fuzzSetup(f)
	addEdits(f, evaluators)
	cache := NewCache()
	shares := make([]uint64, fuzzM)
	f.Fuzz(func(t *testing.T, which uint8, raw bool, data []byte) {
		i := int(which) % len(ps)
		b := fuzzedit.Input(raw, data, evaluators[i])
		err := fuzzCall(t, b, func(ctx context.Context, conn io.ReadWriter) error {
			_, _, err := garble(ctx, cache, conn, ps[i], shares, 5, 9)
			return err
		})
		if err == nil {
			t.Fatalf("accepted %d bytes not from an evaluator of this run", len(b))
		}
	})
}
