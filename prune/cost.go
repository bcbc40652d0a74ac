package prune

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"

	"github.com/cipherprune/cipherprune/models"
	"github.com/cipherprune/cipherprune/models/approx"
)

// CostModelLiteral gives the weights of the modelled protocol cost: what one
// elementary operation costs, per value it touches, in arbitrary units (the
// search only needs ratios). The analytic default counts multiplications; a
// measured model replaces the weights with per-value times from the ckks and
// mpcbridge benchmarks, so swapping models is a change of this file only.
type CostModelLiteral struct {
	// Source says where the weights come from (analytic, or the benchmark
	// command and machine that measured them).
	Source string `json:"source"`
	// PtMul is a plaintext-ciphertext multiply-accumulate (the matmuls'
	// inner step), per value.
	PtMul float64 `json:"pt_mul"`
	// CtMul is a ciphertext-ciphertext multiplication with
	// relinearization (products of activations, polynomial steps), per
	// value.
	CtMul float64 `json:"ct_mul"`
	// Bridge is moving one value through the bridge (HE to shares, shuffle,
	// back to HE), which happens every layer whether or not tokens are
	// pruned, since it also refreshes the ciphertexts.
	Bridge float64 `json:"bridge"`
	// Compare is one token's pair of garbled comparisons (keep and degree
	// bits), paid at every layer where thresholds are applied.
	Compare float64 `json:"compare"`
	// Attention, when not zero, is the measured cost of the attention's
	// token products (Q·Kᵀ and A·V with their rotations, masks, sums and
	// refreshes) per value of in²·d, replacing CtMul in that term: in a
	// packed engine those products carry rotations a bare ct-ct product
	// does not. Zero (the analytic model) counts them as CtMul.
	Attention float64 `json:"attention,omitempty"`
}

// AnalyticCostModel returns the default analytic weights: a ct-ct product
// costs ten plaintext products (it adds a key switch), and a bridged value
// twenty; one token's comparisons cost as much as 2,000 plaintext products.
func AnalyticCostModel() CostModelLiteral {
	return CostModelLiteral{
		Source: "analytic: operation counts, ct-ct product = 10 pt-ct products",
		PtMul:  1, CtMul: 10, Bridge: 20, Compare: 2000,
	}
}

// Validate checks that every weight is finite and non-negative.
func (c CostModelLiteral) Validate() error {
	for name, v := range map[string]float64{"pt_mul": c.PtMul, "ct_mul": c.CtMul, "bridge": c.Bridge, "compare": c.Compare, "attention": c.Attention} {
		if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
			return fmt.Errorf("cannot use cost model: %s = %v", name, v)
		}
	}
	return nil
}

// tokenProduct returns the weight of the attention's in²·d term.
func (c CostModelLiteral) tokenProduct() float64 {
	if c.Attention > 0 {
		return c.Attention
	}
	return c.CtMul
}

// LoadCostModel reads a cost model file.
func LoadCostModel(path string) (CostModelLiteral, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return CostModelLiteral{}, fmt.Errorf("cannot read cost model: %w", err)
	}
	if len(b) > maxFileSize {
		return CostModelLiteral{}, fmt.Errorf("cannot read cost model %s: too large", path)
	}
	var c CostModelLiteral
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return CostModelLiteral{}, fmt.Errorf("cannot parse cost model %s: %w", path, err)
	}
	return c, c.Validate()
}

// Coster computes the modelled cost of a schedule for one model: its shape,
// the multiplication counts of its approximation recipes and the weights.
type Coster struct {
	w                         CostModelLiteral
	layers, d, dff, heads     int
	expHi, expLo, geluHi      float64
	geluLo, recip, invsqrt, t float64
}

// NewCoster returns a Coster for model configuration cfg with the recipes of
// reg.
func NewCoster(w CostModelLiteral, cfg models.Config, reg *approx.Registry) (*Coster, error) {
	if err := w.Validate(); err != nil {
		return nil, err
	}
	muls := func(fn approx.Func, d approx.Degree) float64 { return float64(reg.Recipe(fn, d).Cost().CtCtMuls) }
	return &Coster{
		w: w, layers: cfg.NumLayers(), d: cfg.HiddenSize(), dff: cfg.IntermediateSize(), heads: cfg.NumHeads(),
		expHi: muls(approx.Exp, approx.High), expLo: muls(approx.Exp, approx.Low),
		geluHi: muls(approx.GELU, approx.High), geluLo: muls(approx.GELU, approx.Low),
		recip: muls(approx.Reciprocal, approx.High), invsqrt: muls(approx.InvSqrt, approx.High),
		t: muls(approx.Tanh, approx.High),
	}, nil
}

// LayerCost is the modelled cost of one layer given (possibly expected,
// hence real-valued) counts: in rows enter the attention block, of which
// inHigh use the high degree in softmax; kept rows continue through the
// feed-forward block, of which keptHigh at the high degree; compared says
// whether thresholds are applied (comparisons paid) at this layer.
func (c *Coster) LayerCost(in, inHigh, kept, keptHigh float64, compared bool) float64 {
	d, dff, h := float64(c.d), float64(c.dff), float64(c.heads)
	w := c.w
	cost := 4 * d * d * in * w.PtMul                                       // Q, K, V and output projections
	cost += 2 * in * in * d * w.tokenProduct()                             // Q·Kᵀ and A·V
	cost += h * in * (inHigh*c.expHi + (in-inHigh)*c.expLo + in) * w.CtMul // exp, then ·1/sum
	cost += h * in * c.recip * w.CtMul                                     // one reciprocal per row and head
	cost += in * (2*d + c.invsqrt) * w.CtMul                               // LayerNorm after attention
	cost += in * (d + 1) * w.Bridge                                        // rows and scores through the bridge
	if compared {
		cost += in * w.Compare
	}
	cost += 2 * d * dff * kept * w.PtMul                                   // FFN matmuls
	cost += dff * (keptHigh*c.geluHi + (kept-keptHigh)*c.geluLo) * w.CtMul // GELU
	cost += kept * (2*d + c.invsqrt) * w.CtMul                             // LayerNorm after FFN
	return cost
}

// HeadCost is the modelled cost of the pooler and classifier on CLS.
func (c *Coster) HeadCost() float64 {
	d := float64(c.d)
	return (d*d+2*d)*c.w.PtMul + d*c.t*c.w.CtMul
}

// Cost is the modelled cost of a whole inference with the given per-layer
// counts; compared says whether thresholds were applied (false for the
// unpruned engine and fixed schedules).
func (c *Coster) Cost(counts []LayerCounts, compared bool) (float64, error) {
	if len(counts) != c.layers {
		return 0, fmt.Errorf("cannot cost schedule: %d layers of counts, model has %d", len(counts), c.layers)
	}
	total := c.HeadCost()
	for l, lc := range counts {
		inHigh := float64(lc.In)
		if l > 0 {
			inHigh = float64(counts[l-1].High)
		}
		total += c.LayerCost(float64(lc.In), inHigh, float64(lc.Kept), float64(lc.High), compared)
	}
	return total, nil
}

// BaselineCounts returns the counts of the unpruned engine at padded length
// n: every token at the high degree through every layer, and only CLS after
// the last attention block (the exact rule every schedule applies).
func BaselineCounts(layers, n int) []LayerCounts {
	out := make([]LayerCounts, layers)
	for l := range out {
		out[l] = LayerCounts{In: n, Kept: n, High: n}
	}
	out[layers-1].Kept, out[layers-1].High = 1, 1
	return out
}

// CostPolynomial is the modelled cost of Coster.LayerCost written as a
// polynomial in one layer's counts, for tools that need the cost of
// expected (soft) counts, such as the threshold search of the training code:
//
//	layer cost = InSq·in² + InInHigh·in·inHigh + In·in + Kept·kept + KeptHigh·keptHigh
//	             (+ Compare·in where thresholds are compared)
//
// and a whole inference adds Head once. Attention is quadratic in the tokens
// entering a layer, everything else linear.
type CostPolynomial struct {
	// Source is the cost model's Source.
	Source string `json:"source"`
	// InSq multiplies in² (Q·Kᵀ, A·V, the exp polynomial at low degree and
	// the product by the reciprocal).
	InSq float64 `json:"in_sq"`
	// InInHigh multiplies in·inHigh (the extra exp cost of high-degree rows).
	InInHigh float64 `json:"in_in_high"`
	// In multiplies in (projections, reciprocals, LayerNorm, bridge).
	In float64 `json:"in"`
	// Compare multiplies in at layers where thresholds are compared.
	Compare float64 `json:"compare"`
	// Kept multiplies kept (FFN matmuls, low-degree GELU, LayerNorm).
	Kept float64 `json:"kept"`
	// KeptHigh multiplies keptHigh (the extra GELU cost of high-degree rows).
	KeptHigh float64 `json:"kept_high"`
	// Head is the pooler and classifier.
	Head float64 `json:"head"`
}

// Polynomial returns the coefficients of c's layer cost; Eval of the
// result equals LayerCost up to rounding.
func (c *Coster) Polynomial() CostPolynomial {
	d, dff, h := float64(c.d), float64(c.dff), float64(c.heads)
	w := c.w
	return CostPolynomial{
		Source:   w.Source,
		InSq:     2*d*w.tokenProduct() + h*(c.expLo+1)*w.CtMul,
		InInHigh: h * (c.expHi - c.expLo) * w.CtMul,
		In: 4*d*d*w.PtMul + h*c.recip*w.CtMul + (2*d+c.invsqrt)*w.CtMul +
			(d+1)*w.Bridge,
		Compare:  w.Compare,
		Kept:     2*d*dff*w.PtMul + (dff*c.geluLo+2*d+c.invsqrt)*w.CtMul,
		KeptHigh: dff * (c.geluHi - c.geluLo) * w.CtMul,
		Head:     c.HeadCost(),
	}
}

// Eval returns the polynomial's cost of one layer.
func (p CostPolynomial) Eval(in, inHigh, kept, keptHigh float64, compared bool) float64 {
	cost := p.InSq*in*in + p.InInHigh*in*inHigh + p.In*in + p.Kept*kept + p.KeptHigh*keptHigh
	if compared {
		cost += p.Compare * in
	}
	return cost
}
