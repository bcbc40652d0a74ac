package gc

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"

	"github.com/markkurossi/mpc/ot"
	"github.com/markkurossi/mpc/p2p"

	"github.com/cipherprune/cipherprune/mpcbridge/internal/nettest"
)

// fakeEvaluator runs an evaluator that follows the protocol up to a point
// and then misbehaves as act says.
func fakeEvaluator(t *testing.T, conn net.Conn, p Params, m int, act string) {
	raw := &rawConn{rw: conn}
	pc := p2p.NewConn(raw)
	defer pc.Close()
	pt := &party{ctx: context.Background(), conn: conn, raw: raw, pc: pc, rand: newRand()}
	me := newHello(roleEvaluator, p, m, nil)
	setup, err := ot.GenerateCOSenderSetup(pt.rand, curve())
	if err != nil {
		t.Error(err)
		return
	}
	switch act {
	case "garbage-hello":
		for i := range me.hash {
			me.hash[i] = 0xee
		}
		b := me.marshal()
		b[0] = 'X'
		_ = sendRaw(pc, b)
		_ = pc.Flush()
		return
	case "bad-point":
		// The all-zero point is not on the curve.
	default:
		putPoint(me.point[:], setup.Ax, setup.Ay)
	}
	if _, err := pt.exchange(me); err != nil || act == "bad-point" {
		return
	}
	// Honest base OTs (as IKNP receiver), then a u-matrix chunk whose size
	// is a multiple of 128 but larger than the library's 8 KiB chunk.
	if _, err := ot.NewIKNPReceiver(newCOSender(pt, setup), pc, pt.rand); err != nil {
		t.Error(err)
		return
	}
	_ = pc.SendData(make([]byte, 128*100))
	_ = pc.Flush()
}

func TestMalformedPeer(t *testing.T) {
	defer noLeaks(t)()
	p := mustParams(t, ParamsLiteral{K: 32, F: 16})
	for _, tc := range []struct{ act, want string }{
		{"garbage-hello", "not a version 1 hello"},
		{"bad-point", "point not on curve"},
		{"oversized-chunk", "library panicked"},
	} {
		t.Run(tc.act, func(t *testing.T) {
			g, e := nettest.Pair(t, "pipe")
			var wg sync.WaitGroup
			wg.Add(1)
			go func() { defer wg.Done(); fakeEvaluator(t, e, p, 8, tc.act) }()
			_, _, err := Garble(testCtx(t), g, p, make([]uint64, 8), 0, 0)
			if !errors.Is(err, ErrMalformed) || !errContains(err, tc.want) {
				t.Errorf("err = %v, want ErrMalformed with %q", err, tc.want)
			}
			// The fake never reads the garbler's messages: the garbler must
			// return on the malformed message, not wait for the test's
			// safety timeout.
			if errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("Garble returned only at the timeout: %v", err)
			}
			g.Close()
			wg.Wait()
		})
	}
}

// flipConn flips one written byte, at offset at of the stream.
type flipConn struct {
	net.Conn
	mu  sync.Mutex
	n   int
	at  int
	buf []byte
}

func (c *flipConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	if c.at >= c.n && c.at < c.n+len(b) {
		c.buf = append(c.buf[:0], b...)
		c.buf[c.at-c.n] ^= 1
		b = c.buf
	}
	c.n += len(b)
	c.mu.Unlock()
	return c.Conn.Write(b)
}

// TestForgedOutputLabel corrupts the last byte of the evaluator's output
// labels: the garbler must notice, since a label is authentic only if it is
// one of the two it made.
func TestForgedOutputLabel(t *testing.T) {
	defer noLeaks(t)()
	p := mustParams(t, ParamsLiteral{K: 32, F: 16})
	_, eBytes := transcriptSizes(t, p, 8)
	g, e := nettest.Pair(t, "pipe")
	gr, er := runPair(testCtx(t), nil, g, &flipConn{Conn: e, at: eBytes - 1}, p, p, make([]uint64, 8), make([]uint64, 8), 0, 0)
	if !errors.Is(gr.err, ErrMalformed) || er.err != nil {
		t.Fatalf("garbler err = %v (want ErrMalformed), evaluator err = %v", gr.err, er.err)
	}
}
