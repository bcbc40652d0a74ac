package prunestep

import (
	"fmt"
	"math"
)

// LayerRule is the server's private pruning rule for one encoder layer.
type LayerRule struct {
	// Prune enables the pruning step after the layer's attention block.
	// When false every row is kept, with its degree.
	Prune bool
	// Theta is θ_l: rows with score > θ_l are kept. It must exceed
	// MinTheta.
	Theta float64
	// Beta is β_l: kept rows with score > β_l use the high degree.
	Beta float64
}

// Decide is the plaintext rule of one pruning step on the scores of its n
// rows (row 0, CLS, is always kept with the high degree): the decisions the
// private step makes for these scores, up to the noise and the
// fixed-point rounding next to θ, β and the rank bins. Row i >= 1 is kept
// if scores[i] > θ, with the high degree if also scores[i] > β.
//
// With a KeepGroup g the kept count, CLS included, is rounded up to a
// multiple of g (at most n) by also keeping the best rows at or below θ,
// ranked by score in bins of 2^-10 ≈ MinTheta (centred on multiples of it)
// and then by lower index; a row so kept has the high degree if its score
// exceeds β. The comparisons are then those of the step's fixed point, as
// in the circuit (gc.Params.TopK).
func (p Parameters) Decide(scores []float64, theta, beta float64) (keep, high []bool, err error) {
	n := len(scores)
	if !p.valid() || n == 0 {
		return nil, nil, fmt.Errorf("cannot Decide: %d scores or invalid Parameters", n)
	}
	keep, high = make([]bool, n), make([]bool, n)
	keep[0], high[0] = true, true
	if p.group == 0 {
		for i := 1; i < n; i++ {
			keep[i] = scores[i] > theta
			high[i] = keep[i] && scores[i] > beta
		}
		return keep, high, nil
	}
	th, bt, err := p.encodeThresholds(theta, beta)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot Decide: %w", err)
	}
	cmp, off := p.topk, p.rankOffset()
	// The encoding's range, less the offset (a score beyond 2^B breaks the
	// encrypted step anyway).
	lim := math.Ldexp(1, cmp.K()-1-cmp.F()) - math.Ldexp(float64(off)+1, -cmp.F())
	enc := make([]uint64, n-1)
	ties := make([]uint64, n-1)
	for i := 1; i < n; i++ {
		v, err := cmp.Encode(max(-lim, min(lim, scores[i])))
		if err != nil {
			return nil, nil, fmt.Errorf("cannot Decide: score %d: %w", i, err)
		}
		enc[i-1], ties[i-1] = v+off, uint64(i-1)
	}
	k, h, err := cmp.TopK(enc, ties, th, bt)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot Decide: %w", err)
	}
	copy(keep[1:], k)
	copy(high[1:], h)
	return keep, high, nil
}
