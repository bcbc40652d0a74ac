package prunestep

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/cipherprune/cipherprune/models"
	"github.com/cipherprune/cipherprune/mpcbridge/share"
)

func shareLiteral(logBound, fracBits int) share.ParametersLiteral {
	return share.ParametersLiteral{LogBound: logBound, FracBits: fracBits}
}

// scoreGrid holds the scores the tests draw from: far from the thresholds
// θ = 0.1 and β = 0.3 (more than the fixed-point error), with
// padding-like scores (0, 2e-3) and a negative one.
var scoreGrid = []float64{0, 0.002, -0.05, 0.05, 0.15, 0.25, 0.35, 0.6, 0.9}

// checkPruneShares shares x and scores at random, runs the step with θ
// and β over a pipe, and checks the kept rows, their order and the counts
// against Parameters.Decide (checkKept).
func checkPruneShares(t *testing.T, tc *testContext, r *rand.Rand, x models.Matrix, scores []float64, theta, beta float64) {
	t.Helper()
	sIn, cIn := shareRows(r, tc.p, 5, x, scores)
	var out [2]Rows
	srv, cli := connPair(t, "pipe")
	counts, err := pruneSharesStep(tc.server, tc.client, sIn, cIn, theta, beta, &out)(testCtx(t), srv, cli)
	if err != nil {
		t.Fatal(err)
	}
	checkKept(t, tc, x, scores, theta, beta, counts, out)
}

// TestPruneExtremes: nothing but CLS survives, or everything survives at
// the high degree, or everything at the low degree (β below θ keeps every
// kept row high, since high = [s > β] ∧ keep).
func TestPruneExtremes(t *testing.T) {
	defer noLeaks(t)()
	tc := newTestContext(t, defaultLiteral)
	const n, d = 9, 64
	r := rand.New(rand.NewPCG(5, 6))
	x := randomRows(r, n, d, 1)
	scores := []float64{0, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9}
	for _, c := range []struct {
		name        string
		theta, beta float64
	}{
		{"none kept", 0.95, 0.99},
		{"all high", 0.1, 0.15},
		{"all low", 0.1, 0.95},
		{"beta below theta", 0.45, 0.01},
	} {
		t.Run(c.name, func(t *testing.T) { checkPruneShares(t, tc, r, x, scores, c.theta, c.beta) })
	}
}

// TestPruneThresholdRejected: θ <= θ_min (or not finite) fails before any
// I/O and leaves the connection usable.
func TestPruneThresholdRejected(t *testing.T) {
	defer noLeaks(t)()
	tc := newTestContext(t, defaultLiteral)
	r := rand.New(rand.NewPCG(1, 1))
	sIn, _ := shareRows(r, tc.p, 0, randomRows(r, 4, 64, 1), []float64{0, 0.1, 0.2, 0.3})
	srv, _ := connPair(t, "pipe")
	for _, th := range []struct{ theta, beta float64 }{
		{MinTheta, 0.5}, {0, 0.5}, {-1, 0.5}, {math.NaN(), 0.5}, {math.Inf(1), 0.5}, {0.1, math.NaN()}, {0.1, 1e30},
	} {
		_, _, err := tc.server.PruneShares(testCtx(t), srv, sIn, th.theta, th.beta)
		if err == nil {
			t.Errorf("θ = %g, β = %g accepted", th.theta, th.beta)
			continue
		}
		t.Logf("θ = %g, β = %g: %v", th.theta, th.beta, err)
	}
	if s := srv.Stats(); s.BytesSent != 0 {
		t.Errorf("rejected calls sent %d bytes", s.BytesSent)
	}
}

// TestParameters checks NewParameters' limits.
func TestParameters(t *testing.T) {
	for _, c := range []struct {
		lit ParametersLiteral
		ok  bool
	}{
		{ParametersLiteral{Share: shareLiteral(4, 16)}, true},
		{ParametersLiteral{Share: shareLiteral(6, 16)}, true},
		{ParametersLiteral{Share: shareLiteral(7, 16)}, false}, // 2^23 values: not hidden to 2^-40
		{ParametersLiteral{Share: shareLiteral(4, 20)}, false},
		{ParametersLiteral{Share: shareLiteral(4, 16), CompareBits: 32}, true},
		{ParametersLiteral{Share: shareLiteral(4, 16), CompareBits: 21}, false},
		{ParametersLiteral{Share: shareLiteral(4, 16), CompareBits: 65}, false},
		{ParametersLiteral{Share: share.ParametersLiteral{LogBound: 4, Lambda: 20}}, false},
		{ParametersLiteral{Share: shareLiteral(6, 16), ScoreFracBits: 20}, true},
		{ParametersLiteral{Share: shareLiteral(6, 16), ScoreFracBits: 22}, true},
		{ParametersLiteral{Share: shareLiteral(6, 16), ScoreFracBits: 23}, false}, // beyond F + B
		{ParametersLiteral{Share: shareLiteral(6, 16), ScoreFracBits: 15}, false}, // below F
	} {
		p, err := NewParameters(c.lit)
		if (err == nil) != c.ok {
			t.Errorf("%+v: error %v, want ok=%v", c.lit, err, c.ok)
			continue
		}
		if err == nil && p.ScoreFracBits() != p.Compare().F() {
			t.Errorf("%+v: score F %d, comparison F %d", c.lit, p.ScoreFracBits(), p.Compare().F())
		}
	}
}

// TestPruneCompareBits32 runs the step with 32-bit comparisons.
func TestPruneCompareBits32(t *testing.T) {
	defer noLeaks(t)()
	tc := newTestContext(t, ParametersLiteral{Share: shareLiteral(4, 16), CompareBits: 32})
	r := rand.New(rand.NewPCG(3, 2))
	scores := []float64{0, 0.5, -0.2, 0.05, 0.2, 0.9}
	checkPruneShares(t, tc, r, randomRows(r, len(scores), 64, 1), scores, 0.1, 0.3)
}

// TestCheckConversion pins the joint bound of the ring-to-integer
// conversion: (rows-1)·cols values of 2^(B+F) under masks of 2^88 are
// hidden to 2^-40 together only while (rows-1)·cols <= 2^(48-B-F).
func TestCheckConversion(t *testing.T) {
	for _, c := range []struct {
		logBound, fracBits int
		rows, cols         int
		ok                 bool
	}{
		{4, 16, 129, 768, true},      // BERT-base at n = 128
		{4, 16, 16385, 16384, true},  // 2^28 values: the budget at B + F = 20
		{4, 16, 16386, 16384, false}, // one row more
		{6, 16, 4097, 16384, true},   // 2^26 values at B + F = 22
		{6, 16, 4098, 16384, false},
		{4, 16, 1, 768, true}, // CLS alone: nothing is converted
	} {
		p, err := NewParameters(ParametersLiteral{Share: shareLiteral(c.logBound, c.fracBits)})
		if err != nil {
			t.Fatal(err)
		}
		err = p.checkConversion(c.rows, c.cols)
		if (err == nil) != c.ok {
			t.Errorf("B=%d F=%d %d x %d: err = %v, want ok = %v", c.logBound, c.fracBits, c.rows, c.cols, err, c.ok)
		}
	}
}
