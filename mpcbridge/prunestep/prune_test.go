package prunestep

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/tuneinsight/lattigo/v5/he/hefloat"

	"github.com/cipherprune/cipherprune/ckks"
	"github.com/cipherprune/cipherprune/models/approx"
	"github.com/cipherprune/cipherprune/mpcbridge/internal/nettest"
	"github.com/cipherprune/cipherprune/mpcbridge/share"
)

func shareLiteral(logBound, fracBits int) share.ParametersLiteral {
	return share.ParametersLiteral{LogBound: logBound, FracBits: fracBits}
}

// featureTol bounds the entry error of a row that went through the step:
// two fixed-point roundings (2^-16), the HE noise of the input and of the
// fresh encryption (about 1e-6 at scale 2^33), far below it.
const featureTol = 5e-5

// scoreGrid holds the scores the tests draw from: far from the thresholds
// θ = 0.1 and β = 0.3 (more than the HE and fixed-point error), with
// padding-like scores (0, 2e-3) and a negative one.
var scoreGrid = []float64{0, 0.002, -0.05, 0.05, 0.15, 0.25, 0.35, 0.6, 0.9}

// TestPrune runs the step on random rows and scores and checks the kept
// rows, their order, degrees and masks, and the counts against the
// plaintext rule.
func TestPrune(t *testing.T) {
	defer noLeaks(t)()
	tc := newTestContext(t, ckks.InsecureTest11, defaultLiteral)
	const theta, beta = 0.1, 0.3
	cases := []struct {
		n, d      int
		transport string
	}{
		{1, 64, "pipe"},
		{2, 64, "pipe"},
		{2, 128, "tcp"},
		{7, 96, "pipe"},
		{16, 64, "tcp"},
		{16, 128, "pipe"},
		{33, 64, "pipe"},
		{33, 128, "tcp"},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("n=%d/d=%d/%s", c.n, c.d, c.transport), func(t *testing.T) {
			r := rand.New(rand.NewPCG(uint64(c.n), uint64(c.d)))
			x := randomRows(r, c.n, c.d, 1.5)
			scores := make([]float64, c.n)
			for i := 1; i < c.n; i++ {
				scores[i] = scoreGrid[r.IntN(len(scoreGrid))]
			}
			scores[0] = -0.5 // CLS: pruned by the rule, kept by the public exception
			in := tc.newInput(t, 3, x, scores, 3)
			checkPrune(t, tc, in, theta, beta, c.transport)
		})
	}
}

// checkPrune runs one step on in and checks everything against the
// plaintext rule.
func checkPrune(t *testing.T, tc *testContext, in *input, theta, beta float64, transport string) {
	t.Helper()
	ctx := testCtx(t)
	srv, cli := connPair(t, transport)
	var (
		res     *ckks.BridgeResult
		sCounts Counts
		cCounts Counts
	)
	serr, cerr := nettest.Both(func() error {
		var err error
		res, sCounts, err = tc.server.Prune(ctx, srv, in.out, theta, beta)
		return err
	}, func() error {
		var err error
		cCounts, err = tc.client.Prune(ctx, cli)
		return err
	})
	if serr != nil || cerr != nil {
		t.Fatalf("server: %v; client: %v", serr, cerr)
	}
	high, low := plainRule(in.scores, theta, beta)
	want := Counts{Layer: in.out.Layer, In: in.x.Rows, Kept: 1 + len(high) + len(low), High: 1 + len(high)}
	if sCounts != want || cCounts != want {
		t.Fatalf("counts: server %v, client %v, want %v", sCounts, cCounts, want)
	}
	lay := res.Hidden.Layout
	if want := in.lay.WithRows(want.Kept); lay != want {
		t.Fatalf("layout %+v, want %+v", lay, want)
	}
	for i, ct := range res.Hidden.Cts {
		if ct.Level() != tc.params.MaxLevel() {
			t.Errorf("ciphertext %d at level %d, want the top %d", i, ct.Level(), tc.params.MaxLevel())
		}
	}
	got, err := tc.he.DecryptMatrix(res.Hidden)
	if err != nil {
		t.Fatal(err)
	}
	// CLS first, then the high group, then the low group, as multisets.
	cls, clsErr := matchRows(got, in.x, 0, 1)
	if cls[0] != 0 {
		t.Errorf("row 0 is input row %d, want CLS", cls[0])
	}
	gotHigh, highErr := matchRows(got, in.x, 1, want.High)
	gotLow, lowErr := matchRows(got, in.x, want.High, want.Kept)
	if !slices.Equal(gotHigh, high) {
		t.Errorf("high group holds rows %v, want %v", gotHigh, high)
	}
	if !slices.Equal(gotLow, low) {
		t.Errorf("low group holds rows %v, want %v", gotLow, low)
	}
	maxErr := math.Max(clsErr, math.Max(highErr, lowErr))
	if maxErr > featureTol {
		t.Errorf("feature error %g > %g", maxErr, featureTol)
	}
	t.Logf("%v; feature error %.2g", sCounts, maxErr)
	// Slots outside the kept rows are zero.
	checkZeroPadding(t, tc, res.Hidden)
	// Degrees.
	if len(res.Degrees) != want.Kept {
		t.Fatalf("%d degrees for %d rows", len(res.Degrees), want.Kept)
	}
	for i, dg := range res.Degrees {
		wantDeg := approx.High
		if i >= want.High {
			wantDeg = approx.Low
		}
		if dg != wantDeg {
			t.Errorf("degree of row %d is %v, want %v", i, dg, wantDeg)
		}
	}
	// Masks: the all-valid masks of the kept rows.
	valid := make([]bool, want.Kept)
	for i := range valid {
		valid[i] = true
	}
	km, qw, err := ckks.AttentionMaskVectors(valid, lay)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Masks.KeyMask) != len(km) {
		t.Fatalf("%d key masks, want %d", len(res.Masks.KeyMask), len(km))
	}
	for g, ct := range append(slices.Clone(res.Masks.KeyMask), res.Masks.QueryWeights) {
		v, err := tc.he.DecryptVector(ct)
		if err != nil {
			t.Fatal(err)
		}
		w := qw
		if g < len(km) {
			w = km[g]
		}
		for i := range w {
			if math.Abs(v[i]-w[i]) > 1e-4 {
				t.Fatalf("mask %d slot %d: %g, want %g", g, i, v[i], w[i])
			}
		}
	}
}

// checkZeroPadding checks that every slot outside the matrix decrypts to 0.
func checkZeroPadding(t *testing.T, tc *testContext, m *ckks.CtMatrix) {
	t.Helper()
	lay := m.Layout
	inside := make([]bool, lay.Slots)
	for j := 0; j < lay.ColsPerCt(); j++ {
		for i := 0; i < lay.Rows; i++ {
			inside[j*lay.Block+i] = true
		}
	}
	for k, ct := range m.Cts {
		v, err := tc.he.DecryptVector(ct)
		if err != nil {
			t.Fatal(err)
		}
		for s, x := range v {
			last := k == len(m.Cts)-1 && s/lay.Block >= lay.Cols-k*lay.ColsPerCt()
			if (!inside[s] || last) && math.Abs(x) > featureTol {
				t.Fatalf("ciphertext %d slot %d outside the matrix holds %g", k, s, x)
			}
		}
	}
}

// TestPruneExtremes: nothing but CLS survives, or everything survives at
// the high degree, or everything at the low degree (β below θ keeps every
// kept row high, since high = [s > β] ∧ keep).
func TestPruneExtremes(t *testing.T) {
	defer noLeaks(t)()
	tc := newTestContext(t, ckks.InsecureTest11, defaultLiteral)
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
		t.Run(c.name, func(t *testing.T) {
			in := tc.newInput(t, 0, x, scores, 2)
			checkPrune(t, tc, in, c.theta, c.beta, "pipe")
		})
	}
}

// TestPruneThresholdRejected: θ <= θ_min (or not finite) fails before any
// I/O and leaves the connection usable.
func TestPruneThresholdRejected(t *testing.T) {
	defer noLeaks(t)()
	tc := newTestContext(t, ckks.InsecureTest11, defaultLiteral)
	r := rand.New(rand.NewPCG(1, 1))
	in := tc.newInput(t, 0, randomRows(r, 4, 64, 1), []float64{0, 0.1, 0.2, 0.3}, 3)
	srv, _ := connPair(t, "pipe")
	for _, th := range []struct{ theta, beta float64 }{
		{MinTheta, 0.5}, {0, 0.5}, {-1, 0.5}, {math.NaN(), 0.5}, {math.Inf(1), 0.5}, {0.1, math.NaN()}, {0.1, 1e30},
	} {
		_, _, err := tc.server.Prune(testCtx(t), srv, in.out, th.theta, th.beta)
		if err == nil {
			t.Errorf("θ = %g, β = %g accepted", th.theta, th.beta)
			continue
		}
		t.Logf("θ = %g, β = %g: %v", th.theta, th.beta, err)
	}
	if s := srv.Stats(); s.BytesSent != 0 {
		t.Errorf("rejected calls sent %d bytes", s.BytesSent)
	}
	if _, err := NewBridge(tc.server, srv, []LayerRule{{Prune: true, Theta: 1e-4, Beta: 1}}, nil); err == nil {
		t.Error("NewBridge accepted θ < θ_min")
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
		{ParametersLiteral{Share: shareLiteral(4, 16), HeadDim: 32, Heads: 2}, true},
		{ParametersLiteral{Share: shareLiteral(4, 16), HeadDim: -1}, false},
		{ParametersLiteral{Share: shareLiteral(4, 16), Heads: -1}, false},
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
	if _, err := NewServer(testParams(t), nil, Parameters{}, nil); err == nil {
		t.Error("NewServer accepted zero Parameters")
	}
}

// TestNextLayout: the kept rows move to the smallest block for them, or
// stay in the input's block with KeepBlock (stacked heads included).
func TestNextLayout(t *testing.T) {
	lay, err := ckks.LayoutFor(1024, 64, 64, 32, 2) // block 64, one head per 32 columns
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		keep        bool
		kept, block int
	}{
		{false, 40, 64},
		{false, 13, 16},
		{true, 13, 64},
		{true, 64, 64},
	} {
		p, err := NewParameters(ParametersLiteral{Share: shareLiteral(4, 16), HeadDim: 32, Heads: 2, KeepBlock: c.keep})
		if err != nil {
			t.Fatal(err)
		}
		next, err := p.NextLayout(lay, c.kept)
		if err != nil {
			t.Fatalf("keep=%v kept=%d: %v", c.keep, c.kept, err)
		}
		if next.Rows != c.kept || next.Block != c.block || next.Validate() != nil {
			t.Errorf("keep=%v kept=%d: rows %d block %d (%v), want block %d", c.keep, c.kept, next.Rows, next.Block, next.Validate(), c.block)
		}
		if p.KeepBlock() != c.keep || p.Literal().KeepBlock != c.keep {
			t.Errorf("keep=%v: KeepBlock() %v, literal %v", c.keep, p.KeepBlock(), p.Literal().KeepBlock)
		}
		if _, err := p.NextLayout(lay, 0); err == nil {
			t.Errorf("keep=%v: 0 rows accepted", c.keep)
		}
		if _, err := p.NextLayout(lay, 65); err == nil {
			t.Errorf("keep=%v: 65 rows in block 64 accepted", c.keep)
		}
	}
}

func testParams(t *testing.T) hefloat.Parameters {
	t.Helper()
	return newTestContext(t, ckks.InsecureTest11, defaultLiteral).params
}

// TestPruneCompareBits32 runs the step with 32-bit comparisons.
func TestPruneCompareBits32(t *testing.T) {
	defer noLeaks(t)()
	tc := newTestContext(t, ckks.InsecureTest11, ParametersLiteral{Share: shareLiteral(4, 16), CompareBits: 32})
	r := rand.New(rand.NewPCG(3, 2))
	scores := []float64{0, 0.5, -0.2, 0.05, 0.2, 0.9}
	in := tc.newInput(t, 1, randomRows(r, len(scores), 64, 1), scores, 2)
	checkPrune(t, tc, in, 0.1, 0.3, "pipe")
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
