package layers

import (
	"context"
	"fmt"
	"sync"

	"github.com/cipherprune/cipherprune/ckks/polymat"
	"github.com/cipherprune/cipherprune/mpcbridge/matmul"
)

// linear is the server's weights of one product: pre-encoded for the
// plan's block, and the matrix itself for the calls on few rows, whose
// cheapest block differs (weights encoded per call, cached by block).
// Safe for concurrent use.
type linear struct {
	pre     *matmul.Weights
	w, bias []float64 // In x Out, row-major; nil bias for none

	mu  sync.Mutex
	fly map[polymat.Block]*matmul.Weights
}

// newLinear quantizes and pre-encodes w (In x Out, row-major) and bias for
// lay, and keeps w for the short calls.
func newLinear(ctx context.Context, p Parameters, lay polymat.Layout, w, bias []float64, workers int) (*linear, error) {
	pre, err := matmul.NewWeights(ctx, p.mm, lay, w, bias, workers)
	if err != nil {
		return nil, err
	}
	return &linear{pre: pre, w: w, bias: bias, fly: map[polymat.Block]*matmul.Weights{}}, nil
}

// forCall returns the weights for a call on lay: the pre-encoded ones, or
// (onTheFly) the matrix encoded per call for lay's block.
func (l *linear) forCall(p Parameters, lay polymat.Layout, onTheFly bool) (*matmul.Weights, error) {
	if !onTheFly {
		return l.pre, nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if w, ok := l.fly[lay.Block]; ok {
		return w, nil
	}
	w, err := matmul.NewWeightsOnTheFly(p.mm, lay, l.w, l.bias)
	if err != nil {
		return nil, err
	}
	l.fly[lay.Block] = w
	return w, nil
}

// memoryBytes returns the pre-encoded weights' memory and the matrix's.
func (l *linear) memoryBytes() int64 { return l.pre.MemoryBytes() + int64(len(l.w)+len(l.bias))*8 }

// callLayout returns the layout of a product of n rows (in x out) whose
// weights the plan encoded in block b: the plan's D1 and D2 with D0
// balanced over the row blocks, or, when the products' cost model
// (matmul.Parameters.CostModel) prices a block chosen for n with weights
// encoded per call at less than half of that, that block (onTheFly): a
// call on few rows (after pruning, or the head's one) need not pay for the
// plan's row blocks. Both parties derive it from public values.
func (p Parameters) callLayout(n, in, out int, b polymat.Block) (lay polymat.Layout, onTheFly bool, err error) {
	ring := p.mm.Ring()
	if lay, err = balanced(ring, n, in, out, b); err != nil {
		return lay, false, err
	}
	cm := p.mm.CostModel()
	planned := cm.Estimate(ring, lay, true)
	d := polymat.Dims{Rows: n, In: in, Out: out}
	c, err := cm.ChooseBlock(ring, d, 0)
	if err != nil || c.Seconds >= planned.Seconds/2 {
		return lay, false, nil
	}
	if lay, err = polymat.NewLayout(ring, d, c.Block); err != nil {
		return lay, false, fmt.Errorf("block for %d rows: %w", n, err)
	}
	return lay, true, nil
}
