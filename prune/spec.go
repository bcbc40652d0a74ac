package prune

import (
	"encoding/json"
	"fmt"
	"math"

	"github.com/cipherprune/cipherprune/models/approx"
)

// SpecFormat names the layout of a SearchSpec file.
const SpecFormat = "cipherprune-search-spec/v1"

// SearchSpec is everything the training code's threshold search
// (models/training/search.py) needs from the Go side, so that it evaluates
// the same polynomials and optimizes the same cost as the engine: the
// resolved approximation registry (approx.Registry.MarshalJSON: every
// recipe's coefficients, interval and post-processing), the softmax shift
// and the cost model as a polynomial in the per-layer counts.
type SearchSpec struct {
	// Format is SpecFormat.
	Format string `json:"format"`
	// Layers is the model's number of encoder layers.
	Layers int `json:"layers"`
	// SoftmaxShift is the constant subtracted from attention logits.
	SoftmaxShift float64 `json:"softmax_shift"`
	// Registry is the resolved registry JSON.
	Registry json.RawMessage `json:"registry"`
	// Cost is the cost model of the model's shape and recipes.
	Cost CostPolynomial `json:"cost"`
}

// NewSearchSpec returns the spec for a model costed by c whose approximate
// forward uses reg and softmax shift `shift`.
func NewSearchSpec(c *Coster, reg *approx.Registry, shift float64) (SearchSpec, error) {
	if math.IsNaN(shift) || math.IsInf(shift, 0) {
		return SearchSpec{}, fmt.Errorf("cannot build search spec: softmax shift %v", shift)
	}
	b, err := reg.MarshalJSON()
	if err != nil {
		return SearchSpec{}, fmt.Errorf("cannot build search spec: %w", err)
	}
	return SearchSpec{Format: SpecFormat, Layers: c.layers, SoftmaxShift: shift, Registry: b, Cost: c.Polynomial()}, nil
}
