package engine

import (
	"errors"
	"fmt"

	"github.com/cipherprune/cipherprune/mpcbridge/layers"
)

// ErrSessionSpent means the next inference could pass one of the session's
// budgets of statistically masked values: the client opens a new session,
// with new keys, for it (docs/design.md, "Sessions").
var ErrSessionSpent = errors.New("engine: the session's mask budget is spent")

// maskCounts counts the values the server's parties mask, per budget: the
// outputs of the products by weights, of the softmax row sums, of the
// scores' and the context's shared products (mpcbridge/matmul,
// mpcbridge/sharedmul: rows x columns per product), and the coefficients
// of the elementwise calls' output ciphertexts (mpcbridge/elementwise: N
// per ciphertext). Each budget is 2^LogMaxValues of its parameters for the
// whole session, since the parties live as long as the session's keys.
type maskCounts [5]int64

// maskBudgets names the budgets, in maskCounts order.
var maskBudgets = [5]string{"products' outputs", "row sums' outputs", "scores' outputs", "context's outputs", "elementwise coefficients"}

func (a maskCounts) add(b maskCounts) maskCounts {
	for i := range a {
		a[i] += b[i]
	}
	return a
}

// maskLimits returns the session's budgets of p.
func maskLimits(p layers.Parameters) maskCounts {
	return maskCounts{
		1 << p.MatMul().LogMaxValues(), 1 << p.Sums().LogMaxValues(),
		1 << p.Scores().Literal().LogMaxValues, 1 << p.Context().Literal().LogMaxValues,
		1 << p.Elementwise().LogMaxValues(),
	}
}

// layerRows are the rows of one layer of an inference: In enter its
// attention stage (their padding the client's secret while Hidden), Kept
// its feed-forward stage.
type layerRows struct {
	in, kept int
	hidden   bool
}

// worstRows returns the rows of an inference of n rows that prunes
// nothing and keeps the padding secret throughout: every count below grows
// with the rows, so it masks the most of any inference of n rows.
func worstRows(layersN, n int) []layerRows {
	rows := make([]layerRows, layersN)
	for l := range rows {
		rows[l] = layerRows{in: n, kept: n, hidden: true}
	}
	return rows
}

// rowsOf returns the rows of an inference from its per-layer reports.
func rowsOf(rep []LayerReport) []layerRows {
	rows := make([]layerRows, len(rep))
	hidden := true
	for l, lr := range rep {
		rows[l] = layerRows{in: lr.In, kept: lr.Kept, hidden: hidden}
		hidden = hidden && !lr.Pruned
	}
	return rows
}

// inferenceMasks returns an upper bound of what an inference of pl with
// rows masks: mpcbridge/layers' calls per stage (engine_test's
// TestMaskCounts checks it against the parties' own counts). A polynomial
// on rows of two degrees is two calls, each rounded up to whole
// ciphertexts, hence the one ciphertext more per polynomial.
func inferenceMasks(pl sessionPlan, rows []layerRows) maskCounts {
	cfg := pl.cfg
	hid, heads, inter := int64(cfg.HiddenSize()), int64(cfg.NumHeads()), int64(cfg.IntermediateSize())
	ew := pl.layers.Elementwise()
	slots, coeffs := int64(ew.Slots()), int64(ew.Params().N())
	cts := func(v int64) int64 { return (v + slots - 1) / slots * coeffs }
	poly := func(v int64) int64 { return cts(v) + coeffs }
	var c maskCounts
	for l, lr := range rows {
		r, k := int64(lr.in), int64(lr.kept)
		q := r // query rows: the last layer's is CLS alone (encoder)
		last := l == len(rows)-1 && !pl.allRowsLast
		if last {
			q, k = 1, 1
		}
		c[0] += r*3*hid + q*hid + k*(inter+hid) // QKV, output projection; W1, W2
		if r > 1 {
			c[1] += q * heads                                        // softmax row sums
			c[2] += heads * q * r                                    // Q·Kᵀ per head
			c[3] += q * hid                                          // A·V per head
			c[4] += poly(heads*q*r) + poly(q*heads) + cts(heads*q*r) // exp, 1/Σ, normalization
			if lr.hidden {
				c[4] += cts(heads * q * r) // key mask
			}
		}
		if lr.hidden && !last {
			c[3] += r // importance over the valid queries
		}
		c[4] += pl.layers.NormMasks(int(q), int(hid))                 // attention's LayerNorm
		c[4] += poly(k*inter) + pl.layers.NormMasks(int(k), int(hid)) // GELU, the feed-forward's LayerNorm
	}
	c[0] += hid + int64(cfg.NumLabels()) // pooler, classifier
	c[4] += cts(hid)                     // tanh
	return c
}

// checkBudget returns an ErrSessionSpent error if spent and an inference
// of n rows (its worst case) could pass one of limits.
func checkBudget(pl sessionPlan, n int, spent, limits maskCounts) error {
	next := inferenceMasks(pl, worstRows(pl.cfg.NumLayers(), n))
	for i, v := range spent.add(next) {
		if v > limits[i] {
			return fmt.Errorf("%w: an inference at n = %d may mask %d more %s, %d of the session's %d are spent: open a new session", ErrSessionSpent, n, next[i], maskBudgets[i], spent[i], limits[i])
		}
	}
	return nil
}
