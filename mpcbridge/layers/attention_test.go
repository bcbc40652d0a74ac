package layers

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/cipherprune/cipherprune/models"
	"github.com/cipherprune/cipherprune/models/approx"
	"github.com/cipherprune/cipherprune/mpcbridge/elementwise"
	"github.com/cipherprune/cipherprune/mpcbridge/share"
)

// scoreTolerance is the largest error allowed on the importance scores
// (averages of probabilities, about 1/n each): observed up to 1.1e-4, from
// the probabilities' errors (the quantized query and key weights, the
// encryption noise of the scores, exp's CKKS noise) averaged over the
// rows and heads.
const scoreTolerance = 2.5e-4

// runAttention runs layer l's attention stage on shares of x between fresh
// parties.
func runAttention(t *testing.T, tc *testContext, tn *tiny, l int, rows Rows, xa, xb share.Vector, n int) (ya, yb, sa, sb share.Vector) {
	t.Helper()
	ly := &tn.model.Server.Layers[l]
	cfg := tn.model.Config()
	plan, err := tc.p.PlanAttention(AttnShape{Rows: n, Hidden: cfg.HiddenSize(), Heads: cfg.NumHeads()})
	if err != nil {
		t.Fatal(err)
	}
	w, err := NewAttnWeights(bg(), tc.p, plan, &ly.Query, &ly.Key, &ly.Value, &ly.AttnOutput, &ly.AttnNorm, 2)
	if err != nil {
		t.Fatal(err)
	}
	sc, cc := connPair(t)
	srv, cli := tc.parties(t, 2)
	runParties(t, sc, cc, func() (err error) {
		srows := rows
		if rows.Hidden {
			srows.Valid = nil
		}
		yb, sb, err = srv.Attention(bg(), sc, w, srows, xb)
		return err
	}, func() (err error) {
		ya, sa, err = cli.Attention(bg(), cc, plan, rows, xa)
		return err
	})
	return ya, yb, sa, sb
}

// attnRanges returns the largest |q/√dh|, |k| and |v| of layer l on x.
func attnRanges(tn *tiny, l int, x models.Matrix) (q, k, v float64) {
	ly := &tn.model.Server.Layers[l]
	scale := math.Sqrt(float64(tn.model.Config().HeadDim()))
	for m, lin := range []*models.Linear{&ly.Query, &ly.Key, &ly.Value} {
		y, _ := models.MulTransBNew(x, lin.Weight)
		for i, a := range y.Data {
			a = math.Abs(a + lin.Bias[i%y.Cols])
			switch m {
			case 0:
				q = max(q, a/scale)
			case 1:
				k = max(k, a)
			default:
				v = max(v, a)
			}
		}
	}
	return q, k, v
}

// TestAttention runs sentiment-tiny's attention stages (QKV, scores,
// softmax, A·V, the output projection, the residual, LayerNorm) on shares
// of the approximate forward's own inputs (16 tokens of a golden input)
// and compares the outputs and the importance scores with
// models.ServerModel.AttentionBlock on the same quantized input: every row
// valid and at the high degree, with public padding rows, with secret
// ones and two degree spans, in two degree spans, and with a single valid
// key (every probability 1, no softmax).
func TestAttention(t *testing.T) {
	tn := loadTiny(t)
	tc := newTestContext(t, tinyLiteral(t, tn, elementwise.InsecureElementwise11), tn.reg)
	f := tc.p.FracBits()
	r := rand.New(rand.NewPCG(9, 10))
	mixed := make([]approx.Degree, testRows)
	padded, cls := make([]bool, testRows), make([]bool, testRows)
	for i := range mixed {
		if i >= 6 {
			mixed[i] = approx.Low
		}
		padded[i] = i < testRows-4
	}
	cls[0] = true
	for l := range tn.model.Server.Layers {
		for _, dc := range []struct {
			name    string
			valid   []bool
			degs    []approx.Degree
			hidden  bool
			queries int // 0: every row; 1: the CLS row only (a last layer)
		}{
			{"high", nil, nil, false, 0}, {"padded", padded, nil, false, 0}, {"hidden", padded, mixed, true, 0},
			{"mixed", nil, mixed, false, 0}, {"one key", cls, nil, false, 0},
			{"cls only", nil, nil, false, 1}, {"cls only/hidden", padded, mixed, true, 1},
		} {
			t.Run(fmt.Sprintf("layer=%d/%s", l, dc.name), func(t *testing.T) {
				x := quantized(tn.input(t, l, testRows), f)
				valid := dc.valid
				if valid == nil {
					valid = make([]bool, testRows)
					for i := range valid {
						valid[i] = true
					}
				}
				want, probs, err := tn.model.Server.AttentionBlock(l, x, valid, modelDegrees(dc.degs), oneKey{tn.ap})
				if err != nil {
					t.Fatal(err)
				}
				q, k, v := attnRanges(tn, l, x)
				xa, xb := split(r, x.Data, f, 87)
				rows := Rows{Degrees: dc.degs, Valid: dc.valid, Hidden: dc.hidden, Queries: dc.queries}
				if dc.queries > 0 && dc.degs != nil {
					rows.Degrees = dc.degs[:dc.queries]
				}
				ya, yb, sa, sb := runAttention(t, tc, tn, l, rows, xa, xb, testRows)
				got := open(t, tc.p, ya, yb)
				if dc.queries > 0 {
					if len(got) != dc.queries*want.Cols || sa != nil || sb != nil {
						t.Fatalf("%d query rows: %d outputs (want %d), scores %d and %d (want none)", dc.queries, len(got), dc.queries*want.Cols, len(sa), len(sb))
					}
					d := maxDiff(got, want.Data[:len(got)])
					t.Logf("max error %.3g on the %d query rows", d, dc.queries)
					if d > tolerance {
						t.Fatalf("max error %.3g exceeds %g", d, tolerance)
					}
					return
				}
				d := maxDiff(got, want.Data)
				att := models.LayerAttention{Tokens: make([]int, testRows), Valid: valid, Probs: probs}
				ds := maxDiff(openAt(t, tc.p.ScoreFracBits(), sa, sb), att.Importance())
				t.Logf("max error %.3g, scores %.3g; |q/√dh| <= %.2f, |k| <= %.2f, |v| <= %.2f; output shares of up to %d bits, scores %d",
					d, ds, q, k, v, max(maxBits(ya), maxBits(yb)), max(maxBits(sa), maxBits(sb)))
				if d > tolerance || ds > scoreTolerance {
					t.Fatalf("max error %.3g (scores %.3g) exceeds %g (%g)", d, ds, tolerance, scoreTolerance)
				}
			})
		}
	}
}
