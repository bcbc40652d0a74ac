package layers

import (
	"errors"
	"fmt"
	"math"
	"math/bits"

	"github.com/cipherprune/cipherprune/ckks/polymat"
	"github.com/cipherprune/cipherprune/models/approx"
	"github.com/cipherprune/cipherprune/mpcbridge/elementwise"
	"github.com/cipherprune/cipherprune/mpcbridge/matmul"
	"github.com/cipherprune/cipherprune/mpcbridge/sharedmul"
)

// DefaultMaxWeightBytes is the default memory budget of one matrix's
// pre-encoded weights (ParametersLiteral.MaxWeightBytes).
const DefaultMaxWeightBytes = 1280 << 20

// ParametersLiteral is the unchecked description of the stages' protocols;
// NewParameters validates it. Everything in it is public.
type ParametersLiteral struct {
	// Ring is the ring of the products (ckks/polymat; LogN 0 means
	// polymat.N12).
	Ring polymat.ParametersLiteral
	// MatMul is the literal of every product of a stage (mpcbridge/matmul):
	// its LogBound must bound every product's input (the FFN's h and
	// GELU's outputs) and its LogBoundOut every product's output before the
	// bias (LogBoundOut helps the server choose it). One literal for all
	// products means one matmul.Server, whose count of masked outputs
	// covers the whole session (matmul.ParametersLiteral.LogMaxValues).
	MatMul matmul.ParametersLiteral
	// Elementwise is the literal of the polynomials and products in slots
	// (mpcbridge/elementwise). Its FracBits must equal MatMul's.
	Elementwise elementwise.ParametersLiteral
	// MaxWeightBytes bounds the pre-encoded weights of one matrix, which
	// sets the products' block shapes (matmul.Parameters.ChooseBlock; 0:
	// DefaultMaxWeightBytes).
	MaxWeightBytes int64
	// WeightBytesPerEntry, when positive, also bounds a matrix's
	// pre-encoded weights by this many bytes per entry (in·out of them; at
	// least 1 MiB a matrix): small models then hold small encodings,
	// whatever MaxWeightBytes.
	WeightBytesPerEntry int64
	// SharedRing is the ring of attention's products of two shared
	// matrices (mpcbridge/sharedmul; LogN 0 means polymat.N13).
	SharedRing polymat.ParametersLiteral
	// Scores is the literal of the scores S = (Q/√dh)·Kᵀ: its LogBoundX
	// bounds every scaled query entry, LogBoundY every key entry (both
	// public promises, no default: the sum is at most 8 at dh = 64 on
	// polymat.N13).
	Scores sharedmul.ParametersLiteral
	// Context is the literal of A·V: LogBoundX must be 0 (probabilities),
	// LogBoundY bounds every value entry.
	Context sharedmul.ParametersLiteral
	// SoftmaxShift is the constant the server subtracts from every score
	// before exp (models.Approximate.SoftmaxShift; the client's is unused).
	SoftmaxShift float64
	// NormLogBound bounds LayerNorm's centred inputs, |x - mean| <=
	// 2^NormLogBound (0: half the elementwise LogBound, the most the
	// variance's Square holds as it is). Above that each party divides its
	// share of x - mean by 2^k before Square and multiplies its share of
	// the variance by 4^k, k = NormLogBound - LogBound/2 (one unit of
	// 2^-F of rounding on the scaled value).
	NormLogBound int
	// OneRecipe lists the functions whose two degrees are one recipe: a
	// call takes all their rows at once, whatever their degrees. A server
	// derives it from its registry (NewParameters ignores this field); a
	// client takes the server's.
	OneRecipe []approx.Func
	// SumsLogBound bounds every exponential of the softmax, the input of
	// its row sums: |e| <= 2^SumsLogBound (0: derived from the registry's
	// exp interval, SumsLogBoundFor; a client, which holds no registry,
	// takes the server's).
	SumsLogBound int
}

// MaxTokens bounds the rows of an attention stage: the softmax row sums
// add at most MaxTokens values (the sums' output bound).
const MaxTokens = 1024

// Parameters are validated, immutable parameters of the stages. The
// server's also bind the approximation registry it evaluates, which stays
// secret; a client's carry only the levels its inputs are encrypted at
// (PolyLevels), which is all it needs of the registry. Everything else is
// public.
type Parameters struct {
	lit            ParametersLiteral
	oneRecipe      map[approx.Func]bool
	mm             matmul.Parameters
	ew             elementwise.Parameters
	scores, values sharedmul.Parameters
	sums           matmul.Parameters
	reg            *approx.Registry // nil for a client
	levels         PolyLevels
}

// PolyLevels gives, for every function of a registry and each degree, the
// level at which the client encrypts a polynomial's input
// (elementwise.Parameters.PolyLevel): the public trace of the server's
// registry.
type PolyLevels map[approx.Func]map[approx.Degree]int

// NewParameters validates lit for a server and binds its registry reg
// (approx.Default() if nil).
func NewParameters(lit ParametersLiteral, reg *approx.Registry) (Parameters, error) {
	if reg == nil {
		reg = approx.Default()
	}
	if lit.SumsLogBound == 0 {
		lit.SumsLogBound = SumsLogBoundFor(reg)
	}
	lit.OneRecipe = nil
	for _, fn := range approx.Funcs() {
		if f := reg.Literal().Func(fn); f.Variant(approx.Low) == f.Variant(approx.High) {
			lit.OneRecipe = append(lit.OneRecipe, fn)
		}
	}
	levels := PolyLevels{}
	p, err := newParameters(lit, func(ew elementwise.Parameters) error {
		for _, fn := range approx.Funcs() {
			levels[fn] = map[approx.Degree]int{}
			for _, d := range approx.Degrees() {
				l, err := ew.PolyLevel(reg, fn, d)
				if err != nil {
					return err
				}
				levels[fn][d] = l
			}
		}
		return nil
	})
	if err != nil {
		return Parameters{}, fmt.Errorf("cannot NewParameters: %w", err)
	}
	p.reg, p.levels = reg, levels
	return p, nil
}

// NewClientParameters validates lit for a client with the server's
// levels (the server's Parameters.PolyLevels) and its SumsLogBound set.
func NewClientParameters(lit ParametersLiteral, levels PolyLevels) (Parameters, error) {
	if lit.SumsLogBound == 0 {
		return Parameters{}, errors.New("cannot NewClientParameters: no SumsLogBound (the server's)")
	}
	p, err := newParameters(lit, func(ew elementwise.Parameters) error {
		lo, hi := ew.MulLevel()+1, ew.Params().MaxLevel()
		for _, fn := range approx.Funcs() {
			for _, d := range approx.Degrees() {
				if l, ok := levels[fn][d]; !ok || l < lo || l > hi {
					return fmt.Errorf("level of %s/%s: %d, want one in [%d, %d]", fn, d, l, lo, hi)
				}
			}
		}
		return nil
	})
	if err != nil {
		return Parameters{}, fmt.Errorf("cannot NewClientParameters: %w", err)
	}
	p.levels = levels
	return p, nil
}

// SumsLogBoundFor returns the bound of the softmax's exponentials on reg:
// ceil(log2(1.05·e^b)) for exp's interval [a, b] (the 5% covers the
// polynomial's error).
func SumsLogBoundFor(reg *approx.Registry) int {
	_, b := reg.Interval(approx.Exp)
	return int(math.Ceil(math.Log2(1.05 * math.Exp(b))))
}

// newParameters checks lit and the levels (check) on its elementwise
// parameters.
func newParameters(lit ParametersLiteral, check func(elementwise.Parameters) error) (Parameters, error) {
	if lit.Ring.LogN == 0 {
		lit.Ring = polymat.N12
	}
	if lit.MaxWeightBytes == 0 {
		lit.MaxWeightBytes = DefaultMaxWeightBytes
	}
	if lit.MaxWeightBytes < 0 || lit.WeightBytesPerEntry < 0 {
		return Parameters{}, fmt.Errorf("MaxWeightBytes %d or WeightBytesPerEntry %d < 0", lit.MaxWeightBytes, lit.WeightBytesPerEntry)
	}
	ring, err := polymat.NewParametersFromLiteral(lit.Ring)
	if err != nil {
		return Parameters{}, err
	}
	mm, err := matmul.NewParameters(ring, lit.MatMul)
	if err != nil {
		return Parameters{}, err
	}
	ew, err := elementwise.NewParameters(lit.Elementwise)
	if err != nil {
		return Parameters{}, err
	}
	if mm.FracBits() != ew.FracBits() {
		return Parameters{}, fmt.Errorf("the products' F = %d, the elementwise calls' F = %d: shares pass between them unchanged, so they must agree", mm.FracBits(), ew.FracBits())
	}
	p := Parameters{mm: mm, ew: ew, oneRecipe: map[approx.Func]bool{}}
	for _, fn := range lit.OneRecipe {
		if !fn.Valid() {
			return Parameters{}, fmt.Errorf("OneRecipe holds an invalid function %d", fn)
		}
		p.oneRecipe[fn] = true
	}
	if err := p.attention(&lit); err != nil {
		return Parameters{}, err
	}
	p.lit = lit
	p.lit.MatMul = mm.Literal()
	p.lit.Elementwise = ew.Literal()
	if err := check(ew); err != nil {
		return Parameters{}, err
	}
	if p.lit.NormLogBound == 0 {
		p.lit.NormLogBound = ew.LogBound() / 2
	}
	if p.lit.NormLogBound < ew.LogBound()/2 || p.lit.NormLogBound > 30 {
		return Parameters{}, fmt.Errorf("NormLogBound %d not in [%d, 30]", p.lit.NormLogBound, ew.LogBound()/2)
	}
	if _, err := ew.MulScaledLevel(); err != nil {
		return Parameters{}, err
	}
	return p, nil
}

// attention derives the parameters of attention's products: the two
// shared products on lit.SharedRing, and the softmax row sums, a product
// by public all-ones weights with the products' F and λ whose input bound
// is lit.SumsLogBound.
func (p *Parameters) attention(lit *ParametersLiteral) error {
	if lit.SharedRing.LogN == 0 {
		lit.SharedRing = polymat.N13
	}
	if math.IsNaN(lit.SoftmaxShift) || math.IsInf(lit.SoftmaxShift, 0) {
		return fmt.Errorf("softmax shift %v not finite", lit.SoftmaxShift)
	}
	if lit.Context.LogBoundX != 0 {
		return fmt.Errorf("Context.LogBoundX = %d, want 0: its left operand holds probabilities", lit.Context.LogBoundX)
	}
	ring, err := polymat.NewParametersFromLiteral(lit.SharedRing)
	if err != nil {
		return fmt.Errorf("shared ring: %w", err)
	}
	f := p.mm.FracBits()
	for _, sp := range []struct {
		dst *sharedmul.Parameters
		lit *sharedmul.ParametersLiteral
	}{{&p.scores, &lit.Scores}, {&p.values, &lit.Context}} {
		if sp.lit.FracBits == 0 {
			sp.lit.FracBits = f
		}
		if *sp.dst, err = sharedmul.NewParameters(ring, *sp.lit); err != nil {
			return err
		}
		*sp.lit = sp.dst.Literal()
		if sp.lit.FracBits != f {
			return fmt.Errorf("shared products with F = %d, the products' F = %d", sp.lit.FracBits, f)
		}
	}
	eb := lit.SumsLogBound
	if eb < 1 || eb > 30 {
		return fmt.Errorf("SumsLogBound %d not in [1, 30]", eb)
	}
	sums := p.mm.Literal()
	sums.LogBound, sums.LogBoundOut, sums.WeightFracBits = eb, eb+bits.Len(MaxTokens-1), 8 // the weights are 1
	if p.sums, err = matmul.NewParameters(p.mm.Ring(), sums); err != nil {
		return fmt.Errorf("softmax sums: %w", err)
	}
	return nil
}

// Literal returns the literal of p with every default filled in.
func (p Parameters) Literal() ParametersLiteral { return p.lit }

// MatMul returns the parameters of the products.
func (p Parameters) MatMul() matmul.Parameters { return p.mm }

// Elementwise returns the parameters of the calls in slots.
func (p Parameters) Elementwise() elementwise.Parameters { return p.ew }

// normShift returns k: LayerNorm's centred values are divided by 2^k
// before the variance's Square.
func (p Parameters) normShift() int { return p.lit.NormLogBound - p.ew.LogBound()/2 }

// Scores returns the parameters of the products Q·Kᵀ.
func (p Parameters) Scores() sharedmul.Parameters { return p.scores }

// Context returns the parameters of the products A·V.
func (p Parameters) Context() sharedmul.Parameters { return p.values }

// Sums returns the parameters of the softmax row sums (a product by
// public all-ones weights).
func (p Parameters) Sums() matmul.Parameters { return p.sums }

// Registry returns the server's approximation registry (nil for a
// client's Parameters).
func (p Parameters) Registry() *approx.Registry { return p.reg }

// PolyLevels returns the levels of the polynomials' inputs (a copy).
func (p Parameters) PolyLevels() PolyLevels {
	out := PolyLevels{}
	for fn, m := range p.levels {
		out[fn] = map[approx.Degree]int{}
		for d, l := range m {
			out[fn][d] = l
		}
	}
	return out
}

// FracBits returns F, the fractional bits of every share.
func (p Parameters) FracBits() int { return p.mm.FracBits() }

// ScoreExtraBits is how many fractional bits the importance scores carry
// beyond F: a score is about 1/n, and θ about 1e-3, so at F = 16 bits a
// score would be rounded to 1.5% of θ; at F + 4 the rounding is 0.1% of it
// and below the error of the quantized query and key weights. Scores are
// at most 1, so 2^(F+4)·score fits any share of LogBound >= 4.
const ScoreExtraBits = 4

// ScoreFracBits returns F + ScoreExtraBits, the fractional bits of the
// scores' shares (Server.Attention).
func (p Parameters) ScoreFracBits() int { return p.FracBits() + ScoreExtraBits }

// FFNShape is the public shape of a feed-forward stage: Rows is the most
// rows a call may have (the blocks are chosen for it), Hidden and
// Intermediate the widths of h and of W1·h.
type FFNShape struct {
	Rows, Hidden, Intermediate int
}

// FFNPlan is the public plan of a feed-forward stage: its shape and the
// blocks of its two products, which both parties derive from Parameters
// (PlanFFN) and the server's weights are encoded for.
type FFNPlan struct {
	FFNShape
	// Up is the block of h·W1 (Rows x Hidden by Hidden x Intermediate),
	// Down of g·W2 (Rows x Intermediate by Intermediate x Hidden).
	Up, Down polymat.Block
}

// PlanFFN chooses the blocks of both products for s within the weight
// budget (matmul.Parameters.ChooseBlock).
func (p Parameters) PlanFFN(s FFNShape) (FFNPlan, error) {
	if s.Rows < 1 || s.Hidden < 1 || s.Intermediate < 1 {
		return FFNPlan{}, fmt.Errorf("cannot PlanFFN: shape %+v has a dimension below 1", s)
	}
	up, err := p.chooseBlock(polymat.Dims{Rows: s.Rows, In: s.Hidden, Out: s.Intermediate})
	if err != nil {
		return FFNPlan{}, fmt.Errorf("cannot PlanFFN: %w", err)
	}
	down, err := p.chooseBlock(polymat.Dims{Rows: s.Rows, In: s.Intermediate, Out: s.Hidden})
	if err != nil {
		return FFNPlan{}, fmt.Errorf("cannot PlanFFN: %w", err)
	}
	return FFNPlan{FFNShape: s, Up: up.Block, Down: down.Block}, nil
}

// minWeightBytes is the least budget WeightBytesPerEntry gives a matrix:
// a few plaintexts, so that a small matrix (a classifier) has a block.
const minWeightBytes = 1 << 20

// chooseBlock returns the block of d within the weights' budget
// (matmul.Parameters.ChooseBlock).
func (p Parameters) chooseBlock(d polymat.Dims) (polymat.Cost, error) {
	budget := p.lit.MaxWeightBytes
	if e := p.lit.WeightBytesPerEntry; e > 0 {
		budget = min(budget, max(e*int64(d.In)*int64(d.Out), minWeightBytes))
	}
	return p.mm.ChooseBlock(d, budget)
}

// layouts returns the layouts of both products for n rows (1 <= n <=
// Rows): the plan's D1 and D2 (the weights' encoding), D0 balanced over
// ceil(n/D0) row blocks.
func (pl FFNPlan) layouts(ring polymat.Parameters, n int) (up, down polymat.Layout, err error) {
	if n < 1 || n > pl.Rows {
		return up, down, fmt.Errorf("%d rows, the plan allows 1 to %d", n, pl.Rows)
	}
	if up, err = balanced(ring, n, pl.Hidden, pl.Intermediate, pl.Up); err != nil {
		return up, down, err
	}
	down, err = balanced(ring, n, pl.Intermediate, pl.Hidden, pl.Down)
	return up, down, err
}

// LogBoundOut returns the smallest By with 2^B·Σ_k |W[k,c]| <= 2^By for
// every column c of w (in x out, row-major) and B = logBound: the output
// bound of matmul.ParametersLiteral a server derives from its weights and
// publishes. (matmul.NewWeights checks it on the quantized weights, which
// may need one more bit when a column sum is within rounding of a power of
// two.)
func LogBoundOut(logBound int, w []float64, in, out int) (int, error) {
	if in < 1 || out < 1 || len(w) != in*out {
		return 0, fmt.Errorf("cannot LogBoundOut: %d weights for %dx%d", len(w), in, out)
	}
	var worst float64
	for c := 0; c < out; c++ {
		var s float64
		for k := 0; k < in; k++ {
			s += math.Abs(w[k*out+c])
		}
		worst = max(worst, s)
	}
	if math.IsNaN(worst) || math.IsInf(worst, 0) {
		return 0, errors.New("cannot LogBoundOut: weights not finite")
	}
	if worst == 0 {
		return logBound, nil
	}
	return logBound + int(math.Ceil(math.Log2(worst))), nil
}
