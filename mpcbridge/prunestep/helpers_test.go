package prunestep

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/cipherprune/cipherprune/models"
	"github.com/cipherprune/cipherprune/mpcbridge/internal/nettest"
	"github.com/cipherprune/cipherprune/mpcbridge/wire"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// noLeaks fails the test if goroutines started during it still run when it
// ends. Use it as defer noLeaks(t)().
func noLeaks(t *testing.T) func() {
	t.Helper()
	opt := goleak.IgnoreCurrent()
	return func() {
		t.Helper()
		goleak.VerifyNone(t, opt)
	}
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// testContext holds both parties for one step literal.
type testContext struct {
	p      Parameters
	server *Server
	client *Client
}

var (
	tcMu    sync.Mutex
	tcCache = map[string]*testContext{}
)

// defaultLiteral is the step literal of the tests: |x| <= 16, F = 16.
var defaultLiteral = ParametersLiteral{Share: shareLiteral(4, 16)}

func newTestContext(tb testing.TB, lit ParametersLiteral) *testContext {
	tb.Helper()
	key := fmt.Sprintf("%+v", lit)
	tcMu.Lock()
	defer tcMu.Unlock()
	if tc, ok := tcCache[key]; ok {
		return tc
	}
	p, err := NewParameters(lit)
	if err != nil {
		tb.Fatal(err)
	}
	server, err := NewServer(p, nil)
	if err != nil {
		tb.Fatal(err)
	}
	client, err := NewClient(p, nil)
	if err != nil {
		tb.Fatal(err)
	}
	tc := &testContext{p: p, server: server, client: client}
	tcCache[key] = tc
	return tc
}

// connPair returns the server's and the client's wire.Conn over net.Pipe
// or loopback TCP; both are closed when the test ends.
func connPair(tb testing.TB, transport string) (srv, cli *wire.Conn) {
	tb.Helper()
	return nettest.WireConns(tb, transport, "prunestep-test", false)
}

// randomRows returns n x d Gaussian rows (distinct with overwhelming
// probability, far apart in Euclidean distance).
func randomRows(r *rand.Rand, n, d int, sigma float64) models.Matrix {
	m := models.NewMatrix(n, d)
	for i := range m.Data {
		m.Data[i] = sigma * r.NormFloat64()
	}
	return m
}

// matchRows matches every row of got (rows from..to) with the nearest row
// of want and returns the matched indices of want, sorted, and the largest
// entry error of the matches.
func matchRows(got, want models.Matrix, from, to int) ([]int, float64) {
	var idx []int
	var maxErr float64
	for r := from; r < to; r++ {
		best, bestD := -1, math.Inf(1)
		for i := 0; i < want.Rows; i++ {
			var d float64
			for j := 0; j < want.Cols; j++ {
				d = math.Max(d, math.Abs(got.At(r, j)-want.At(i, j)))
			}
			if d < bestD {
				best, bestD = i, d
			}
		}
		idx = append(idx, best)
		maxErr = math.Max(maxErr, bestD)
	}
	sort.Ints(idx)
	return idx, maxErr
}
