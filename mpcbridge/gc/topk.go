package gc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"slices"

	"github.com/markkurossi/mpc/circuit"
)

// The top-K circuit (Params with a KeepGroup g).
//
// The plain circuit reveals keep_j = [s_j > θ] for every score, hence the
// number c of kept scores. With a group g the circuit reveals instead
//
//	keep'_j = [rank_j < K]    high'_j = [s_j > β] ∧ keep'_j
//
// where K = min(roundup(c + base, g) - base, m) and rank_j is the position
// of score j when the scores are ordered by s_j >> RankShift (descending),
// then by the tie order ρ_j (ascending). Every score with s_j > θ ranks
// before every other (its s is larger), so keep' is keep plus the K - c
// best-scoring dropped scores, and the counts revealed are K and the high
// count: c is hidden within its group. The bits stay in the positions of the
// shares, which the caller has put in an order unknown to both parties.
//
// The tie order must come from outside the circuit and be unknown to both
// parties too (prunestep carries each row's index through the shuffle): if
// ties were broken by the shuffled position instead, the positions of the
// extra rows would depend on how many scores tie, which the uniform order
// would no longer hide.
//
// Construction, for a bucket of b = 2^L slots:
//
//  1. Per slot: the sum s of the score shares and [s > θ], [s > β] as in the
//     plain circuit (3K-1 AND gates); the sum ρ' = ¬ρ of the tie shares
//     (L-1; the parties negate their shares locally); the rank key
//     (msb_j, s_j >> RankShift, ρ'_j), msb_j = valid_j ∧ ¬keep_j, so that
//     dropped scores rank first, then kept ones, then the bucket's padding
//     slots (valid_j = 0, a public garbler input).
//  2. u = (c + base) mod g by a tree of adders log2(g) bits wide.
//  3. A selection network moves the g best keys to positions 0..g-1 in
//     descending order: odd-even merge sorts of blocks of g, then a tree of
//     merges that keep the g best of two blocks (a half-cleaner and a
//     bitonic merge). Each comparator costs 2W AND gates for W = L + K -
//     RankShift + 1 key bits (W for the comparison, W for the conditional
//     swap, skipped when neither output is read again), and its swap bit is
//     kept.
//  4. Position p < g-1 of the result is an extra row iff 1 <= u <= g-1-p,
//     a function of u alone (a thermometer code of u).
//  5. The comparators run backwards with their swap bits on these extra
//     bits bring them back to the slots (1 AND gate per comparator that
//     moves a non-zero bit), and keep'_j = (keep_j ∨ extra_j) ∧ valid_j.
//
// Padding slots (j >= m) have s = the K-bit minimum, so they are never kept
// by θ, and valid_j = 0, so they rank last and their outputs are 0 even when
// K is capped at m.

// checkKeepGroup validates the top-K fields of lit, whose buckets are
// buckets.
func checkKeepGroup(lit ParamsLiteral, buckets []int) error {
	g := lit.KeepGroup
	if g == 0 {
		if lit.KeepBase != 0 || lit.RankShift != 0 {
			return fmt.Errorf("KeepBase %d and RankShift %d need a KeepGroup", lit.KeepBase, lit.RankShift)
		}
		return nil
	}
	switch {
	case g < 2 || g > MaxBucket || g&(g-1) != 0:
		return fmt.Errorf("KeepGroup %d is not a power of two in [2, %d]", g, MaxBucket)
	case lit.KeepBase < 0 || lit.KeepBase >= g:
		return fmt.Errorf("KeepBase %d outside [0, KeepGroup=%d)", lit.KeepBase, g)
	case lit.RankShift < 0 || lit.RankShift >= lit.K:
		return fmt.Errorf("RankShift %d outside [0, K=%d)", lit.RankShift, lit.K)
	}
	for _, b := range buckets {
		if b&(b-1) != 0 {
			return fmt.Errorf("bucket %d is not a power of two, which the top-K circuit needs", b)
		}
	}
	return nil
}

// GarbleTopK is Garble for Params with a KeepGroup (the top-K circuit):
// ties holds the garbler's additive shares, modulo the bucket (a power of
// two), of each score's tie order ρ_j, distinct values in [0, m) that
// neither party knows in this order (the evaluator holds the other shares).
// It returns keep'_j and high'_j as described in topk.go: the kept count
// rounded up to the group, the extra rows the best-scoring dropped ones. With
// equal ρ, equal scores are ordered by the network (deterministically, but
// not by position).
func (c *Cache) GarbleTopK(ctx context.Context, conn io.ReadWriter, p Params, shares, ties []uint64, theta, beta uint64) (keep, high []bool, err error) {
	if ties == nil {
		ties = []uint64{}
	}
	err = run(ctx, conn, "GarbleTopK", func(pt *party) error {
		var err error
		keep, high, err = pt.garble(c, p, shares, ties, theta, beta)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	return keep, high, nil
}

// EvaluateTopK is Evaluate for Params with a KeepGroup: ties holds the
// evaluator's shares of the tie orders (see GarbleTopK).
func (c *Cache) EvaluateTopK(ctx context.Context, conn io.ReadWriter, p Params, shares, ties []uint64) (keep, high []bool, err error) {
	if ties == nil {
		ties = []uint64{}
	}
	err = run(ctx, conn, "EvaluateTopK", func(pt *party) error {
		var err error
		keep, high, err = pt.evaluate(c, p, shares, ties)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	return keep, high, nil
}

// checkTies checks that the call matches p's circuit: tie shares (non-nil,
// one per score) exactly when p has a KeepGroup.
func checkTies(p Params, m int, ties []uint64) error {
	switch {
	case p.group == 0 && ties != nil:
		return errors.New("GarbleTopK and EvaluateTopK need Params with a KeepGroup")
	case p.group > 0 && ties == nil:
		return fmt.Errorf("Params with KeepGroup %d need GarbleTopK and EvaluateTopK", p.group)
	case ties != nil && len(ties) != m:
		return fmt.Errorf("%d tie shares for %d scores", len(ties), m)
	}
	return nil
}

// TopK is the plaintext rule of the top-K circuit (Params with a
// KeepGroup): the bits GarbleTopK and EvaluateTopK return when the scores
// s_j (read as K-bit two's-complement integers; for share pairs, the sums
// modulo 2^K) have the tie orders ties (reduced modulo the bucket; they must
// be distinct for the result to be defined).
func (p Params) TopK(scores, ties []uint64, theta, beta uint64) (keep, high []bool, err error) {
	m := len(scores)
	if p.group == 0 {
		return nil, nil, errors.New("cannot TopK: Params without a KeepGroup")
	}
	if len(ties) != m {
		return nil, nil, fmt.Errorf("cannot TopK: %d tie orders for %d scores", len(ties), m)
	}
	bucket, err := p.Bucket(m)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot TopK: %w", err)
	}
	tmask := uint64(bucket - 1)
	keep = make([]bool, m)
	high = make([]bool, m)
	c := 0
	var dropped []int
	for j, s := range scores {
		if keep[j] = p.Greater(s, theta); keep[j] {
			c++
		} else {
			dropped = append(dropped, j)
		}
	}
	k := min(roundUp(c+p.base, p.group)-p.base, m)
	slices.SortFunc(dropped, func(a, b int) int {
		ra, rb := p.signed(scores[a])>>uint(p.shift), p.signed(scores[b])>>uint(p.shift)
		switch {
		case ra != rb:
			if ra > rb {
				return -1
			}
			return 1
		case ties[a]&tmask < ties[b]&tmask:
			return -1
		case ties[a]&tmask > ties[b]&tmask:
			return 1
		}
		return 0
	})
	for _, j := range dropped[:k-c] {
		keep[j] = true
	}
	for j, s := range scores {
		high[j] = keep[j] && p.Greater(s, beta)
	}
	return keep, high, nil
}

// roundUp returns the smallest multiple of g (a power of two) >= x.
func roundUp(x, g int) int { return (x + g - 1) &^ (g - 1) }

// topKGarblerBits returns the garbler's input bits of the top-K circuit
// (layout in compileTopK) for m = len(shares) scores.
func (c *compiled) topKGarblerBits(p Params, shares, ties []uint64, theta, beta uint64) []bool {
	k, mask := p.k, p.mask()
	top := uint64(1) << uint(k-1)
	tmask := uint64(c.bucket - 1)
	in := make([]bool, 0, c.nG)
	for j := 0; j < c.bucket; j++ {
		// Padding: v' = 0 (with the evaluator's 0, s' = 0: the minimum),
		// ρ' = 0, valid = 0.
		var v, t uint64
		valid := j < len(shares)
		if valid {
			// v' = v + 2^(K-1) flips the sum's sign bit (see compile);
			// -1 - b, with the evaluator's -a, sums to -1 - ρ = ¬ρ.
			v, t = (shares[j]+top)&mask, ^ties[j]&tmask
		}
		in = bitsOf(in, v, k)
		in = bitsOf(in, t, c.tieBits)
		in = append(in, valid)
	}
	in = bitsOf(in, ^(theta^top)&mask, k)
	return bitsOf(in, ^(beta^top)&mask, k)
}

// topKEvaluatorBits returns the evaluator's input bits of the top-K circuit.
func (c *compiled) topKEvaluatorBits(p Params, shares, ties []uint64) []bool {
	tmask := uint64(c.bucket - 1)
	in := make([]bool, 0, c.nE)
	for j := 0; j < c.bucket; j++ {
		var s, t uint64 // padding
		if j < len(shares) {
			s, t = shares[j], -ties[j]&tmask
		}
		in = bitsOf(in, s, p.k)
		in = bitsOf(in, t, c.tieBits)
	}
	return in
}

// topKBuilder is a builder with constant wires and gates that fold them.
type topKBuilder struct {
	*builder
	zero, one circuit.Wire
}

func (b *topKBuilder) xor(x, y circuit.Wire) circuit.Wire {
	switch {
	case x == b.zero:
		return y
	case y == b.zero:
		return x
	case x == y:
		return b.zero
	}
	return b.gate(circuit.XOR, x, y)
}

func (b *topKBuilder) and(x, y circuit.Wire) circuit.Wire {
	switch {
	case x == b.zero || y == b.zero:
		return b.zero
	case x == b.one || x == y:
		return y
	case y == b.one:
		return x
	}
	return b.gate(circuit.AND, x, y)
}

func (b *topKBuilder) or(x, y circuit.Wire) circuit.Wire {
	switch {
	case x == b.one || y == b.one:
		return b.one
	case x == b.zero:
		return y
	case y == b.zero:
		return x
	}
	return b.xor(b.xor(x, y), b.and(x, y))
}

func (b *topKBuilder) not(x circuit.Wire) circuit.Wire { return b.xor(x, b.one) }

// sum returns x + y (little-endian, missing bits zero) in min(width,
// max(len)+1) bits: one AND gate per full adder.
func (b *topKBuilder) sum(x, y []circuit.Wire, width int) []circuit.Wire {
	n := min(width, max(len(x), len(y))+1)
	at := func(v []circuit.Wire, i int) circuit.Wire {
		if i < len(v) {
			return v[i]
		}
		return b.zero
	}
	out := make([]circuit.Wire, n)
	carry := b.zero
	for i := range out {
		xi, yi := at(x, i), at(y, i)
		out[i] = b.xor(b.xor(xi, yi), carry)
		if i < n-1 {
			// maj(x, y, carry) = carry ^ ((x^carry) & (y^carry))
			carry = b.xor(carry, b.and(b.xor(xi, carry), b.xor(yi, carry)))
		}
	}
	return out
}

// count returns Σ x_j modulo 2^width by a tree of adders.
func (b *topKBuilder) count(x []circuit.Wire, width int) []circuit.Wire {
	nums := make([][]circuit.Wire, len(x))
	for i, w := range x {
		nums[i] = []circuit.Wire{w}
	}
	for len(nums) > 1 {
		next := nums[:0:0]
		for i := 0; i+1 < len(nums); i += 2 {
			next = append(next, b.sum(nums[i], nums[i+1], width))
		}
		if len(nums)%2 == 1 {
			next = append(next, nums[len(nums)-1])
		}
		nums = next
	}
	out := b.constant(0, width)
	copy(out, nums[0])
	return out
}

// constant returns the width low bits of v as constant wires.
func (b *topKBuilder) constant(v uint64, width int) []circuit.Wire {
	out := make([]circuit.Wire, width)
	for i := range out {
		out[i] = b.zero
		if v>>uint(i)&1 == 1 {
			out[i] = b.one
		}
	}
	return out
}

// greaterConst returns [x > v] for unsigned little-endian x and a constant v.
func (b *topKBuilder) greaterConst(x []circuit.Wire, v uint64) circuit.Wire {
	c := b.zero
	for i, xi := range x {
		if v>>uint(i)&1 == 1 {
			c = b.and(xi, c)
		} else {
			c = b.or(xi, c)
		}
	}
	return c
}

// greaterU returns [x > y] for unsigned little-endian x and y of equal
// length: c_{i+1} = x_i ^ ((c_i ^ x_i) & (c_i ^ y_i)), c_0 = 0, one AND
// gate per bit.
func (b *topKBuilder) greaterU(x, y []circuit.Wire) circuit.Wire {
	c := b.zero
	for i := range x {
		c = b.xor(x[i], b.and(b.xor(c, x[i]), b.xor(c, y[i])))
	}
	return c
}

// pair is a comparator: the larger key goes to a, the smaller to b (a < b).
type pair struct{ a, b int }

// oddEvenMergeSort returns Batcher's odd-even merge sorting network on n
// (a power of two) positions.
func oddEvenMergeSort(n int) []pair {
	var net []pair
	for p := 1; p < n; p <<= 1 {
		for k := p; k >= 1; k >>= 1 {
			for j := k % p; j+k < n; j += 2 * k {
				for i := 0; i < k && i+j+k < n; i++ {
					if (i+j)/(2*p) == (i+j+k)/(2*p) {
						net = append(net, pair{i + j, i + j + k})
					}
				}
			}
		}
	}
	return net
}

// selectionNetwork returns a network on n positions (a power of two) that
// leaves the k largest keys (k a power of two <= n) in positions 0..k-1, in
// descending order: blocks of k sorted, then merged pairwise, each merge
// keeping the k largest of two sorted blocks in the first (a half-cleaner,
// which leaves them bitonic, then a bitonic merge).
func selectionNetwork(n, k int) []pair {
	var net []pair
	block := oddEvenMergeSort(k)
	for o := 0; o < n; o += k {
		for _, c := range block {
			net = append(net, pair{o + c.a, o + c.b})
		}
	}
	for s := k; s < n; s *= 2 {
		for a := 0; a < n; a += 2 * s {
			for i := 0; i < k; i++ {
				net = append(net, pair{a + i, a + s + k - 1 - i})
			}
			for d := k / 2; d >= 1; d /= 2 {
				for i := 0; i < k; i++ {
					if i&d == 0 {
						net = append(net, pair{a + i, a + i + d})
					}
				}
			}
		}
	}
	return net
}

// compileTopK builds the top-K circuit for bucket (a power of two) scores of
// K bits, group g, base and rank shift.
//
// Garbler input wires, in order: for each slot j < bucket its K share bits
// v'_j, L = log2(bucket) bits of its tie share ¬b_j and the bit valid_j;
// then K bits of ^θ' and K bits of ^β' (as in compile). Evaluator input
// wires follow: for each slot its K share bits c_j and L bits of -a_j. The
// outputs are keep'_0..keep'_{b-1} then high'_0..high'_{b-1}.
func compileTopK(k, bucket, group, base, shift int) (*compiled, error) {
	if k < 2 || k > 64 || bucket < 8 || bucket > MaxBucket || bucket&(bucket-1) != 0 ||
		group < 2 || group > MaxBucket || group&(group-1) != 0 || base < 0 || base >= group || shift < 0 || shift >= k {
		return nil, fmt.Errorf("cannot compile: K=%d, bucket=%d, group=%d, base=%d, shift=%d out of range", k, bucket, group, base, shift)
	}
	l := bits.Len(uint(bucket - 1))
	t := bits.Len(uint(group - 1))
	slotG, slotE := k+l+1, k+l
	nG := bucket*slotG + 2*k
	nE := bucket * slotE
	bb := &builder{next: circuit.Wire(nG + nE)}
	b := &topKBuilder{builder: bb}
	b.zero = bb.gate(circuit.XOR, 0, 0)
	b.one = bb.gate(circuit.XNOR, 0, 0)
	wires := func(base, n int) []circuit.Wire {
		w := make([]circuit.Wire, n)
		for i := range w {
			w[i] = circuit.Wire(base + i)
		}
		return w
	}
	nTheta := wires(bucket*slotG, k)
	nBeta := wires(bucket*slotG+k, k)

	// 1. Sums, comparisons and rank keys (least significant bit first).
	keep := make([]circuit.Wire, bucket)
	high := make([]circuit.Wire, bucket)
	valid := make([]circuit.Wire, bucket)
	keys := make([][]circuit.Wire, bucket)
	for j := range bucket {
		g, e := j*slotG, nG+j*slotE
		s := bb.add(wires(e, k), wires(g, k))
		keep[j] = bb.greater(s, nTheta)
		high[j] = bb.greater(s, nBeta)
		valid[j] = circuit.Wire(g + k + l)
		key := bb.add(wires(e+k, l), wires(g+k, l))
		key = append(key, s[shift:]...)
		keys[j] = append(key, b.and(valid[j], b.not(keep[j])))
	}

	// 2. u = (c + base) mod g.
	u := b.sum(b.count(keep, t), b.constant(uint64(base), t), t)[:t]

	// 3. The selection network, keeping each comparator's swap bit.
	sel := min(group, bucket)
	net := selectionNetwork(bucket, sel)
	last := make([]int, bucket)
	for i, c := range net {
		last[c.a], last[c.b] = i, i
	}
	swaps := make([]circuit.Wire, len(net))
	for i, c := range net {
		ka, kb := keys[c.a], keys[c.b]
		s := b.greaterU(kb, ka)
		swaps[i] = s
		needA, needB := last[c.a] > i, last[c.b] > i
		if !needA && !needB {
			continue
		}
		na, nb := make([]circuit.Wire, len(ka)), make([]circuit.Wire, len(kb))
		for x := range ka {
			d := b.and(b.xor(ka[x], kb[x]), s)
			if needA {
				na[x] = b.xor(ka[x], d)
			}
			if needB {
				nb[x] = b.xor(kb[x], d)
			}
		}
		keys[c.a], keys[c.b] = na, nb
	}

	// 4. The extra rows by sorted position: p < g-1 is one iff 1 <= u <=
	// g-1-p, that is T_1 ⊕ T_{g-p} with T_q = [u >= q] (T_g = 0).
	therm := make([]circuit.Wire, group+1)
	therm[group] = b.zero
	for q := 1; q < group; q++ {
		therm[q] = b.greaterConst(u, uint64(q-1))
	}
	extra := make([]circuit.Wire, bucket)
	for p := range extra {
		extra[p] = b.zero
		if p < min(sel, group-1) {
			extra[p] = b.xor(therm[1], therm[group-p])
		}
	}

	// 5. Back through the network, then the outputs.
	for i := len(net) - 1; i >= 0; i-- {
		c := net[i]
		ea, eb := extra[c.a], extra[c.b]
		if ea == b.zero && eb == b.zero {
			continue
		}
		d := b.and(b.xor(ea, eb), swaps[i])
		extra[c.a], extra[c.b] = b.xor(ea, d), b.xor(eb, d)
	}
	kept := make([]circuit.Wire, bucket)
	for j := range kept {
		kept[j] = b.and(b.or(keep[j], extra[j]), valid[j])
		bb.output(circuit.XOR, kept[j], b.zero)
	}
	for j := range kept {
		bb.output(circuit.AND, high[j], kept[j])
	}
	cc := bb.finish(nG, nE, bucket)
	cc.k, cc.group, cc.tieBits = k, group, l
	return cc, nil
}
