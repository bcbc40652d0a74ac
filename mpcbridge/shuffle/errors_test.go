package shuffle

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"testing"

	"github.com/markkurossi/mpc/ot"

	"github.com/cipherprune/cipherprune/mpcbridge/internal/nettest"
)

// TestMismatch checks that calls that disagree fail on both sides with
// clear errors after the hellos alone, and that the stream is still in
// step: a correct call on the same connection then succeeds.
func TestMismatch(t *testing.T) {
	defer noLeaks(t)()
	small := Config{MaxWords: 100}
	for _, tc := range []struct {
		name         string
		run          func(ctx context.Context, a, b net.Conn) (error, error)
		wantA, wantB error
		msgA, msgB   string
	}{
		{"rows", func(ctx context.Context, a, b net.Conn) (error, error) {
			pr, qr := runPair(ctx, Config{}, a, b, identity(4), constRows(4, 2, 0), constRows(5, 2, 0))
			return pr.err, qr.err
		}, ErrMismatch, ErrMismatch, "peer has n = 5 rows, we have 4", "peer has n = 4 rows, we have 5"},
		{"width", func(ctx context.Context, a, b net.Conn) (error, error) {
			pr, qr := runPair(ctx, Config{}, a, b, identity(4), constRows(4, 2, 0), constRows(4, 3, 0))
			return pr.err, qr.err
		}, ErrMismatch, ErrMismatch, "peer has width 3, we have 2", "peer has width 2, we have 3"},
		{"both-permute", func(ctx context.Context, a, b net.Conn) (error, error) {
			done := make(chan error, 1)
			go func() { _, err := Permute(ctx, b, identity(4), constRows(4, 1, 0), nil); done <- err }()
			_, err := Permute(ctx, a, identity(4), constRows(4, 1, 0), nil)
			return err, <-done
		}, ErrMismatch, ErrMismatch, "both parties are permuters", "both parties are permuters"},
		{"both-assist", func(ctx context.Context, a, b net.Conn) (error, error) {
			done := make(chan error, 1)
			go func() { _, err := Assist(ctx, b, constRows(4, 1, 0), nil); done <- err }()
			_, err := Assist(ctx, a, constRows(4, 1, 0), nil)
			return err, <-done
		}, ErrMismatch, ErrMismatch, "both parties are assistants", "both parties are assistants"},
		{"bad-perm", func(ctx context.Context, a, b net.Conn) (error, error) {
			pr, qr := runPair(ctx, Config{}, a, b, []int{0, 0, 1, 2}, constRows(4, 1, 0), constRows(4, 1, 0))
			return pr.err, qr.err
		}, nil, ErrPeerAborted, "perm[1] = 0 repeats", "peer aborted"},
		{"ragged-share", func(ctx context.Context, a, b net.Conn) (error, error) {
			pr, qr := runPair(ctx, Config{}, a, b, identity(2), constRows(2, 1, 0), [][]uint64{{1}, {1, 2}})
			return pr.err, qr.err
		}, ErrPeerAborted, nil, "peer aborted", "share row 1 has 2 columns"},
		{"over-limit", func(ctx context.Context, a, b net.Conn) (error, error) {
			pr, qr := runPair(ctx, small, a, b, identity(16), constRows(16, 2, 0), constRows(16, 2, 0))
			return pr.err, qr.err
		}, nil, nil, "over the limit of 100", "over the limit of 100"},
		{"over-peer-limit", func(ctx context.Context, a, b net.Conn) (error, error) {
			done := make(chan error, 1)
			go func() { _, err := small.Assist(ctx, b, constRows(16, 2, 0), nil); done <- err }()
			_, err := Permute(ctx, a, identity(16), constRows(16, 2, 0), nil)
			return err, <-done
		}, ErrPeerAborted, nil, "peer aborted", "over the limit of 100"},
		{"too-many-rows", func(ctx context.Context, a, b net.Conn) (error, error) {
			pr, qr := runPair(ctx, Config{}, a, b, identity(MaxRows+1), constRows(MaxRows+1, 1, 0), constRows(MaxRows+1, 1, 0))
			return pr.err, qr.err
		}, nil, nil, "4097 rows exceed 4096", "4097 rows exceed 4096"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := nettest.Pair(t, "pipe")
			ea, eb := tc.run(testCtx(t), a, b)
			for _, c := range []struct {
				side string
				err  error
				want error
				msg  string
			}{{"A", ea, tc.wantA, tc.msgA}, {"B", eb, tc.wantB, tc.msgB}} {
				if c.err == nil || (c.want != nil && !errors.Is(c.err, c.want)) || !errContains(c.err, c.msg) {
					t.Errorf("side %s: err = %v, want %v containing %q", c.side, c.err, c.want, c.msg)
				}
			}
			// In step: a good call follows on the same connection.
			r := rand.New(rand.NewPCG(1, 1))
			perm := r.Perm(5)
			ap, aq := randomRows(r, 5, 3), randomRows(r, 5, 3)
			pr, qr := runPair(testCtx(t), Config{}, a, b, perm, ap, aq)
			checkPermuted(t, perm, ap, aq, pr, qr)
		})
	}
}

// TestExactReads checks that a call reads exactly the protocol's bytes:
// each party sends a marker right behind its last message, and the other
// reads it intact after its call returns.
func TestExactReads(t *testing.T) {
	defer noLeaks(t)()
	marker := []byte("NEXT-MESSAGE")
	for _, transport := range []string{"pipe", "tcp"} {
		for _, n := range []int{1, 9} {
			t.Run(fmt.Sprintf("%s/n=%d", transport, n), func(t *testing.T) {
				a, b := nettest.Pair(t, transport)
				r := rand.New(rand.NewPCG(2, uint64(n)))
				ap, aq := randomRows(r, n, 2), randomRows(r, n, 2)
				ctx := testCtx(t)
				var wg sync.WaitGroup
				wg.Add(1)
				var qerr, qread error
				go func() {
					defer wg.Done()
					if _, qerr = Assist(ctx, b, aq, nil); qerr != nil {
						return
					}
					// Q sends its marker and reads P's.
					go func() { _, _ = b.Write(marker) }()
					got := make([]byte, len(marker))
					if _, err := io.ReadFull(b, got); err != nil || string(got) != string(marker) {
						qread = fmt.Errorf("assistant read %q, %v", got, err)
					}
				}()
				if _, err := Permute(ctx, a, r.Perm(n), ap, nil); err != nil {
					t.Fatal(err)
				}
				go func() { _, _ = a.Write(marker) }()
				got := make([]byte, len(marker))
				if _, err := io.ReadFull(a, got); err != nil || string(got) != string(marker) {
					t.Errorf("permuter read %q, %v", got, err)
				}
				wg.Wait()
				if qerr != nil || qread != nil {
					t.Fatal(qerr, qread)
				}
			})
		}
	}
}

// fullSizes returns the bytes each side writes in one call.
func fullSizes(t *testing.T, n, width int) (fromP, fromQ int) {
	t.Helper()
	a, b := nettest.Pair(t, "pipe")
	pc, qc := &nettest.CountConn{Conn: a}, &nettest.CountConn{Conn: b}
	pr, qr := runPair(testCtx(t), Config{}, pc, qc, identity(n), constRows(n, width, 0), constRows(n, width, 0))
	if pr.err != nil || qr.err != nil {
		t.Fatal(pr.err, qr.err)
	}
	return int(pc.Writes.Load()), int(qc.Writes.Load())
}

// TestDisconnect cuts the connection at many points of the protocol, on
// either side and over both transports: the side whose connection is cut
// must return an error, and both must return without panicking, hanging or
// leaking goroutines. (The peer may have finished: the assistant's last
// read is the IKNP matrix, and a cut while it writes the corrections into a
// TCP buffer, or after, leaves it nothing to fail on.)
func TestDisconnect(t *testing.T) {
	defer noLeaks(t)()
	const n, width = 24, 3
	fromP, fromQ := fullSizes(t, n, width)
	total := fromP + fromQ
	points := []int{0, 1, helloSize - 1, helloSize, helloSize + 1, 2 * helloSize, 2*helloSize + 8*n*width,
		2*helloSize + 8*n*width + 4000, total / 2, total - 8*width, total - 1}
	for _, side := range []string{"permuter", "assistant"} {
		for _, transport := range []string{"pipe", "tcp"} {
			for _, cut := range points {
				t.Run(fmt.Sprintf("%s/%s/%d", side, transport, cut), func(t *testing.T) {
					a, b := nettest.Pair(t, transport)
					var pa, qb net.Conn = a, b
					if side == "permuter" {
						pa = nettest.Cut(a, cut)
					} else {
						qb = nettest.Cut(b, cut)
					}
					pr, qr := runPair(testCtx(t), Config{}, pa, qb, identity(n), constRows(n, width, 1), constRows(n, width, 2))
					cutErr := pr.err
					if side == "assistant" {
						cutErr = qr.err
					}
					if cutErr == nil {
						t.Fatalf("cut at %d of %d: permuter %v, assistant %v", cut, total, pr.err, qr.err)
					}
					if cut < 2*helloSize && (pr.err == nil || qr.err == nil) {
						t.Fatalf("cut in the hellos at %d: permuter %v, assistant %v", cut, pr.err, qr.err)
					}
					// The cut, not the test's safety timeout, must end both
					// calls: neither error may come from the context.
					for _, err := range []error{pr.err, qr.err} {
						if errors.Is(err, context.DeadlineExceeded) {
							t.Fatalf("only the timeout ended the calls: %v / %v", pr.err, qr.err)
						}
					}
				})
			}
		}
	}
}

// readGate wraps a connection and closes waiting when a Read starts after
// at least after bytes were read: with a peer that sends nothing more, the
// call is then blocked on it. The wrapped connection keeps SetDeadline.
type readGate struct {
	net.Conn
	after   int
	mu      sync.Mutex
	n       int
	once    sync.Once
	waiting chan struct{}
}

func newReadGate(c net.Conn, after int) *readGate {
	return &readGate{Conn: c, after: after, waiting: make(chan struct{})}
}

func (c *readGate) Read(b []byte) (int, error) {
	c.mu.Lock()
	if c.n >= c.after {
		c.once.Do(func() { close(c.waiting) })
	}
	c.mu.Unlock()
	k, err := c.Conn.Read(b)
	c.mu.Lock()
	c.n += k
	c.mu.Unlock()
	return k, err
}

// TestCancel cancels calls blocked on a silent peer, before and during the
// protocol, and checks they return ctx's error. The cancellation follows the
// event "the call waits for the peer" (readGate), never a timer.
func TestCancel(t *testing.T) {
	defer noLeaks(t)()
	t.Run("before", func(t *testing.T) {
		a, _ := nettest.Pair(t, "pipe")
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := Permute(ctx, a, identity(2), constRows(2, 1, 0), nil); !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v", err)
		}
		if _, err := Shuffle(ctx, a, First, constRows(2, 1, 0), nil); !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v", err)
		}
	})
	// The peer reads everything and never answers: the call blocks in
	// the hello, or (after a fake hello) in the masked input.
	for _, stage := range []string{"hello", "data"} {
		for _, transport := range []string{"pipe", "tcp"} {
			for _, op := range []string{"Permute", "Assist"} {
				t.Run(fmt.Sprintf("%s/%s/%s", stage, transport, op), func(t *testing.T) {
					ca, b := nettest.Pair(t, transport)
					go func() { _, _ = io.Copy(io.Discard, b) }()
					// In the hello stage the call waits for the peer's
					// hello from its first Read; in the data stage, once it
					// has read the (fake) hello.
					after := 0
					if stage == "data" {
						after = helloSize
					}
					a := newReadGate(ca, after)
					if stage == "data" {
						me := hello{role: rolePermuter, n: 4, width: 1}
						if op == "Permute" {
							me.role = roleAssistant
						}
						setup, err := ot.GenerateCOSenderSetup(newRand(nil), curve())
						if err != nil {
							t.Fatal(err)
						}
						putPoint(me.point[:], setup.Ax, setup.Ay)
						go func() { _, _ = b.Write(me.marshal()) }()
					}
					ctx, cancel := context.WithCancel(context.Background())
					defer cancel()
					go func() { <-a.waiting; cancel() }()
					var err error
					if op == "Permute" {
						_, err = Permute(ctx, a, identity(4), constRows(4, 1, 0), nil)
					} else {
						_, err = Assist(ctx, a, constRows(4, 1, 0), nil)
					}
					if !errors.Is(err, context.Canceled) || !errContains(err, "cannot "+op) {
						t.Fatalf("err = %v, want context.Canceled from %s", err, op)
					}
					b.Close()
				})
			}
		}
	}
	// Without SetDeadline, cancellation cannot interrupt the I/O; closing
	// the connection does: the call, blocked on the peer's hello, returns
	// the close's error (wrapped with ctx's), so the close ended it.
	t.Run("no-deadline", func(t *testing.T) {
		ca, b := nettest.Pair(t, "pipe")
		a := newReadGate(ca, 0)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() { _, _ = io.Copy(io.Discard, b) }()
		go func() {
			<-a.waiting
			cancel()
			ca.Close()
		}()
		_, err := Permute(ctx, nettest.NoDeadline{RW: a}, identity(4), constRows(4, 1, 0), nil)
		if !errors.Is(err, context.Canceled) || !errors.Is(err, io.ErrClosedPipe) {
			t.Fatalf("err = %v, want context.Canceled and io.ErrClosedPipe", err)
		}
	})
}

// fakeAssistant follows the assistant's side up to a point and then
// misbehaves as act says.
func fakeAssistant(t *testing.T, conn net.Conn, n, width int, act string) {
	s := newStream(conn)
	me := hello{role: roleAssistant, n: uint32(n), width: uint32(width)}
	switch act {
	case "garbage-hello":
		b := me.marshal()
		b[0] = 'X'
		_, _ = conn.Write(b)
		return
	case "other-version":
		b := me.marshal()
		b[4] = version + 1
		_, _ = conn.Write(b)
		return
	case "huge-n":
		me.n = MaxRows + 1
	case "bad-ring":
		b := me.marshal()
		b[7] = byte(Ring128) + 1
		_, _ = conn.Write(b)
		return
	}
	if _, err := exchange(conn, me); err != nil {
		return
	}
	switch act {
	case "truncated-input":
		_ = s.writeWords(make([]uint64, n*width-1))
		_ = s.Flush()
		conn.Close()
	case "bad-points":
		_ = s.writeWords(make([]uint64, n*width))
		_, _ = s.w.Write(make([]byte, ot.K*pointSize)) // all-zero points: not on the curve
		_ = s.Flush()
	}
}

// fakePermuter follows the permuter's side up to a point and then
// misbehaves as act says.
func fakePermuter(t *testing.T, conn net.Conn, n, width int, act string) {
	s := newStream(conn)
	rnd := newRand(nil)
	me := hello{role: rolePermuter, n: uint32(n), width: uint32(width)}
	setup, err := ot.GenerateCOSenderSetup(rnd, curve())
	if err != nil {
		t.Error(err)
		return
	}
	if act != "bad-point" {
		putPoint(me.point[:], setup.Ax, setup.Ay)
	}
	if _, err := exchange(conn, me); err != nil || act == "bad-point" {
		return
	}
	if err := s.readWords(make([]uint64, n*width)); err != nil {
		t.Error(err)
		return
	}
	// Honest base OTs (as IKNP receiver), then a bad matrix chunk.
	if _, err := ot.NewIKNPReceiver(newCOSender(s, setup), s, rnd); err != nil {
		t.Error(err)
		return
	}
	switch act {
	case "oversized-chunk":
		_ = s.SendData(make([]byte, ot.K*100))
	case "empty-chunk":
		_ = s.SendData(nil)
	case "odd-chunk":
		_ = s.SendData(make([]byte, 100))
	}
	_ = s.Flush()
}

func TestMalformedPeer(t *testing.T) {
	defer noLeaks(t)()
	const n, width = 8, 2
	for _, tc := range []struct{ act, want string }{
		{"garbage-hello", "not a shuffle hello"},
		{"other-version", fmt.Sprintf("hello version %d, want %d", version+1, version)},
		{"huge-n", "hello n = 4097 exceeds 4096"},
		{"bad-ring", "ring 2"},
		{"truncated-input", "cannot read masked input"},
		{"bad-points", "point not on curve"},
	} {
		t.Run("assistant/"+tc.act, func(t *testing.T) {
			a, b := nettest.Pair(t, "pipe")
			var wg sync.WaitGroup
			wg.Add(1)
			go func() { defer wg.Done(); fakeAssistant(t, b, n, width, tc.act) }()
			_, err := Permute(testCtx(t), a, identity(n), constRows(n, width, 0), nil)
			if err == nil || !errContains(err, tc.want) {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
			if tc.act != "truncated-input" && !errors.Is(err, ErrMalformed) {
				t.Errorf("err = %v, want ErrMalformed", err)
			}
			if tc.act == "truncated-input" && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("err = %v, want io.ErrUnexpectedEOF", err)
			}
			a.Close()
			wg.Wait()
		})
	}
	for _, tc := range []struct{ act, want string }{
		{"bad-point", "point not on curve"},
		{"oversized-chunk", "OT extension chunk of 12800 bytes"},
		{"empty-chunk", "OT extension chunk of 0 bytes"},
		{"odd-chunk", "OT extension chunk of 100 bytes"},
	} {
		t.Run("permuter/"+tc.act, func(t *testing.T) {
			a, b := nettest.Pair(t, "pipe")
			var wg sync.WaitGroup
			wg.Add(1)
			go func() { defer wg.Done(); fakePermuter(t, b, n, width, tc.act) }()
			_, err := Assist(testCtx(t), a, constRows(n, width, 0), nil)
			if !errors.Is(err, ErrMalformed) || !errContains(err, tc.want) {
				t.Errorf("err = %v, want ErrMalformed with %q", err, tc.want)
			}
			// The fake stops reading: Assist must return on the malformed
			// message, not wait for the test's safety timeout.
			if errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("Assist returned only at the timeout: %v", err)
			}
			a.Close()
			wg.Wait()
		})
	}
}

// TestGarbageAfterHello feeds random bytes after a valid hello to each
// side: the call must fail (or, for bytes that happen to parse, finish)
// without panicking or hanging.
func TestGarbageAfterHello(t *testing.T) {
	defer noLeaks(t)()
	r := rand.New(rand.NewPCG(21, 22))
	for _, op := range []string{"Permute", "Assist"} {
		for trial := 0; trial < 3; trial++ {
			t.Run(fmt.Sprintf("%s/%d", op, trial), func(t *testing.T) {
				a, b := nettest.Pair(t, "pipe")
				me := hello{role: roleAssistant, n: 4, width: 1}
				if op == "Assist" {
					me.role = rolePermuter
					setup, _ := ot.GenerateCOSenderSetup(newRand(nil), curve())
					putPoint(me.point[:], setup.Ax, setup.Ay)
				}
				garbage := make([]byte, 200+r.IntN(20000))
				for i := range garbage {
					garbage[i] = byte(r.Uint32())
				}
				go func() {
					if _, err := exchange(b, me); err != nil {
						return
					}
					go func() { _, _ = io.Copy(io.Discard, b) }()
					_, _ = b.Write(garbage)
					b.Close()
				}()
				var err error
				if op == "Permute" {
					_, err = Permute(testCtx(t), a, identity(4), constRows(4, 1, 0), nil)
				} else {
					_, err = Assist(testCtx(t), a, constRows(4, 1, 0), nil)
				}
				if err == nil {
					t.Fatalf("%s accepted %d bytes of garbage", op, len(garbage))
				}
				t.Log(err)
			})
		}
	}
}
