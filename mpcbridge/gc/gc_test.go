package gc

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/cipherprune/cipherprune/mpcbridge/internal/nettest"
)

// testCtx bounds every protocol test, so a hang fails instead of stalling.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// thresholdSets returns (θ, β) pairs for K: random, equal, extremes.
func thresholdSets(r *rand.Rand, k int) [][2]int64 {
	lo, hi := -int64(1)<<uint(k-1), int64(uint64(1)<<uint(k-1)-1)
	return [][2]int64{
		{wrap(int64(r.Uint64()), k), wrap(int64(r.Uint64()), k)},
		{wrap(int64(r.Uint64()), k) / 2, wrap(int64(r.Uint64()), k) / 2},
		{0, 0},
		{lo, hi},
		{hi, lo},
	}
}

func TestGarbleEvaluate(t *testing.T) {
	defer noLeaks(t)()
	cache := NewCache()
	for _, tc := range []struct {
		lit       ParamsLiteral
		transport string
		m         []int
	}{
		{DefaultParamsLiteral, "pipe", []int{1, 13, 64, 127}},
		{DefaultParamsLiteral, "tcp", []int{9, 128}},
		{ParamsLiteral{K: 32, F: 16}, "pipe", []int{8, 33}},
		{ParamsLiteral{K: 32, F: 16}, "tcp", []int{100}},
		{ParamsLiteral{K: 41, F: 20, Buckets: []int{24, 40}}, "pipe", []int{20, 40}},
		{ParamsLiteral{K: 2}, "pipe", []int{5}},
		{ParamsLiteral{K: 16, F: 8, OT: ChouOrlandi}, "pipe", []int{16}},
		{ParamsLiteral{K: 16, F: 8, OT: ChouOrlandi}, "tcp", []int{3}},
	} {
		p := mustParams(t, tc.lit)
		for _, m := range tc.m {
			name := fmt.Sprintf("K=%d/%v/%s/m=%d", p.K(), p.OT(), tc.transport, m)
			t.Run(name, func(t *testing.T) {
				r := rand.New(rand.NewPCG(uint64(p.K()), uint64(m)))
				ts := thresholdSets(r, p.K())
				if testing.Short() || m > 64 {
					ts = ts[:2]
				}
				g, e := nettest.Pair(t, tc.transport)
				for _, th := range ts {
					// One connection for all runs: each call leaves the stream in step.
					c, v := split(r, p.K(), scoresFor(r, p.K(), m, th[0], th[1]))
					theta, beta := uint64(th[0])|garbage(r, p.K()), uint64(th[1])
					gr, er := runPair(testCtx(t), cache, g, e, p, p, v, c, theta, beta)
					checkBits(t, p, c, v, theta, beta, gr, er)
				}
			})
		}
	}
}

func TestZeroScores(t *testing.T) {
	defer noLeaks(t)()
	p := mustParams(t, DefaultParamsLiteral)
	g, e := nettest.Pair(t, "pipe")
	gr, er := runPair(testCtx(t), nil, g, e, p, p, nil, nil, 1, 2)
	if gr.err != nil || er.err != nil || len(gr.keep) != 0 || len(er.high) != 0 {
		t.Fatalf("%+v %+v", gr, er)
	}
}

// TestStreamBoundary checks that neither side reads past the protocol's
// last byte: bytes each side writes right after its call returns reach the
// peer intact.
func TestStreamBoundary(t *testing.T) {
	defer noLeaks(t)()
	p := mustParams(t, ParamsLiteral{K: 32, F: 8})
	for _, transport := range []string{"pipe", "tcp"} {
		for _, m := range []int{0, 10} {
			t.Run(fmt.Sprintf("%s/m=%d", transport, m), func(t *testing.T) {
				g, e := nettest.Pair(t, transport)
				c, v := make([]uint64, m), make([]uint64, m)
				ctx := testCtx(t)
				var wg sync.WaitGroup
				var gerr, eerr error
				var gGot, eGot [8]byte
				wg.Add(2)
				go func() {
					defer wg.Done()
					if _, _, gerr = Garble(ctx, g, p, v, 0, 0); gerr != nil {
						return
					}
					done := make(chan error, 1)
					go func() { _, err := g.Write([]byte("garbler!")); done <- err }()
					_, gerr = io.ReadFull(g, gGot[:])
					if err := <-done; gerr == nil {
						gerr = err
					}
				}()
				go func() {
					defer wg.Done()
					if _, _, eerr = Evaluate(ctx, e, p, c); eerr != nil {
						return
					}
					done := make(chan error, 1)
					go func() { _, err := e.Write([]byte("evaluatr")); done <- err }()
					_, eerr = io.ReadFull(e, eGot[:])
					if err := <-done; eerr == nil {
						eerr = err
					}
				}()
				wg.Wait()
				if gerr != nil || eerr != nil {
					t.Fatal(gerr, eerr)
				}
				if string(gGot[:]) != "evaluatr" || string(eGot[:]) != "garbler!" {
					t.Fatalf("trailers: garbler read %q, evaluator read %q", gGot, eGot)
				}
			})
		}
	}
}

// TestThresholdsNeverSent captures the bytes each party writes and looks
// for its secret inputs: the thresholds (as given and as fed to the
// circuit) and the shares, as 8-byte little- and big-endian words.
func TestThresholdsNeverSent(t *testing.T) {
	defer noLeaks(t)()
	for _, lit := range []ParamsLiteral{DefaultParamsLiteral, {K: 64, F: 16, OT: ChouOrlandi}} {
		t.Run(lit.OT.String(), func(t *testing.T) {
			p := mustParams(t, lit)
			r := rand.New(rand.NewPCG(5, 6))
			m := 64
			if lit.OT == ChouOrlandi {
				m = 8
			}
			theta, beta := r.Uint64(), r.Uint64()
			c, v := split(r, 64, scoresFor(r, 64, m, int64(theta), int64(beta)))
			ga, ea := nettest.Pair(t, "pipe")
			g := &nettest.CountConn{Conn: ga, Keep: true}
			e := &nettest.CountConn{Conn: ea, Keep: true}
			gr, er := runPair(testCtx(t), nil, g, e, p, p, v, c, theta, beta)
			checkBits(t, p, c, v, theta, beta, gr, er)
			top := uint64(1) << 63
			secretsG := []uint64{theta, beta, theta ^ top, beta ^ top, ^(theta ^ top), ^(beta ^ top)}
			for _, x := range v {
				secretsG = append(secretsG, x, x+top)
			}
			find := func(who string, sent []byte, secrets []uint64) {
				for _, x := range secrets {
					var le, be [8]byte
					binary.LittleEndian.PutUint64(le[:], x)
					binary.BigEndian.PutUint64(be[:], x)
					if bytes.Contains(sent, le[:]) || bytes.Contains(sent, be[:]) {
						t.Errorf("the %s's transcript contains its secret %#x", who, x)
					}
				}
			}
			if g.Sent.Len() < 1000 || e.Sent.Len() < 1000 {
				t.Fatalf("transcripts too short: %d, %d bytes", g.Sent.Len(), e.Sent.Len())
			}
			find("garbler", g.Sent.Bytes(), secretsG)
			find("evaluator", e.Sent.Bytes(), c)
		})
	}
}

func TestConcurrentCalls(t *testing.T) {
	defer noLeaks(t)()
	p := mustParams(t, ParamsLiteral{K: 32, F: 16})
	cache := NewCache()
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(7, uint64(i)))
			m := 5 + 10*(i%2) // two buckets, each used twice at once
			g, e := net.Pipe()
			defer g.Close()
			defer e.Close()
			c, v := split(r, 32, scoresFor(r, 32, m, 100, 200))
			gr, er := runPair(testCtx(t), cache, g, e, p, p, v, c, 100, 200)
			checkBits(t, p, c, v, 100, 200, gr, er)
		}()
	}
	wg.Wait()
}

// TestMismatch checks that disagreeing parties both fail with ErrMismatch
// before anything secret is sent, and that the stream stays usable.
func TestMismatch(t *testing.T) {
	defer noLeaks(t)()
	base := mustParams(t, ParamsLiteral{K: 32, F: 16})
	for _, tc := range []struct {
		name   string
		pg, pe ParamsLiteral
		mg, me int
		roles  string // "ge" normal, "gg" both garble, "ee" both evaluate
	}{
		{"K", ParamsLiteral{K: 32, F: 16}, ParamsLiteral{K: 33, F: 16}, 8, 8, "ge"},
		{"F", ParamsLiteral{K: 32, F: 16}, ParamsLiteral{K: 32, F: 15}, 8, 8, "ge"},
		{"OT", ParamsLiteral{K: 32, F: 16}, ParamsLiteral{K: 32, F: 16, OT: ChouOrlandi}, 8, 8, "ge"},
		{"buckets", ParamsLiteral{K: 32, F: 16}, ParamsLiteral{K: 32, F: 16, Buckets: []int{8, 512}}, 8, 8, "ge"},
		{"m", ParamsLiteral{K: 32, F: 16}, ParamsLiteral{K: 32, F: 16}, 8, 9, "ge"},
		{"m=0-vs-5", ParamsLiteral{K: 32, F: 16}, ParamsLiteral{K: 32, F: 16}, 0, 5, "ge"},
		{"both-garble", ParamsLiteral{K: 32, F: 16}, ParamsLiteral{K: 32, F: 16}, 8, 8, "gg"},
		{"both-evaluate", ParamsLiteral{K: 32, F: 16}, ParamsLiteral{K: 32, F: 16}, 8, 8, "ee"},
		{"evaluator-only", ParamsLiteral{K: 32, F: 16}, ParamsLiteral{K: 32, F: 16, EvaluatorOnly: true}, 8, 8, "ge"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pg, pe := mustParams(t, tc.pg), mustParams(t, tc.pe)
			a, b := nettest.Pair(t, "pipe")
			ctx := testCtx(t)
			errs := make(chan error, 2)
			call := func(r byte, conn net.Conn, p Params, m int) {
				var err error
				if r == 'g' {
					_, _, err = Garble(ctx, conn, p, make([]uint64, m), 1, 2)
				} else {
					_, _, err = Evaluate(ctx, conn, p, make([]uint64, m))
				}
				errs <- err
			}
			go call(tc.roles[0], a, pg, tc.mg)
			go call(tc.roles[1], b, pe, tc.me)
			for i := 0; i < 2; i++ {
				if err := <-errs; !errors.Is(err, ErrMismatch) {
					t.Errorf("err = %v, want ErrMismatch", err)
				}
			}
			// Both hellos were consumed: the same conns still work.
			r := rand.New(rand.NewPCG(8, 9))
			c, v := split(r, 32, scoresFor(r, 32, 8, 3, 4))
			gr, er := runPair(ctx, nil, a, b, base, base, v, c, 3, 4)
			checkBits(t, base, c, v, 3, 4, gr, er)
		})
	}
}

// TestArgErrors checks that a party rejecting its own arguments tells the
// peer (ErrPeerAborted) and that the stream stays usable.
func TestArgErrors(t *testing.T) {
	defer noLeaks(t)()
	p := mustParams(t, ParamsLiteral{K: 16, F: 8})
	for _, tc := range []struct {
		name           string
		pg, pe         Params
		mg, me         int
		badG, badE     bool
		wantG, wantE   error
		wantGS, wantES string
	}{
		{name: "garbler-too-many", pg: p, pe: p, mg: 513, me: 8, badG: true, wantE: ErrPeerAborted, wantGS: "513 scores exceed"},
		{name: "evaluator-too-many", pg: p, pe: p, mg: 8, me: 600, badE: true, wantG: ErrPeerAborted, wantES: "600 scores exceed"},
		{name: "garbler-zero-params", pg: Params{}, pe: p, mg: 8, me: 8, badG: true, wantE: ErrPeerAborted, wantGS: "invalid Params"},
		{name: "evaluator-zero-params", pg: p, pe: Params{}, mg: 8, me: 8, badE: true, wantG: ErrPeerAborted, wantES: "invalid Params"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, e := nettest.Pair(t, "pipe")
			gr, er := runPair(testCtx(t), nil, g, e, tc.pg, tc.pe, make([]uint64, tc.mg), make([]uint64, tc.me), 0, 0)
			check := func(who string, err, want error, wantS string) {
				if want != nil && !errors.Is(err, want) || wantS != "" && !errContains(err, wantS) {
					t.Errorf("%s: err = %v, want %v %q", who, err, want, wantS)
				}
			}
			check("garbler", gr.err, tc.wantG, tc.wantGS)
			check("evaluator", er.err, tc.wantE, tc.wantES)
			gr, er = runPair(testCtx(t), nil, g, e, p, p, []uint64{5}, []uint64{0}, 4, 5)
			checkBits(t, p, []uint64{0}, []uint64{5}, 4, 5, gr, er)
		})
	}
	if _, _, err := Evaluate(context.Background(), nil, p, nil); err == nil {
		t.Error("nil conn accepted")
	}
}

// transcriptSizes measures the bytes each party writes in one run.
func transcriptSizes(t *testing.T, p Params, m int) (gBytes, eBytes int) {
	ga, ea := nettest.Pair(t, "pipe")
	g, e := &nettest.CountConn{Conn: ga}, &nettest.CountConn{Conn: ea}
	c, v := make([]uint64, m), make([]uint64, m)
	gr, er := runPair(testCtx(t), nil, g, e, p, p, v, c, 0, 0)
	if gr.err != nil || er.err != nil {
		t.Fatal(gr.err, er.err)
	}
	return int(g.Writes.Load()), int(e.Writes.Load())
}

// TestDisconnect cuts the connection at many points of the protocol, on
// either side and over both transports: both parties must return an error,
// without panicking, hanging or leaking goroutines.
func TestDisconnect(t *testing.T) {
	defer noLeaks(t)()
	for _, lit := range []ParamsLiteral{{K: 32, F: 16}, {K: 16, F: 8, OT: ChouOrlandi}} {
		p := mustParams(t, lit)
		const m = 24
		gBytes, eBytes := transcriptSizes(t, p, m)
		total := gBytes + eBytes
		points := []int{0, 1, helloSize - 1, helloSize, helloSize + 1, 2 * helloSize, 3000, 10000, total / 3, total / 2, total - eBytes/2, total - 100, total - 1}
		for _, side := range []string{"garbler", "evaluator"} {
			for _, transport := range []string{"pipe", "tcp"} {
				for _, cut := range points {
					if transport == "tcp" && cut%2 == 1 {
						continue
					}
					t.Run(fmt.Sprintf("%v/%s/%s/cut=%d", lit.OT, side, transport, cut), func(t *testing.T) {
						ga, ea := nettest.Pair(t, transport)
						var g, e net.Conn = ga, ea
						if side == "garbler" {
							g = nettest.Cut(ga, cut)
						} else {
							e = nettest.Cut(ea, cut)
						}
						r := rand.New(rand.NewPCG(10, uint64(cut)))
						c, v := split(r, p.K(), scoresFor(r, p.K(), m, 7, -7))
						gr, er := runPair(testCtx(t), nil, g, e, p, p, v, c, 7, 1<<15)
						cutter, other := gr, er
						if side == "evaluator" {
							cutter, other = er, gr
						}
						if cutter.err == nil {
							t.Fatalf("cut at %d of %d bytes: the %s succeeded", cut, total, side)
						}
						// The evaluator's last flight (its output labels) may
						// be delivered whole before the garbler cuts: then the
						// evaluator is done, and right.
						if other.err == nil {
							b, _ := p.Bucket(m)
							if side != "garbler" || cut <= total-2*b*labelSize {
								t.Fatalf("cut at %d of %d bytes on the %s: its peer succeeded", cut, total, side)
							}
							gr.err, gr.keep, gr.high = nil, other.keep, other.high
							checkBits(t, p, c, v, 7, 1<<15, gr, other)
						}
					})
				}
			}
		}
	}
}

// readGate wraps a connection and closes waiting when its first Read
// starts: with a peer that never writes, the call is then blocked on it.
type readGate struct {
	io.ReadWriter
	once    sync.Once
	waiting chan struct{}
}

func newReadGate(rw io.ReadWriter) *readGate {
	return &readGate{ReadWriter: rw, waiting: make(chan struct{})}
}

func (c *readGate) Read(b []byte) (int, error) {
	c.once.Do(func() { close(c.waiting) })
	return c.ReadWriter.Read(b)
}

// deadlineGate is a readGate over a net.Conn that keeps SetDeadline.
type deadlineGate struct {
	*readGate
	net.Conn
}

func (c deadlineGate) Read(b []byte) (int, error)  { return c.readGate.Read(b) }
func (c deadlineGate) Write(b []byte) (int, error) { return c.readGate.Write(b) }

// TestCancel checks that a done context interrupts a call blocked on a peer
// that never answers. Every cancellation follows an event (the call reads
// from the silent peer, or the peer stalls), never a timer.
func TestCancel(t *testing.T) {
	defer noLeaks(t)()
	p := mustParams(t, DefaultParamsLiteral)
	for _, role := range []string{"garbler", "evaluator"} {
		t.Run(role, func(t *testing.T) {
			a, _ := nettest.Pair(t, "pipe") // nobody ever reads or writes the other end
			gate := deadlineGate{newReadGate(a), a}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go func() { <-gate.waiting; cancel() }()
			var err error
			if role == "garbler" {
				_, _, err = Garble(ctx, gate, p, make([]uint64, 8), 0, 0)
			} else {
				_, _, err = Evaluate(ctx, gate, p, make([]uint64, 8))
			}
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("err = %v, want Canceled", err)
			}
		})
	}
	t.Run("cancelled-mid-protocol", func(t *testing.T) {
		g, e := nettest.Pair(t, "tcp")
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		// The evaluator stalls for good after its hello: it never reads.
		stalled := newStallConn(e, helloSize)
		done := make(chan error, 1)
		go func() { _, _, err := Evaluate(context.Background(), stalled, p, make([]uint64, 512)); done <- err }()
		gdone := make(chan error, 1)
		go func() { _, _, err := Garble(ctx, g, p, make([]uint64, 512), 0, 0); gdone <- err }()
		// The evaluator has read the garbler's hello: the garbler is past
		// it, in the protocol, and its peer will never read again.
		<-stalled.stalled
		cancel()
		if err := <-gdone; !errors.Is(err, context.Canceled) {
			t.Fatalf("garbler err = %v, want Canceled", err)
		}
		stalled.Close()
		if err := <-done; err == nil {
			t.Fatal("stalled evaluator succeeded")
		}
	})
	t.Run("no-deadline-conn-needs-close", func(t *testing.T) {
		a, _ := net.Pipe()
		gate := newReadGate(a)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := make(chan error, 1)
		go func() { _, _, err := Evaluate(ctx, nettest.NoDeadline{RW: gate}, p, make([]uint64, 8)); done <- err }()
		// The call is blocked on the pipe (its hello is never read); the
		// context cannot interrupt it, only the close can: the error
		// must be the close's.
		<-gate.waiting
		cancel()
		a.Close()
		if err := <-done; !errors.Is(err, io.ErrClosedPipe) {
			t.Fatalf("err = %v, want io.ErrClosedPipe (the close, not the context, ends the call)", err)
		}
	})
	if _, _, err := Evaluate(canceledCtx(), nettest.NoDeadline{}, p, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("already-cancelled ctx: err = %v", err)
	}
}

func canceledCtx() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

// stallConn stops reading after some bytes: it closes stalled, and every
// later Read blocks until Close.
type stallConn struct {
	net.Conn
	mu      sync.Mutex
	n       int
	after   int
	once    sync.Once
	stalled chan struct{}
	closed  chan struct{}
	cOnce   sync.Once
}

func newStallConn(c net.Conn, after int) *stallConn {
	return &stallConn{Conn: c, after: after, stalled: make(chan struct{}), closed: make(chan struct{})}
}

func (c *stallConn) Read(b []byte) (int, error) {
	c.mu.Lock()
	room := c.after - c.n
	c.mu.Unlock()
	if room <= 0 {
		c.once.Do(func() { close(c.stalled) })
		<-c.closed
		return 0, net.ErrClosed
	}
	n, err := c.Conn.Read(b[:min(len(b), room)])
	c.mu.Lock()
	c.n += n
	c.mu.Unlock()
	return n, err
}

// Close unblocks a stalled Read and closes the connection.
func (c *stallConn) Close() error {
	c.cOnce.Do(func() { close(c.closed) })
	return c.Conn.Close()
}

// TestEvaluatorOnly: with EvaluatorOnly the evaluator gets the right bits,
// the garbler none, and the stream stays in step for a following call (the
// garbler reads nothing after the circuit).
func TestEvaluatorOnly(t *testing.T) {
	defer noLeaks(t)()
	lit := DefaultParamsLiteral
	lit.EvaluatorOnly = true
	p := mustParams(t, lit)
	if !p.EvaluatorOnly() || !p.Literal().EvaluatorOnly || p.Equal(mustParams(t, DefaultParamsLiteral)) {
		t.Fatal("EvaluatorOnly is not part of the parameters")
	}
	base := mustParams(t, DefaultParamsLiteral)
	if base.hash != base.computeHash() || base.EvaluatorOnly() {
		t.Fatal("default parameters changed")
	}
	r := rand.New(rand.NewPCG(11, 12))
	g, e := nettest.Pair(t, "tcp")
	for _, m := range []int{1, 2, 37} {
		c, v := split(r, 64, scoresFor(r, 64, m, 0, 0))
		gr, er := runPair(testCtx(t), nil, g, e, p, p, v, c, 0, 0)
		if gr.err != nil || er.err != nil {
			t.Fatalf("m=%d: garbler: %v; evaluator: %v", m, gr.err, er.err)
		}
		if gr.keep != nil || gr.high != nil {
			t.Fatalf("m=%d: the garbler got bits", m)
		}
		for j := range c {
			if want := p.Greater(c[j]+v[j], 0); er.keep[j] != want || er.high[j] != want {
				t.Fatalf("m=%d score %d: evaluator keep=%v high=%v, want %v", m, j, er.keep[j], er.high[j], want)
			}
		}
	}
	// A normal call on the same connection still works.
	c, v := split(r, 64, scoresFor(r, 64, 8, 3, 4))
	gr, er := runPair(testCtx(t), nil, g, e, base, base, v, c, 3, 4)
	checkBits(t, base, c, v, 3, 4, gr, er)
}
