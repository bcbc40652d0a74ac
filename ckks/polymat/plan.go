package polymat

import (
	"cmp"
	"fmt"
	"math"
	"slices"
)

// planUnits is the resolution of Plan's budget: the memory of every
// pre-encoded matrix is counted in units of ceil(budget/planUnits) bytes,
// rounded up, so the plan never exceeds the budget and may leave at most
// one unit per matrix of it unused.
const planUnits = 4096

// Plan is how a server holds the weights of a model: for every matrix,
// its block and whether its plaintexts are encoded once or per call,
// chosen to minimize the modelled time of one inference within a memory
// budget for the pre-encoded plaintexts.
type Plan struct {
	// Matrices has one Cost per matrix, in the order given to
	// CostModel.Plan.
	Matrices []Cost
	// Budget is the memory allowed to pre-encoded plaintexts (negative: no
	// bound).
	Budget int64
	// PreEncodedBytes is the memory of the pre-encoded plaintexts, at most
	// Budget.
	PreEncodedBytes int64
	// HeldBytes is the memory held between calls for all the weights:
	// PreEncodedBytes plus the integer matrices of the others.
	HeldBytes int64
	// PreEncoded is the number of matrices whose weights are pre-encoded.
	PreEncoded int
	// Seconds is the modelled time of all the products of one inference,
	// the per-call encodings included; EncodeSeconds the encodings alone.
	Seconds, EncodeSeconds float64
}

// Plan chooses, for the matrices mats of a model (each with the rows it
// is planned for, e.g. n = 128), the block of each and which are
// pre-encoded, so that the pre-encoded plaintexts take at most budget bytes
// (0: none pre-encoded; negative: no bound, all pre-encoded) and the sum of
// the modelled seconds is least. It is a multiple-choice knapsack: every
// matrix may be encoded per call (its best block for that, no memory) or
// pre-encoded with any block on the Pareto front of memory against time;
// a dynamic program over the budget in planUnits units solves it.
//
// Pre-encoded weights serve every row count (ChooseRows picks the D0 for
// another n), so a plan made for the longest inputs serves the others.
func (cm CostModel) Plan(params Parameters, mats []Dims, budget int64) (Plan, error) {
	plan := Plan{Matrices: make([]Cost, len(mats)), Budget: budget}
	// The options of every distinct shape: per call first, then the
	// pre-encoded front by increasing memory and decreasing time.
	fronts := map[Dims][]Cost{}
	for _, d := range mats {
		if _, ok := fronts[d]; ok {
			continue
		}
		opts, err := cm.options(params, d)
		if err != nil {
			return Plan{}, fmt.Errorf("cannot Plan: %w", err)
		}
		fronts[d] = front(opts)
	}
	switch {
	case budget < 0:
		for k, d := range mats {
			plan.Matrices[k] = pick(fronts[d], -1, true)
		}
	case budget == 0:
		for k, d := range mats {
			plan.Matrices[k] = fronts[d][0]
		}
	default:
		unit := (budget + planUnits - 1) / planUnits
		capacity := int(budget / unit)
		units := func(c Cost) int {
			if !c.PreEncoded {
				return 0
			}
			return int((c.PlaintextBytes + unit - 1) / unit)
		}
		// best[c]: least seconds of the matrices so far in c units;
		// choice[k][c]: the option of matrix k on that optimum.
		best := make([]float64, capacity+1)
		next := make([]float64, capacity+1)
		choice := make([][]int16, len(mats))
		for k, d := range mats {
			opts := fronts[d]
			choice[k] = make([]int16, capacity+1)
			for c := range next {
				next[c] = math.Inf(1)
				for o, opt := range opts {
					u := units(opt)
					if u > c {
						break // the front grows in memory
					}
					if s := best[c-u] + opt.Seconds; s < next[c] {
						next[c], choice[k][c] = s, int16(o)
					}
				}
			}
			best, next = next, best
		}
		c := capacity
		for k := len(mats) - 1; k >= 0; k-- {
			opt := fronts[mats[k]][choice[k][c]]
			plan.Matrices[k] = opt
			c -= units(opt)
		}
	}
	for _, c := range plan.Matrices {
		plan.Seconds += c.Seconds
		plan.EncodeSeconds += c.EncodeSeconds
		plan.HeldBytes += c.WeightBytes
		if c.PreEncoded {
			plan.PreEncoded++
			plan.PreEncodedBytes += c.PlaintextBytes
		}
	}
	if budget >= 0 && plan.PreEncodedBytes > budget {
		panic(fmt.Errorf("polymat: plan of %d bytes over its budget %d", plan.PreEncodedBytes, budget)) // broken invariant
	}
	return plan, nil
}

// front returns the best option encoded per call, then the pre-encoded
// options that beat it and every option of less memory, by increasing
// memory (ties to less time).
func front(opts []Cost) []Cost {
	out := []Cost{pick(opts, 0, true)}
	var pre []Cost
	for _, c := range opts {
		if c.PreEncoded {
			pre = append(pre, c)
		}
	}
	slices.SortStableFunc(pre, func(a, b Cost) int {
		if a.PlaintextBytes != b.PlaintextBytes {
			return cmp.Compare(a.PlaintextBytes, b.PlaintextBytes)
		}
		return cmp.Compare(a.Seconds, b.Seconds)
	})
	for _, c := range pre {
		if c.Seconds < out[len(out)-1].Seconds {
			out = append(out, c)
		}
	}
	return out
}
