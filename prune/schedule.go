package prune

import (
	"fmt"

	"github.com/cipherprune/cipherprune/models"
)

// Options select which reductions a Schedule applies.
type Options struct {
	// NoPruning keeps every token (the thresholds θ are ignored).
	NoPruning bool
	// NoDegreeReduction gives every kept token the high degree (β ignored).
	NoDegreeReduction bool
	// KeepLastLayer keeps the tokens of the last layer's feed-forward block
	// by θ like any other layer. By default only the CLS token continues
	// after the last attention block, because the pooler reads only CLS:
	// the rest of the last feed-forward block cannot change the output. This
	// public rule is exact, so it applies with and without pruning.
	KeepLastLayer bool
}

// LayerCounts are the public per-layer token counts of one inference: the
// only thing the private protocol reveals about an input besides its padded
// length.
type LayerCounts struct {
	// In is the number of rows entering the layer's attention block.
	In int `json:"in"`
	// Kept is the number of rows kept after the layer's attention block:
	// they go through its feed-forward block and enter the next layer.
	Kept int `json:"kept"`
	// High is how many of the kept rows use the high-degree polynomials.
	High int `json:"high"`
}

// MinTheta is θ_min, the smallest threshold the encrypted pruning step
// accepts (prunestep.MinTheta, which engine tests check equal): a layer whose
// θ_l is at most MinTheta does not prune, and its kept rows keep the degrees
// the previous pruning layer gave them, as the engine does (engine.Rules).
const MinTheta = 1e-3

// Schedule is a models.Schedule that applies thresholds to importance scores
// and records the per-layer counts. It is stateful: use one per forward pass.
type Schedule struct {
	th     *Thresholds
	opts   Options
	layers int
	counts []LayerCounts
	degs   []models.Degree // the kept rows' degrees after the last decision
}

var _ models.Schedule = (*Schedule)(nil)

// NewSchedule returns a Schedule for a model of th.NumLayers() layers.
func NewSchedule(th *Thresholds, opts Options) *Schedule {
	return &Schedule{th: th, opts: opts, layers: th.NumLayers()}
}

// Decide returns the keep and degree decision for scores at layer l: CLS
// (index 0) is kept at the high degree; token j is kept if scores[j] > θ_l
// and high if also scores[j] > β_l. At a layer whose θ_l is at most MinTheta
// (and not the last) every row is kept with the degree the previous decision
// gave it. Decide records the kept rows' degrees for that rule: call it once
// per layer, in order.
func (s *Schedule) Decide(l int, scores []float64) models.Decision {
	n := len(scores)
	keep := make([]bool, n)
	deg := make([]models.Degree, n)
	last := l == s.layers-1 && !s.opts.KeepLastLayer
	if !last && !s.opts.NoPruning && !(s.th.Theta(l) > MinTheta) {
		for j := range keep {
			keep[j] = true
			if j < len(s.degs) && len(s.degs) == n {
				deg[j] = s.degs[j]
			}
		}
		return models.Decision{Keep: keep, Degrees: deg}
	}
	defer func() { s.degs = keptDegrees(keep, deg) }()
	for j, sc := range scores {
		switch {
		case j == 0:
			keep[j] = true
		case last:
			keep[j] = false
		case s.opts.NoPruning:
			keep[j] = true
		default:
			keep[j] = sc > s.th.Theta(l)
		}
		if j > 0 && !s.opts.NoDegreeReduction && !(sc > s.th.Beta(l)) {
			deg[j] = models.DegreeLow
		}
	}
	return models.Decision{Keep: keep, Degrees: deg}
}

// keptDegrees returns the degrees of the kept rows, in order.
func keptDegrees(keep []bool, deg []models.Degree) []models.Degree {
	var out []models.Degree
	for j, k := range keep {
		if k {
			out = append(out, deg[j])
		}
	}
	return out
}

// AfterAttention implements models.Schedule.
func (s *Schedule) AfterAttention(att *models.LayerAttention) (models.Decision, error) {
	if att.Layer != len(s.counts) || att.Layer >= s.layers {
		return models.Decision{}, fmt.Errorf("cannot schedule layer %d: expected layer %d of %d", att.Layer, len(s.counts), s.layers)
	}
	d := s.Decide(att.Layer, att.Importance())
	c := LayerCounts{In: len(att.Tokens)}
	for j, k := range d.Keep {
		if k {
			c.Kept++
			if d.Degrees[j] == models.DegreeHigh {
				c.High++
			}
		}
	}
	s.counts = append(s.counts, c)
	return d, nil
}

// Counts returns the per-layer counts recorded so far.
func (s *Schedule) Counts() []LayerCounts { return append([]LayerCounts(nil), s.counts...) }

// FixedSchedule is a models.Schedule that keeps a given number of the most
// important rows after each layer's attention block (CLS always among them),
// all at the high degree, and only CLS after the last layer's. It replays a
// published schedule (the number of tokens entering each layer, such as
// CipherPrune's BERT-base 128,55,54,...) or a baseline such as BOLT's
// halving of the real tokens after the first layer.
type FixedSchedule struct {
	layers int
	// next returns how many rows to keep after layer l's attention block,
	// given the rows alive and how many of them are real tokens.
	next   func(l, alive, valid int) int
	counts []LayerCounts
}

// NewFixedSchedule returns the schedule in which in[l] rows enter layer l
// (in[0] is the padded length n; every entry >= 1 and none larger than the
// one before).
func NewFixedSchedule(in []int) (*FixedSchedule, error) {
	for l, k := range in {
		if k < 1 || (l > 0 && k > in[l-1]) {
			return nil, fmt.Errorf("cannot use fixed schedule: layer %d gets %d tokens after %v", l, k, in[:l])
		}
	}
	in = append([]int(nil), in...)
	return &FixedSchedule{layers: len(in), next: func(l, alive, _ int) int { return in[l+1] }}, nil
}

// NewHalvingSchedule returns BOLT's word-elimination baseline for a model of
// the given number of layers: after the first layer's attention block, the
// more important half of the real tokens is kept (padding first to go), and
// every kept token stays.
func NewHalvingSchedule(layers int) *FixedSchedule {
	return &FixedSchedule{layers: layers, next: func(l, alive, valid int) int {
		if l == 0 {
			return max(1, (valid+1)/2)
		}
		return alive
	}}
}

// AfterAttention implements models.Schedule.
func (f *FixedSchedule) AfterAttention(att *models.LayerAttention) (models.Decision, error) {
	if att.Layer != len(f.counts) || att.Layer >= f.layers {
		return models.Decision{}, fmt.Errorf("cannot schedule layer %d: expected layer %d of %d", att.Layer, len(f.counts), f.layers)
	}
	scores := att.Importance()
	n := len(scores)
	k := 1
	if att.Layer < f.layers-1 {
		valid := 0
		for _, v := range att.Valid {
			if v {
				valid++
			}
		}
		k = min(n, f.next(att.Layer, n, valid))
	}
	keep := make([]bool, n)
	keep[0] = true
	for _, j := range TopK(scores[1:], k-1) {
		keep[j+1] = true
	}
	f.counts = append(f.counts, LayerCounts{In: n, Kept: k, High: k})
	return models.Decision{Keep: keep}, nil
}

// Counts returns the per-layer counts recorded so far.
func (f *FixedSchedule) Counts() []LayerCounts { return append([]LayerCounts(nil), f.counts...) }

// TopK returns the indices of the k largest scores (ties broken by lower
// index), in increasing index order; all indices if k >= len(scores).
func TopK(scores []float64, k int) []int {
	n := len(scores)
	if k >= n {
		idx := make([]int, n)
		for i := range idx {
			idx[i] = i
		}
		return idx
	}
	if k <= 0 {
		return nil
	}
	chosen := make([]bool, n)
	for range k {
		best := -1
		for i, s := range scores {
			if !chosen[i] && (best < 0 || s > scores[best]) {
				best = i
			}
		}
		chosen[best] = true
	}
	out := make([]int, 0, k)
	for i, c := range chosen {
		if c {
			out = append(out, i)
		}
	}
	return out
}
