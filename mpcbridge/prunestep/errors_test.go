package prunestep

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"

	"github.com/cipherprune/cipherprune/ckks"
	"github.com/cipherprune/cipherprune/mpcbridge/internal/nettest"
	"github.com/cipherprune/cipherprune/mpcbridge/share"
	"github.com/cipherprune/cipherprune/mpcbridge/wire"
)

// TestPruneWrongParameters: a client with other step parameters refuses the
// request; both sides fail, neither hangs.
func TestPruneWrongParameters(t *testing.T) {
	defer noLeaks(t)()
	tc := newTestContext(t, ckks.InsecureTest11, defaultLiteral)
	for _, lit := range []ParametersLiteral{
		{Share: shareLiteral(4, 12)},
		{Share: shareLiteral(3, 16)},
		{Share: shareLiteral(4, 16), CompareBits: 32},
		{Share: shareLiteral(4, 16), Heads: 2},        // another re-packing rule
		{Share: shareLiteral(4, 16), KeepBlock: true}, // no re-packing
	} {
		t.Run(fmt.Sprintf("%+v", lit), func(t *testing.T) {
			p, err := NewParameters(lit)
			if err != nil {
				t.Fatal(err)
			}
			other, err := NewClient(tc.params, tc.sk, p, nil)
			if err != nil {
				t.Fatal(err)
			}
			r := rand.New(rand.NewPCG(9, 9))
			in := tc.newInput(t, 0, randomRows(r, 5, 64, 1), []float64{0, 0.2, 0.4, 0.05, 0.5}, 3)
			ctx := testCtx(t)
			srv, cli := connPair(t, "tcp")
			serr, cerr := nettest.Both(func() error {
				_, _, err := tc.server.Prune(ctx, srv, in.out, 0.1, 0.3)
				return err
			}, func() error {
				_, err := other.Prune(ctx, cli)
				return err
			})
			if !errors.Is(cerr, ErrMismatch) {
				t.Errorf("client: %v, want ErrMismatch", cerr)
			}
			if serr == nil {
				t.Error("server succeeded")
			}
			t.Logf("server: %v\nclient: %v", serr, cerr)
		})
	}
}

// TestPruneWrongRequest: a client waiting for a prune step gets a refresh
// request (the two sides disagree on the schedule).
func TestPruneWrongRequest(t *testing.T) {
	defer noLeaks(t)()
	tc := newTestContext(t, ckks.InsecureTest11, defaultLiteral)
	ct, err := tc.he.EncryptVector(make([]float64, tc.params.MaxSlots()), 3)
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	srv, cli := connPair(t, "tcp")
	serr, cerr := nettest.Both(func() error {
		_, err := tc.server.Refresh(ctx, srv, []*rlwe.Ciphertext{ct})
		return err
	}, func() error {
		_, err := tc.client.Prune(ctx, cli)
		return err
	})
	if !errors.Is(cerr, ErrMismatch) || serr == nil {
		t.Errorf("server: %v; client: %v", serr, cerr)
	}
	t.Logf("server: %v\nclient: %v", serr, cerr)
}

// cutConn is a net.Conn that fails, closing the connection, once limit
// bytes have been written through it: the party disconnects mid-protocol.
type cutConn struct {
	net.Conn
	mu      sync.Mutex
	limit   int64
	written int64
}

var errCut = errors.New("test: connection cut")

func (c *cutConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	left := c.limit - c.written
	if int64(len(p)) <= left {
		c.written += int64(len(p))
		c.mu.Unlock()
		return c.Conn.Write(p)
	}
	c.written = c.limit
	c.mu.Unlock()
	n := 0
	if left > 0 {
		n, _ = c.Conn.Write(p[:left])
	}
	c.Conn.Close()
	return n, errCut
}

// TestPruneDisconnect cuts either party's connection at several points of
// the step (by the bytes it has written) over both transports: both sides
// return errors, and no goroutine is left behind.
func TestPruneDisconnect(t *testing.T) {
	defer noLeaks(t)()
	tc := newTestContext(t, ckks.InsecureTest11, defaultLiteral)
	r := rand.New(rand.NewPCG(4, 4))
	const n, d = 12, 64
	scores := make([]float64, n)
	for i := range scores {
		scores[i] = scoreGrid[r.IntN(len(scoreGrid))]
	}
	in := tc.newInput(t, 2, randomRows(r, n, d, 1), scores, 3)
	checkDisconnects(t, func(ctx context.Context, srv, cli *wire.Conn) (error, error) {
		return nettest.Both(func() error {
			_, _, err := tc.server.Prune(ctx, srv, in.out, 0.1, 0.3)
			return err
		}, func() error {
			_, err := tc.client.Prune(ctx, cli)
			return err
		})
	})
}

// sidesFunc runs one protocol between the two ends of a connection and
// returns each side's error.
type sidesFunc func(ctx context.Context, srv, cli *wire.Conn) (serr, cerr error)

// checkDisconnects measures each side's bytes in a complete run of run,
// then cuts either side's connection at several fractions of them over
// both transports: both sides must return errors, neither by waiting for
// the deadline.
func checkDisconnects(t *testing.T, run sidesFunc) {
	t.Helper()
	srv, cli := connPair(t, "pipe")
	if serr, cerr := run(testCtx(t), srv, cli); serr != nil || cerr != nil {
		t.Fatalf("server: %v; client: %v", serr, cerr)
	}
	total := map[string]int64{"server": srv.Stats().BytesSent, "client": cli.Stats().BytesSent}
	for _, transport := range []string{"pipe", "tcp"} {
		for _, side := range []string{"server", "client"} {
			for _, frac := range []float64{0.001, 0.05, 0.3, 0.6, 0.9, 0.999} {
				limit := int64(frac * float64(total[side]))
				t.Run(fmt.Sprintf("%s/%s/%d", transport, side, limit), func(t *testing.T) {
					cutRun(t, transport, side, limit, run)
				})
			}
		}
	}
}

// cutRun runs run with side's connection cut after limit bytes.
func cutRun(t *testing.T, transport, side string, limit int64, run sidesFunc) {
	a, b := nettest.Pair(t, transport)
	if side == "server" {
		a = &cutConn{Conn: a, limit: limit}
	} else {
		b = &cutConn{Conn: b, limit: limit}
	}
	params := []byte("prunestep-test")
	srv, _ := wire.NewConn(a, wire.Config{Role: wire.RoleServer, Version: 1, Params: params})
	cli, _ := wire.NewConn(b, wire.Config{Role: wire.RoleClient, Version: 1, Params: params})
	defer srv.Close()
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	serr, cerr := run(ctx, srv, cli)
	if serr == nil || cerr == nil {
		t.Errorf("server: %v; client: %v", serr, cerr)
	}
	if errors.Is(serr, context.DeadlineExceeded) || errors.Is(cerr, context.DeadlineExceeded) {
		t.Errorf("a side waited for the deadline: server: %v; client: %v", serr, cerr)
	}
	t.Logf("%v\nserver: %v\nclient: %v", time.Since(start).Round(time.Millisecond), serr, cerr)
}

// TestServeBridgeDisconnect: a client serving the bridge sees the server
// go away between requests.
func TestServeBridgeDisconnect(t *testing.T) {
	defer noLeaks(t)()
	tc := newTestContext(t, ckks.InsecureTest11, defaultLiteral)
	srv, cli := connPair(t, "pipe")
	ctx := testCtx(t)
	serr, cerr := nettest.Both(func() error {
		ct, err := tc.he.EncryptVector(make([]float64, tc.params.MaxSlots()), 2)
		if err != nil {
			return err
		}
		if _, err := tc.server.Refresh(ctx, srv, []*rlwe.Ciphertext{ct}); err != nil {
			return err
		}
		return srv.Close()
	}, func() error {
		_, err := tc.client.ServeBridge(ctx, cli)
		return err
	})
	if serr != nil || cerr == nil {
		t.Errorf("server: %v; client: %v", serr, cerr)
	}
	t.Logf("client: %v", cerr)
}

// TestPruneLayoutHeadDim: a layout whose head dimension is not the one the
// parameters give (stacked heads the client would not expect) is refused
// before any message.
func TestPruneLayoutHeadDim(t *testing.T) {
	defer noLeaks(t)()
	tc := newTestContext(t, ckks.InsecureTest11, defaultLiteral)
	r := rand.New(rand.NewPCG(9, 10))
	in := tc.newInput(t, 0, randomRows(r, 5, 64, 1), []float64{0, 0.2, 0.4, 0.05, 0.5}, 3)
	in.out.Hidden.Layout.HeadDim = in.out.Hidden.Layout.ColsPerCt() / 2
	if err := in.out.Hidden.Layout.Validate(); err != nil {
		t.Fatal(err)
	}
	srv, _ := connPair(t, "pipe")
	_, _, err := tc.server.Prune(testCtx(t), srv, in.out, 0.1, 0.3)
	if err == nil || !strings.Contains(err.Error(), "heads") {
		t.Fatalf("Prune: %v, want a head-dimension error", err)
	}
}

// TestRefreshBatches: a refresh of more ciphertexts than MaxBatch goes in
// several requests and returns every ciphertext, in order.
func TestRefreshBatches(t *testing.T) {
	defer noLeaks(t)()
	lit := ParametersLiteral{Share: share.ParametersLiteral{LogBound: 4, FracBits: 16, MaxBatch: 3}}
	tc := newTestContext(t, ckks.InsecureTest11, lit)
	srv, cli := connPair(t, "pipe")
	ctx := testCtx(t)
	const n = 7
	cts := make([]*rlwe.Ciphertext, n)
	for i := range cts {
		v := make([]float64, tc.params.MaxSlots())
		for k := range v {
			v[k] = float64(i) + float64(k%5)/8
		}
		ct, err := tc.he.EncryptVector(v, 2)
		if err != nil {
			t.Fatal(err)
		}
		cts[i] = ct
	}
	var fresh []*rlwe.Ciphertext
	serr, cerr := nettest.Both(func() error {
		var err error
		if fresh, err = tc.server.Refresh(ctx, srv, cts); err != nil {
			return err
		}
		return tc.server.Done(ctx, srv)
	}, func() error {
		_, err := tc.client.ServeBridge(ctx, cli)
		return err
	})
	if serr != nil || cerr != nil {
		t.Fatalf("server: %v; client: %v", serr, cerr)
	}
	if len(fresh) != n {
		t.Fatalf("%d ciphertexts back, want %d", len(fresh), n)
	}
	for i, ct := range fresh {
		v, err := tc.he.DecryptVector(ct)
		if err != nil {
			t.Fatal(err)
		}
		for k := 0; k < 10; k++ {
			if want := float64(i) + float64(k%5)/8; math.Abs(v[k]-want) > 1e-3 {
				t.Fatalf("ciphertext %d slot %d: %g, want %g", i, k, v[k], want)
			}
		}
		if ct.Level() != tc.params.MaxLevel() {
			t.Errorf("ciphertext %d at level %d, want the top %d", i, ct.Level(), tc.params.MaxLevel())
		}
	}
}
