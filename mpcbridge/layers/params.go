package layers

import (
	"errors"
	"fmt"
	"math"

	"github.com/cipherprune/cipherprune/ckks/polymat"
	"github.com/cipherprune/cipherprune/models/approx"
	"github.com/cipherprune/cipherprune/mpcbridge/elementwise"
	"github.com/cipherprune/cipherprune/mpcbridge/matmul"
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
}

// Parameters are validated, immutable parameters of the stages, with the
// approximation registry both parties evaluate (public: the client needs
// its depths for the levels it encrypts at). All of them are public.
type Parameters struct {
	lit ParametersLiteral
	mm  matmul.Parameters
	ew  elementwise.Parameters
	reg *approx.Registry
}

// NewParameters validates lit and binds the registry reg (approx.Default()
// if nil).
func NewParameters(lit ParametersLiteral, reg *approx.Registry) (Parameters, error) {
	if lit.Ring.LogN == 0 {
		lit.Ring = polymat.N12
	}
	if lit.MaxWeightBytes == 0 {
		lit.MaxWeightBytes = DefaultMaxWeightBytes
	}
	if lit.MaxWeightBytes < 0 {
		return Parameters{}, fmt.Errorf("cannot NewParameters: MaxWeightBytes %d < 0", lit.MaxWeightBytes)
	}
	if reg == nil {
		reg = approx.Default()
	}
	ring, err := polymat.NewParametersFromLiteral(lit.Ring)
	if err != nil {
		return Parameters{}, fmt.Errorf("cannot NewParameters: %w", err)
	}
	mm, err := matmul.NewParameters(ring, lit.MatMul)
	if err != nil {
		return Parameters{}, fmt.Errorf("cannot NewParameters: %w", err)
	}
	ew, err := elementwise.NewParameters(lit.Elementwise)
	if err != nil {
		return Parameters{}, fmt.Errorf("cannot NewParameters: %w", err)
	}
	if mm.FracBits() != ew.FracBits() {
		return Parameters{}, fmt.Errorf("cannot NewParameters: the products' F = %d, the elementwise calls' F = %d: shares pass between them unchanged, so they must agree", mm.FracBits(), ew.FracBits())
	}
	p := Parameters{mm: mm, ew: ew, reg: reg}
	p.lit = lit
	p.lit.MatMul = mm.Literal()
	p.lit.Elementwise = ew.Literal()
	for _, fn := range []approx.Func{approx.GELU, approx.InvSqrt} {
		for _, d := range approx.Degrees() {
			if _, err := ew.PolyLevel(reg, fn, d); err != nil {
				return Parameters{}, fmt.Errorf("cannot NewParameters: %w", err)
			}
		}
	}
	if _, err := ew.MulScaledLevel(); err != nil {
		return Parameters{}, fmt.Errorf("cannot NewParameters: %w", err)
	}
	return p, nil
}

// Literal returns the literal of p with every default filled in.
func (p Parameters) Literal() ParametersLiteral { return p.lit }

// MatMul returns the parameters of the products.
func (p Parameters) MatMul() matmul.Parameters { return p.mm }

// Elementwise returns the parameters of the calls in slots.
func (p Parameters) Elementwise() elementwise.Parameters { return p.ew }

// Registry returns the approximation registry.
func (p Parameters) Registry() *approx.Registry { return p.reg }

// FracBits returns F, the fractional bits of every share.
func (p Parameters) FracBits() int { return p.mm.FracBits() }

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
	up, err := p.mm.ChooseBlock(polymat.Dims{Rows: s.Rows, In: s.Hidden, Out: s.Intermediate}, p.lit.MaxWeightBytes)
	if err != nil {
		return FFNPlan{}, fmt.Errorf("cannot PlanFFN: %w", err)
	}
	down, err := p.mm.ChooseBlock(polymat.Dims{Rows: s.Rows, In: s.Intermediate, Out: s.Hidden}, p.lit.MaxWeightBytes)
	if err != nil {
		return FFNPlan{}, fmt.Errorf("cannot PlanFFN: %w", err)
	}
	return FFNPlan{FFNShape: s, Up: up.Block, Down: down.Block}, nil
}

// layouts returns the layouts of both products for n rows (1 <= n <=
// Rows): the plan's D1 and D2 (the weights' encoding), D0 balanced over
// ceil(n/D0) row blocks.
func (pl FFNPlan) layouts(ring polymat.Parameters, n int) (up, down polymat.Layout, err error) {
	if n < 1 || n > pl.Rows {
		return up, down, fmt.Errorf("%d rows, the plan allows 1 to %d", n, pl.Rows)
	}
	lay := func(in, out int, b polymat.Block) (polymat.Layout, error) {
		blocks := (n + b.D0 - 1) / b.D0
		b.D0 = (n + blocks - 1) / blocks
		return polymat.NewLayout(ring, polymat.Dims{Rows: n, In: in, Out: out}, b)
	}
	if up, err = lay(pl.Hidden, pl.Intermediate, pl.Up); err != nil {
		return up, down, err
	}
	down, err = lay(pl.Intermediate, pl.Hidden, pl.Down)
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
