package prune

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"

	"github.com/cipherprune/cipherprune/models"
	"github.com/cipherprune/cipherprune/models/approx"
)

// CostFormat names the layout of a cost model file (CostModelLiteral).
// Version 2 holds the cost of a layer's stages as functions of its rows;
// version 1 (no "format" field) held per-operation weights of the
// rotation-based protocol 7 and is refused: its figures do not describe
// the engine any more.
const CostFormat = "cipherprune-cost/v2"

// CostModelLiteral is the modelled protocol cost of one model's shape: what
// each stage of an encoder layer costs as a function of the rows it
// handles, in arbitrary units (the search only needs ratios; a measured
// model is in seconds). With in rows entering a layer, inHigh of them at
// the high degree, kept rows surviving its pruning step and keptHigh of
// those at the high degree, one layer costs
//
//	Layer + AttentionRow·in + AttentionRowSq·in² + AttentionHighRowSq·in·inHigh
//	      + FFNRow·kept + FFNHighRow·keptHigh
//	      (+ AttentionSplit if inHigh < in) (+ FFNSplit if keptHigh < kept)
//	      (+ Step + StepRow·in where a pruning step runs)
//
// and a whole inference adds Head once. Layer is the layer's floor, the
// latency of its calls whatever the rows (what dominates a small model on
// the rotation-free engine); the attention stage is quadratic in its rows
// (the shared products Q·Kᵀ and A·V, the exp on in² values), everything
// else linear. A stage whose rows have both degrees runs each polynomial
// once per degree (mpcbridge/layers: one call per run of rows), which
// costs the Split floors.
type CostModelLiteral struct {
	// Format is CostFormat.
	Format string `json:"format"`
	// Source says where the figures come from (analytic, or the command,
	// preset and machine that measured them).
	Source string `json:"source"`
	// Shape is the model shape the figures describe; NewCoster refuses
	// another model's.
	Shape CostShape `json:"shape"`
	// Layer is what every encoder layer costs whatever its rows.
	Layer float64 `json:"layer"`
	// AttentionRow and AttentionRowSq multiply the rows entering the
	// attention stage and their square.
	AttentionRow   float64 `json:"attention_row"`
	AttentionRowSq float64 `json:"attention_row_sq"`
	// AttentionHighRowSq multiplies in·inHigh: the exp's extra cost at the
	// high degree. A measured model leaves it zero and charges the high
	// degree's extra to FFNHighRow (the two cannot be told apart from whole
	// layers: after a pruning step inHigh of the next layer is keptHigh).
	AttentionHighRowSq float64 `json:"attention_high_row_sq,omitempty"`
	// FFNRow multiplies the kept rows (the feed-forward stage and its
	// LayerNorm); FFNHighRow the kept rows at the high degree (their
	// polynomials' extra cost).
	FFNRow     float64 `json:"ffn_row"`
	FFNHighRow float64 `json:"ffn_high_row"`
	// AttentionSplit and FFNSplit are what a stage pays when its rows have
	// both degrees (inHigh < in for the attention stage, keptHigh < kept
	// for the feed-forward stage): its polynomials' second calls.
	AttentionSplit float64 `json:"attention_split"`
	FFNSplit       float64 `json:"ffn_split"`
	// Step and StepRow are a pruning step's floor and its cost per row
	// entering it, paid at every layer where thresholds are compared.
	Step    float64 `json:"step"`
	StepRow float64 `json:"step_row"`
	// Head is the pooler, the classifier and the opening of the result.
	Head float64 `json:"head"`
}

// CostShape is the shape of the model a cost model describes.
type CostShape struct {
	Hidden       int `json:"hidden"`
	Heads        int `json:"heads"`
	Intermediate int `json:"intermediate"`
}

// ShapeOf returns the cost shape of model configuration cfg.
func ShapeOf(cfg models.Config) CostShape {
	return CostShape{Hidden: cfg.HiddenSize(), Heads: cfg.NumHeads(), Intermediate: cfg.IntermediateSize()}
}

// Analytic operation weights: a ct-ct product costs ten plaintext products
// (it adds a key switch), a value through the bridge twenty, and one
// token's comparisons 2,000.
const (
	analyticPtMul   = 1
	analyticCtMul   = 10
	analyticBridge  = 20
	analyticCompare = 2000
)

// AnalyticCostModel returns the fallback cost model of configuration cfg
// with the recipes of reg: operation counts (plaintext multiply-accumulates
// of the matmuls, ciphertext products of the polynomials, values through
// the bridge, comparisons) weighted by fixed ratios, with no floor.
func AnalyticCostModel(cfg models.Config, reg *approx.Registry) CostModelLiteral {
	d, dff, h := float64(cfg.HiddenSize()), float64(cfg.IntermediateSize()), float64(cfg.NumHeads())
	muls := func(fn approx.Func, deg approx.Degree) float64 { return float64(reg.Recipe(fn, deg).Cost().CtCtMuls) }
	expHi, expLo := muls(approx.Exp, approx.High), muls(approx.Exp, approx.Low)
	geluHi, geluLo := muls(approx.GELU, approx.High), muls(approx.GELU, approx.Low)
	recip, invsqrt, tanh := muls(approx.Reciprocal, approx.High), muls(approx.InvSqrt, approx.High), muls(approx.Tanh, approx.High)
	const pt, ct = analyticPtMul, analyticCtMul
	return CostModelLiteral{
		Format: CostFormat,
		Source: "analytic: operation counts, ct-ct product = 10 pt-ct products",
		Shape:  ShapeOf(cfg),
		// Q·Kᵀ and A·V (2·in²·d products), the exp at the low degree and
		// the product by 1/Σ on in² values per head.
		AttentionRowSq:     (2*d + h*(expLo+1)) * ct,
		AttentionHighRowSq: h * (expHi - expLo) * ct,
		// Q, K, V and output projections, a reciprocal per row and head,
		// LayerNorm, the row and its score through the bridge.
		AttentionRow: 4*d*d*pt + (h*recip+2*d+invsqrt)*ct + (d+1)*analyticBridge,
		// The FFN matmuls, GELU at the low degree, LayerNorm.
		FFNRow:     2*d*dff*pt + (dff*geluLo+2*d+invsqrt)*ct,
		FFNHighRow: dff * (geluHi - geluLo) * ct,
		StepRow:    analyticCompare,
		Head:       (d*d+2*d)*pt + d*tanh*ct,
	}
}

// Validate checks the format and that every figure is finite and
// non-negative.
func (c CostModelLiteral) Validate() error {
	if c.Format != CostFormat {
		return fmt.Errorf("cannot use cost model: format %q, want %q", c.Format, CostFormat)
	}
	for _, f := range []struct {
		name string
		v    float64
	}{
		{"layer", c.Layer}, {"attention_row", c.AttentionRow}, {"attention_row_sq", c.AttentionRowSq},
		{"attention_high_row_sq", c.AttentionHighRowSq}, {"ffn_row", c.FFNRow}, {"ffn_high_row", c.FFNHighRow},
		{"attention_split", c.AttentionSplit}, {"ffn_split", c.FFNSplit},
		{"step", c.Step}, {"step_row", c.StepRow}, {"head", c.Head},
	} {
		if math.IsNaN(f.v) || math.IsInf(f.v, 0) || f.v < 0 {
			return fmt.Errorf("cannot use cost model: %s = %v", f.name, f.v)
		}
	}
	if s := c.Shape; s.Hidden <= 0 || s.Heads <= 0 || s.Intermediate <= 0 {
		return fmt.Errorf("cannot use cost model: shape %+v", s)
	}
	return nil
}

// ErrOldCostModel means a cost model file holds version 1's per-operation
// weights (pt_mul, ct_mul, ...), measured on the rotation-based protocol 7.
var ErrOldCostModel = errors.New("cost model of format v1 (per-operation weights of protocol 7): re-measure it with `cipherprune costmodel`")

// LoadCostModel reads and validates a cost model file.
func LoadCostModel(path string) (CostModelLiteral, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return CostModelLiteral{}, fmt.Errorf("cannot read cost model: %w", err)
	}
	if len(b) > maxFileSize {
		return CostModelLiteral{}, fmt.Errorf("cannot read cost model %s: too large", path)
	}
	return ParseCostModel(b)
}

// ParseCostModel decodes and validates a cost model file's bytes.
func ParseCostModel(b []byte) (CostModelLiteral, error) {
	var probe struct {
		Format *string          `json:"format"`
		PtMul  *json.RawMessage `json:"pt_mul"`
	}
	if err := json.Unmarshal(b, &probe); err != nil {
		return CostModelLiteral{}, fmt.Errorf("cannot parse cost model: %w", err)
	}
	if probe.Format == nil && probe.PtMul != nil {
		return CostModelLiteral{}, fmt.Errorf("cannot parse cost model: %w", ErrOldCostModel)
	}
	var c CostModelLiteral
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return CostModelLiteral{}, fmt.Errorf("cannot parse cost model: %w", err)
	}
	return c, c.Validate()
}

// Coster computes the modelled cost of a schedule for one model.
type Coster struct {
	w      CostModelLiteral
	layers int
}

// NewCoster returns a Coster for model configuration cfg; w must describe
// cfg's shape.
func NewCoster(w CostModelLiteral, cfg models.Config) (*Coster, error) {
	if err := w.Validate(); err != nil {
		return nil, err
	}
	if s := ShapeOf(cfg); w.Shape != s {
		return nil, fmt.Errorf("cannot use cost model (%s): it describes shape %+v, the model is %+v", w.Source, w.Shape, s)
	}
	return &Coster{w: w, layers: cfg.NumLayers()}, nil
}

// Model returns the cost model's figures.
func (c *Coster) Model() CostModelLiteral { return c.w }

// LayerCost is the modelled cost of one layer given (possibly expected,
// hence real-valued) counts: in rows enter the attention block, of which
// inHigh use the high degree in softmax; kept rows continue through the
// feed-forward block, of which keptHigh at the high degree; compared says
// whether thresholds are applied (a pruning step runs) at this layer.
func (c *Coster) LayerCost(in, inHigh, kept, keptHigh float64, compared bool) float64 {
	return c.w.Layer + c.Polynomial().Eval(in, inHigh, kept, keptHigh, compared)
}

// HeadCost is the modelled cost of the pooler, classifier and opening.
func (c *Coster) HeadCost() float64 { return c.w.Head }

// Cost is the modelled cost of a whole inference with the given per-layer
// counts; compared says whether thresholds were applied (false for the
// unpruned engine and fixed schedules).
func (c *Coster) Cost(counts []LayerCounts, compared bool) (float64, error) {
	if len(counts) != c.layers {
		return 0, fmt.Errorf("cannot cost schedule: %d layers of counts, model has %d", len(counts), c.layers)
	}
	total := c.HeadCost()
	p := c.Polynomial()
	for l, lc := range counts {
		inHigh := float64(lc.In)
		if l > 0 {
			inHigh = float64(counts[l-1].High)
		}
		if l == len(counts)-1 {
			total += c.w.Layer + p.EvalLast(float64(lc.In), float64(lc.Kept), float64(lc.High))
			continue
		}
		total += c.LayerCost(float64(lc.In), inHigh, float64(lc.Kept), float64(lc.High), compared)
	}
	return total, nil
}

// BaselineCounts returns the counts of the unpruned engine at padded length
// n: every token at the high degree through every layer, and only CLS after
// the last attention block (the plaintext forward's rule, which every
// schedule applies, as the engine does since protocol 13; Cost charges
// that layer by CostPolynomial.EvalLast).
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
//	             (+ Compare·in + CompareLayer where thresholds are compared)
//	             (+ InSplit if inHigh < in) (+ KeptSplit if keptHigh < kept)
//	last layer = (InSq + InInHigh + In)·in + Kept·kept + KeptHigh·keptHigh
//
// and a whole inference adds Head once. Every layer's floor
// (CostModelLiteral.Layer) is in Head: each inference pays it once per
// layer whatever the counts. CompareLayer, InSplit and KeptSplit are not
// polynomial terms; a reader that knows only the polynomial's fields
// leaves them out (they are zero in the analytic model).
type CostPolynomial struct {
	// Source is the cost model's Source.
	Source string `json:"source"`
	// InSq multiplies in² (CostModelLiteral.AttentionRowSq).
	InSq float64 `json:"in_sq"`
	// InInHigh multiplies in·inHigh (AttentionHighRowSq).
	InInHigh float64 `json:"in_in_high"`
	// In multiplies in (AttentionRow).
	In float64 `json:"in"`
	// Compare multiplies in at layers where thresholds are compared
	// (StepRow).
	Compare float64 `json:"compare"`
	// CompareLayer is added once at each layer where thresholds are
	// compared (Step, a pruning step's floor).
	CompareLayer float64 `json:"compare_layer,omitempty"`
	// InSplit and KeptSplit are added when the attention stage's or the
	// feed-forward stage's rows have both degrees (AttentionSplit,
	// FFNSplit).
	InSplit   float64 `json:"in_split,omitempty"`
	KeptSplit float64 `json:"kept_split,omitempty"`
	// Kept multiplies kept (FFNRow).
	Kept float64 `json:"kept"`
	// KeptHigh multiplies keptHigh (FFNHighRow).
	KeptHigh float64 `json:"kept_high"`
	// Head is the pooler, classifier and opening plus every layer's floor.
	Head float64 `json:"head"`
}

// Polynomial returns the coefficients of c's layer cost: Eval of the
// result is LayerCost less the layer's floor, which Head carries instead.
func (c *Coster) Polynomial() CostPolynomial {
	w := c.w
	return CostPolynomial{
		Source:       w.Source,
		InSq:         w.AttentionRowSq,
		InInHigh:     w.AttentionHighRowSq,
		In:           w.AttentionRow,
		Compare:      w.StepRow,
		CompareLayer: w.Step,
		InSplit:      w.AttentionSplit,
		KeptSplit:    w.FFNSplit,
		Kept:         w.FFNRow,
		KeptHigh:     w.FFNHighRow,
		Head:         w.Head + float64(c.layers)*w.Layer,
	}
}

// EvalLast returns the polynomial's cost of a model's last layer, its floor
// excepted: the engine computes the CLS row alone there (engine protocol
// 13), one query over in keys at the high degree, so the attention's
// row-squared terms count in·1, and the feed-forward stage has kept rows
// (1, CLS), keptHigh of them high; no thresholds are compared and no
// stage mixes degrees.
func (p CostPolynomial) EvalLast(in, kept, keptHigh float64) float64 {
	return (p.InSq+p.InInHigh+p.In)*in + p.Kept*kept + p.KeptHigh*keptHigh
}

// Eval returns the polynomial's cost of one layer, its floor excepted.
func (p CostPolynomial) Eval(in, inHigh, kept, keptHigh float64, compared bool) float64 {
	cost := p.InSq*in*in + p.InInHigh*in*inHigh + p.In*in + p.Kept*kept + p.KeptHigh*keptHigh
	if compared {
		cost += p.Compare*in + p.CompareLayer
	}
	if inHigh < in {
		cost += p.InSplit
	}
	if keptHigh < kept {
		cost += p.KeptSplit
	}
	return cost
}
