package prunestep

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"net"
	"slices"
	"sync"
	"testing"

	"github.com/cipherprune/cipherprune/ckks"
	"github.com/cipherprune/cipherprune/mpcbridge/wire"
)

// recordConn records every byte written through it.
type recordConn struct {
	net.Conn
	mu  sync.Mutex
	buf bytes.Buffer
}

func (c *recordConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.buf.Write(p)
	c.mu.Unlock()
	return c.Conn.Write(p)
}

// TestThresholdsStayOnServer: neither θ nor β appears in the server's
// transcript, in the comparison's fixed point (either byte order) or as a
// float64.
func TestThresholdsStayOnServer(t *testing.T) {
	defer noLeaks(t)()
	tc := newTestContext(t, ckks.InsecureTest11, defaultLiteral)
	r := rand.New(rand.NewPCG(8, 8))
	const n = 16
	scores := make([]float64, n)
	for i := range scores {
		scores[i] = scoreGrid[r.IntN(len(scoreGrid))]
	}
	in := tc.newInput(t, 0, randomRows(r, n, 64, 1), scores, 3)
	const theta, beta = 0.1234, 0.3456
	a, b := netPair(t, "pipe")
	rec := &recordConn{Conn: a}
	srv, _ := wire.NewConn(rec, wire.Config{Role: wire.RoleServer})
	cli, _ := wire.NewConn(b, wire.Config{Role: wire.RoleClient})
	defer srv.Close()
	defer cli.Close()
	ctx := testCtx(t)
	serr, cerr := runPair(func() error { _, _, err := tc.server.Prune(ctx, srv, in.out, theta, beta); return err },
		func() error { _, err := tc.client.Prune(ctx, cli); return err })
	if serr != nil || cerr != nil {
		t.Fatalf("server: %v; client: %v", serr, cerr)
	}
	transcript := rec.buf.Bytes()
	for _, x := range []float64{theta, beta} {
		fixed, err := tc.p.Compare().Encode(x)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range []uint64{fixed, math.Float64bits(x)} {
			for _, enc := range [][]byte{binary.LittleEndian.AppendUint64(nil, w), binary.BigEndian.AppendUint64(nil, w)} {
				if bytes.Contains(transcript, enc) {
					t.Errorf("threshold %g (%x) appears in the server's %d-byte transcript", x, enc, len(transcript))
				}
			}
		}
	}
}

// TestOrderIsFresh: two steps on the same input return the kept rows of
// each group in different orders (σ is drawn afresh each time; the chance
// that 8 high-degree rows come out in the same order twice is 1/8!).
func TestOrderIsFresh(t *testing.T) {
	defer noLeaks(t)()
	tc := newTestContext(t, ckks.InsecureTest11, defaultLiteral)
	r := rand.New(rand.NewPCG(2, 7))
	const n = 12
	scores := []float64{0, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.01, 0.01, 0.01}
	x := randomRows(r, n, 64, 1)
	in := tc.newInput(t, 0, x, scores, 3)
	var orders [][]int
	for range 2 {
		srv, cli := connPair(t, "pipe")
		ctx := testCtx(t)
		var res *ckks.BridgeResult
		serr, cerr := runPair(func() error {
			var err error
			res, _, err = tc.server.Prune(ctx, srv, in.out, 0.1, 0.3)
			return err
		}, func() error { _, err := tc.client.Prune(ctx, cli); return err })
		if serr != nil || cerr != nil {
			t.Fatalf("server: %v; client: %v", serr, cerr)
		}
		got, err := tc.he.DecryptMatrix(res.Hidden)
		if err != nil {
			t.Fatal(err)
		}
		var order []int
		for i := 1; i < got.Rows; i++ {
			idx, _ := matchRows(got, x, i, i+1)
			order = append(order, idx[0])
		}
		orders = append(orders, order)
	}
	t.Logf("orders: %v", orders)
	if slices.Equal(orders[0], orders[1]) {
		t.Errorf("two steps returned the same order %v", orders[0])
	}
}

// TestRevealedBitsUniform: the keep and degree bits the client learns are
// a uniform arrangement. Over many steps on the same input (one row kept at
// the high degree, one at the low degree, five pruned), the position of
// each kept row among the 7 shuffled rows passes a chi-square test of
// uniformity (6 degrees of freedom, rejected above 22.46: p = 0.001), and
// every step shows the same counts.
func TestRevealedBitsUniform(t *testing.T) {
	if testing.Short() {
		t.Skip("many pruning steps")
	}
	defer noLeaks(t)()
	tc := newTestContext(t, ckks.InsecureTest11, defaultLiteral)
	r := rand.New(rand.NewPCG(4, 4))
	const n, runs = 8, 140
	scores := []float64{0, 0, 0, 0.5, 0, 0.2, 0, 0}
	in := tc.newInput(t, 0, randomRows(r, n, 64, 1), scores, 3)
	var highPos, lowPos [n - 1]int
	client, err := NewClient(tc.params, tc.sk, tc.p, nil)
	if err != nil {
		t.Fatal(err)
	}
	client.observe = func(keep, high []bool) {
		for i := range keep {
			switch {
			case high[i]:
				highPos[i]++
			case keep[i]:
				lowPos[i]++
			}
		}
	}
	ctx := testCtx(t)
	for range runs {
		srv, cli := connPair(t, "pipe")
		var counts Counts
		serr, cerr := runPair(func() error { _, _, err := tc.server.Prune(ctx, srv, in.out, 0.1, 0.3); return err },
			func() error { var err error; counts, err = client.Prune(ctx, cli); return err })
		if serr != nil || cerr != nil {
			t.Fatalf("server: %v; client: %v", serr, cerr)
		}
		if counts.Kept != 3 || counts.High != 2 {
			t.Fatalf("counts %v, want 3 kept, 2 high (CLS included)", counts)
		}
	}
	for name, hist := range map[string][n - 1]int{"high": highPos, "low": lowPos} {
		chi2, total := 0.0, 0
		for _, k := range hist {
			total += k
		}
		want := float64(total) / float64(len(hist))
		for _, k := range hist {
			chi2 += (float64(k) - want) * (float64(k) - want) / want
		}
		t.Logf("%s-degree row positions over %d steps: %v, chi-square %.2f (6 dof)", name, runs, hist, chi2)
		if total != runs {
			t.Errorf("%s: %d observations, want %d", name, total, runs)
		}
		if chi2 > 22.46 {
			t.Errorf("%s-degree positions %v are not uniform: chi-square %.2f > 22.46", name, hist, chi2)
		}
	}
}
