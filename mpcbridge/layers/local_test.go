package layers

import (
	"math/big"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/cipherprune/cipherprune/ckks/polymat"
	"github.com/cipherprune/cipherprune/models/approx"
	"github.com/cipherprune/cipherprune/mpcbridge/elementwise"
	"github.com/cipherprune/cipherprune/mpcbridge/matmul"
	"github.com/cipherprune/cipherprune/mpcbridge/share"
)

// TestDivRound checks round(x/d), halves away from zero, against big.Int
// on shares of up to 120 bits and the edges.
func TestDivRound(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	check := func(x share.Int128, d uint64) {
		t.Helper()
		xb := x.Big(nil)
		db := new(big.Int).SetUint64(d)
		// round(x/d) = sign(x)·floor((2|x| + d) / 2d)
		num := new(big.Int).Abs(xb)
		num.Lsh(num, 1).Add(num, db)
		q := num.Quo(num, new(big.Int).Lsh(db, 1))
		if xb.Sign() < 0 {
			q.Neg(q)
		}
		if got := divRound(x, d).Big(nil); got.Cmp(q) != 0 {
			t.Fatalf("round(%v / %d) = %v, want %v", xb, d, got, q)
		}
	}
	for _, d := range []uint64{1, 2, 3, 7, 128, 768, 1 << 20, 1<<63 + 5} {
		for _, v := range []int64{0, 1, -1, 63, 64, 65, -63, -64, -65, 383, 384, -384, 1 << 40} {
			check(share.Int128FromInt64(v), d)
		}
		for i := 0; i < 200; i++ {
			x := share.Int128{Hi: r.Uint64() >> (8 + r.IntN(60)), Lo: r.Uint64()}
			if r.IntN(2) == 0 {
				x = x.Neg()
			}
			check(x, d)
		}
	}
}

// TestRowMeans checks that the two parties' local means add up to the
// exact mean within one unit, on statistically masked shares.
func TestRowMeans(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	const rows, cols, f = 5, 768, 16
	x := make([]float64, rows*cols)
	for i := range x {
		x[i] = 8 * r.NormFloat64()
	}
	a, b := split(r, x, f, 90)
	ma, mb := rowMeans(a, cols), rowMeans(b, cols)
	for i := 0; i < rows; i++ {
		var sum big.Int
		for j := 0; j < cols; j++ {
			sum.Add(&sum, a[i*cols+j].Add(b[i*cols+j]).Big(nil))
		}
		exact := new(big.Rat).SetFrac(&sum, big.NewInt(cols))
		got := new(big.Rat).SetInt(ma[i].Add(mb[i]).Big(nil))
		diff, _ := new(big.Rat).Sub(got, exact).Float64()
		if diff < -1 || diff > 1 {
			t.Fatalf("row %d: local means add to %v, exact mean %v", i, got, exact)
		}
	}
}

func TestSpans(t *testing.T) {
	h, l := approx.High, approx.Low
	for _, c := range []struct {
		degs []approx.Degree
		want []span
	}{
		{nil, []span{{h, 0, 4}}},
		{[]approx.Degree{h, h, h, h}, []span{{h, 0, 4}}},
		{[]approx.Degree{h, h, l, l}, []span{{h, 0, 2}, {l, 2, 4}}},
		{[]approx.Degree{h, l, h, l}, []span{{h, 0, 1}, {l, 1, 2}, {h, 2, 3}, {l, 3, 4}}},
	} {
		got, err := spans(c.degs, 4)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(c.want) {
			t.Fatalf("%v: spans %v, want %v", c.degs, got, c.want)
		}
		for i := range got {
			if got[i] != c.want[i] {
				t.Fatalf("%v: spans %v, want %v", c.degs, got, c.want)
			}
		}
	}
	if _, err := spans([]approx.Degree{h}, 2); err == nil {
		t.Error("1 degree for 2 rows accepted")
	}
	if _, err := spans([]approx.Degree{h, 7}, 2); err == nil {
		t.Error("invalid degree accepted")
	}
}

func TestLogBoundOut(t *testing.T) {
	// Columns sum to 1.5 and 4: 2^3·4 = 2^5.
	w := []float64{0.5, -2, 1, 2}
	if by, err := LogBoundOut(3, w, 2, 2); err != nil || by != 5 {
		t.Fatalf("LogBoundOut = %d, %v; want 5", by, err)
	}
	if by, err := LogBoundOut(3, []float64{0.5, -2, 1, 2.5}, 2, 2); err != nil || by != 6 {
		t.Fatalf("LogBoundOut = %d, %v; want 6", by, err)
	}
	if _, err := LogBoundOut(3, w, 3, 2); err == nil {
		t.Error("wrong shape accepted")
	}
}

// TestParameters checks the defaults and the refusals.
func TestParameters(t *testing.T) {
	tn := loadTiny(t)
	lit := ParametersLiteral{MatMul: matmul.ParametersLiteral{LogBound: 5, LogBoundOut: 11}}
	p, err := NewParameters(lit, tn.reg)
	if err != nil {
		t.Fatal(err)
	}
	if p.Literal().Ring.LogN != polymat.N12.LogN || p.Literal().MaxWeightBytes != DefaultMaxWeightBytes || p.FracBits() != 16 {
		t.Fatalf("defaults: %+v", p.Literal())
	}
	for name, c := range map[string]struct {
		lit ParametersLiteral
		reg *approx.Registry
		msg string
	}{
		"F differs":       {ParametersLiteral{MatMul: lit.MatMul, Elementwise: elementwise.ParametersLiteral{FracBits: 14}}, tn.reg, "must agree"},
		"default 1/x":     {lit, nil, "reciprocal"},
		"negative budget": {ParametersLiteral{MatMul: lit.MatMul, MaxWeightBytes: -1}, tn.reg, "MaxWeightBytes"},
	} {
		if _, err := NewParameters(c.lit, c.reg); err == nil || !strings.Contains(strings.ToLower(err.Error()), strings.ToLower(c.msg)) {
			t.Errorf("%s: %v, want an error about %q", name, err, c.msg)
		}
	}
}

// TestPlanLayouts checks that every row count up to the plan's gets
// layouts with the weights' D1 and D2 and a D0 that fits.
func TestPlanLayouts(t *testing.T) {
	tn := loadTiny(t)
	p, err := NewParameters(ParametersLiteral{MatMul: matmul.ParametersLiteral{LogBound: 5, LogBoundOut: 11}}, tn.reg)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := p.PlanFFN(FFNShape{Rows: 128, Hidden: 768, Intermediate: 3072})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("blocks: up %v, down %v", plan.Up, plan.Down)
	for n := 1; n <= 128; n++ {
		up, down, err := plan.layouts(p.MatMul().Ring(), n)
		if err != nil {
			t.Fatalf("n = %d: %v", n, err)
		}
		if up.D1 != plan.Up.D1 || up.D2 != plan.Up.D2 || down.D1 != plan.Down.D1 || down.D2 != plan.Down.D2 || up.D0 > plan.Up.D0 || down.D0 > plan.Down.D0 {
			t.Fatalf("n = %d: layouts %v and %v for the plan's %v and %v", n, up.Block, down.Block, plan.Up, plan.Down)
		}
	}
	if _, _, err := plan.layouts(p.MatMul().Ring(), 129); err == nil {
		t.Error("129 rows accepted by a plan for 128")
	}
}

// TestErrors checks the refusals before any message.
func TestErrors(t *testing.T) {
	tn := loadTiny(t)
	tc := newTestContext(t, tinyLiteral(t, tn, "InsecureTest11"), tn.reg)
	srv, cli := tc.parties(t, 1)
	ln := &tn.model.Server.Layers[0].OutputNorm
	x := make(share.Vector, 2*128)
	cases := map[string]error{}
	_, cases["server: rows not whole"] = srv.LayerNorm(bg(), nil, ln, nil, x[:100])
	_, cases["client: rows not whole"] = cli.LayerNorm(bg(), nil, 128, nil, x[:100])
	_, cases["server: degrees"] = srv.LayerNorm(bg(), nil, ln, []approx.Degree{approx.High}, x)
	_, cases["client: degrees"] = cli.LayerNorm(bg(), nil, 128, []approx.Degree{approx.High}, x)
	bad := *ln
	bad.Beta = bad.Beta[:5]
	_, cases["server: β"] = srv.LayerNorm(bg(), nil, &bad, nil, x)
	_, cases["server: nil weights"] = srv.FFN(bg(), nil, nil, nil, x)
	plan, err := tc.p.PlanFFN(FFNShape{Rows: 1, Hidden: 128, Intermediate: 512})
	if err != nil {
		t.Fatal(err)
	}
	_, cases["client: rows beyond the plan"] = cli.FFN(bg(), nil, plan, nil, x)
	ly := &tn.model.Server.Layers[0]
	_, cases["weights: shapes"] = NewFFNWeights(bg(), tc.p, plan, &ly.Output, &ly.Intermediate, &ly.OutputNorm, 1)
	small := tinyLiteral(t, tn, "InsecureTest11")
	small.MatMul.LogBoundOut = 6
	ps, err := NewParameters(small, tn.reg)
	if err != nil {
		t.Fatal(err)
	}
	_, cases["weights: output bound"] = NewFFNWeights(bg(), ps, plan, &ly.Intermediate, &ly.Output, &ly.OutputNorm, 1)
	for name, err := range cases {
		if err == nil {
			t.Errorf("%s: accepted", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
}
