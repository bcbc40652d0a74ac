package prunestep

import (
	"bytes"
	"context"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"net"
	"slices"
	"sync"
	"testing"

	"github.com/cipherprune/cipherprune/mpcbridge/internal/nettest"
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
	tc := newTestContext(t, defaultLiteral)
	r := rand.New(rand.NewPCG(8, 8))
	const n = 16
	scores := make([]float64, n)
	for i := range scores {
		scores[i] = scoreGrid[r.IntN(len(scoreGrid))]
	}
	sIn, cIn := shareRows(r, tc.p, 0, randomRows(r, n, 64, 1), scores)
	const theta, beta = 0.1234, 0.3456
	a, b := nettest.Pair(t, "pipe")
	rec := &recordConn{Conn: a}
	srv, _ := wire.NewConn(rec, wire.Config{Role: wire.RoleServer})
	cli, _ := wire.NewConn(b, wire.Config{Role: wire.RoleClient})
	defer srv.Close()
	defer cli.Close()
	ctx := testCtx(t)
	if _, err := pruneSharesStep(tc.server, tc.client, sIn, cIn, theta, beta, nil)(ctx, srv, cli); err != nil {
		t.Fatal(err)
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
	tc := newTestContext(t, defaultLiteral)
	r := rand.New(rand.NewPCG(2, 7))
	const n = 12
	scores := []float64{0, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.01, 0.01, 0.01}
	x := randomRows(r, n, 64, 1)
	sIn, cIn := shareRows(r, tc.p, 0, x, scores)
	var orders [][]int
	for range 2 {
		srv, cli := connPair(t, "pipe")
		var out [2]Rows
		if _, err := pruneSharesStep(tc.server, tc.client, sIn, cIn, 0.1, 0.3, &out)(testCtx(t), srv, cli); err != nil {
			t.Fatal(err)
		}
		got := openRows(t, tc.p.FracBits(), out[0], out[1])
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

// positions counts, for one party, where the kept rows land among the
// n-1 shuffled rows once that party's own factor of σ is undone.
type positions struct {
	high, low []int
}

// record returns an observe function that maps each kept row's shuffled
// position j back through the party's own factor perm (row k went to
// perm[k]) and counts the row at perm⁻¹(j).
func (p *positions) record(n int) func(perm []int, keep, high []bool) {
	p.high, p.low = make([]int, n), make([]int, n)
	return func(perm []int, keep, high []bool) {
		inv := make([]int, len(perm))
		for k, j := range perm {
			inv[j] = k
		}
		for j := range keep {
			switch {
			case high[j]:
				p.high[inv[j]]++
			case keep[j]:
				p.low[inv[j]]++
			}
		}
	}
}

// chiSquare returns the chi-square statistic of hist against the uniform
// distribution over its bins, and the number of observations.
func chiSquare(hist []int) (float64, int) {
	total := 0
	for _, k := range hist {
		total += k
	}
	want := float64(total) / float64(len(hist))
	var chi2 float64
	for _, k := range hist {
		chi2 += (float64(k) - want) * (float64(k) - want) / want
	}
	return chi2, total
}

// chi2Reject is the chi-square value above which TestRevealedBitsUniform
// rejects uniformity over 7 positions: 6 degrees of freedom, p = 0.001.
const chi2Reject = 22.46

// TestRevealedBitsUniform: the keep and degree bits both parties learn are
// a uniform arrangement even to a party that undoes its own factor of the
// shuffle's order σ = π_C ∘ π_S (row i lands at j = π_C(π_S(i))). Over many
// steps on the same input (one row kept at the high degree, one at the
// low degree, five pruned), the client maps each kept row's position j to
// π_C⁻¹(j) = π_S(i), uniform only because π_S is, and the server to
// π_S⁻¹(j), uniform only because π_C is; each party's positions among the 7
// shuffled rows pass a chi-square test of uniformity (6 degrees of
// freedom, rejected above 22.46: p = 0.001), and every step shows the same
// counts. Checking j itself would prove nothing about either party: either
// factor alone makes j uniform. With either party's permutation forced to
// the identity, the other party's positions are the input's every time and
// the test fails. Both parties draw from seeded streams, so the test is
// deterministic.
func TestRevealedBitsUniform(t *testing.T) {
	if testing.Short() {
		t.Skip("many pruning steps")
	}
	defer noLeaks(t)()
	tc := newTestContext(t, defaultLiteral)
	r := rand.New(rand.NewPCG(4, 4))
	const n, runs = 8, 140
	scores := []float64{0, 0, 0, 0.5, 0, 0.2, 0, 0}
	sIn, cIn := shareRows(r, tc.p, 0, randomRows(r, n, 64, 1), scores)
	server, err := NewServer(tc.p, rand.NewChaCha8([32]byte{1}))
	if err != nil {
		t.Fatal(err)
	}
	client, err := NewClient(tc.p, rand.NewChaCha8([32]byte{2}))
	if err != nil {
		t.Fatal(err)
	}
	checkViewsUniform(t, server, client, runs, pruneSharesStep(server, client, sIn, cIn, 0.1, 0.3, nil))
}

// checkViewsUniform runs step runs times between server and client (one
// row kept at the high degree and one at the low degree each time) and
// checks that each party's positions of the kept rows, its own factor of σ
// undone, pass the chi-square test (TestRevealedBitsUniform).
func checkViewsUniform(t *testing.T, server *Server, client *Client, runs int, step stepFunc) {
	t.Helper()
	const n = 8
	var serverView, clientView positions
	server.observe = serverView.record(n - 1)
	client.observe = clientView.record(n - 1)
	pruneRuns(t, runs, Counts{Kept: 3, High: 2}, step)
	for _, c := range []struct {
		view, group string
		hist        []int
	}{
		{"client (π_C undone)", "high", clientView.high},
		{"client (π_C undone)", "low", clientView.low},
		{"server (π_S undone)", "high", serverView.high},
		{"server (π_S undone)", "low", serverView.low},
	} {
		checkUniform(t, c.view, c.group, c.hist, runs)
	}
}

// checkUniform fails the test unless hist, the positions of one party's
// view of one group, holds want observations and passes the chi-square
// test of uniformity.
func checkUniform(t *testing.T, view, group string, hist []int, want int) {
	t.Helper()
	chi2, total := chiSquare(hist)
	t.Logf("%s: %s-degree row positions: %v, chi-square %.2f (%d dof)", view, group, hist, chi2, len(hist)-1)
	if total != want {
		t.Errorf("%s: %s: %d observations, want %d", view, group, total, want)
	}
	if chi2 > chi2Reject {
		t.Errorf("%s: %s-degree positions %v are not uniform: chi-square %.2f > %.2f", view, group, hist, chi2, chi2Reject)
	}
}

// stepFunc runs one pruning step between the two ends of a connection and
// returns the client's counts.
type stepFunc func(ctx context.Context, srv, cli *wire.Conn) (Counts, error)

// pruneRuns runs step the given number of times over fresh connections,
// and requires the counts want (CLS included) every time.
func pruneRuns(t *testing.T, runs int, want Counts, step stepFunc) {
	t.Helper()
	ctx := testCtx(t)
	for range runs {
		srv, cli := connPair(t, "pipe")
		counts, err := step(ctx, srv, cli)
		if err != nil {
			t.Fatal(err)
		}
		if counts.Kept != want.Kept || counts.High != want.High {
			t.Fatalf("counts %v, want %d kept, %d high (CLS included)", counts, want.Kept, want.High)
		}
	}
}
