package elementwise

import (
	"fmt"

	"github.com/cipherprune/cipherprune/mpcbridge/share"
)

// shape is the public shape of one call: its groups, one after the other,
// and where each group's ciphertexts start among the call's.
type shape struct {
	op     op
	groups []group
	start  []int // start[g]: group g's first ciphertext; start[len(groups)]: the call's count
}

// newShape checks the operands of a call's groups, xs[g][j] being operand j
// of group g at levels[g][j], and returns its shape: between 1 and
// MaxGroups groups of the same operand count, each of vectors of one
// length, MaxValues values in all, every share within the slot codec's
// bits.
func (p Parameters) newShape(o op, xs [][]share.Vector, levels [][]int) (shape, error) {
	if len(xs) < 1 || len(xs) > MaxGroups {
		return shape{}, fmt.Errorf("%d groups not in [1, %d]", len(xs), MaxGroups)
	}
	s := shape{op: o, groups: make([]group, len(xs)), start: make([]int, len(xs)+1)}
	total := 0
	for g, x := range xs {
		if len(x) != o.operands() || len(levels[g]) != o.operands() {
			return shape{}, fmt.Errorf("internal: group %d has %d operands and %d levels, %v takes %d", g, len(x), len(levels[g]), o, o.operands())
		}
		n, err := p.checkVectors(x)
		if err != nil {
			if len(xs) > 1 {
				err = fmt.Errorf("group %d: %w", g, err)
			}
			return shape{}, err
		}
		if total += n; total > p.lit.MaxValues {
			return shape{}, fmt.Errorf("%d values or more in %d groups, more than %d", total, len(xs), p.lit.MaxValues)
		}
		s.groups[g] = group{values: n, levels: levels[g]}
		s.start[g+1] = s.start[g] + p.Ciphertexts(n)
	}
	return s, nil
}

// ciphertexts returns the call's ciphertexts per operand, over all groups.
func (s shape) ciphertexts() int { return s.start[len(s.groups)] }

// locate returns the group of the call's ciphertext t and its index in it.
func (s shape) locate(t int) (g, local int) {
	for g = 0; t >= s.start[g+1]; g++ {
	}
	return g, t - s.start[g]
}

// values returns each group's values.
func (s shape) values() []int {
	out := make([]int, len(s.groups))
	for g, gr := range s.groups {
		out[g] = gr.values
	}
	return out
}

// input returns the header of the client's message of ciphertexts
// [first, first+count).
func (s shape) input(first, count int) header {
	return header{op: s.op, groups: s.groups, first: first, count: count}
}

// output returns the header of the server's message of ciphertexts
// [first, first+count): one operand per group, at the mask level.
func (s shape) output(maskLevel, first, count int) header {
	gs := make([]group, len(s.groups))
	for g, gr := range s.groups {
		gs[g] = group{values: gr.values, levels: []int{maskLevel}}
	}
	return header{op: s.op, groups: gs, first: first, count: count}
}
