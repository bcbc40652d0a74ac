package ckks

import (
	"context"
	"fmt"
	"math"
	"slices"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"
	"github.com/tuneinsight/lattigo/v5/he/hefloat"

	"github.com/cipherprune/cipherprune/models/approx"
)

// AttentionMasks are the encrypted 0/1 and weight vectors the client sends
// with an input (or after each bridge) so that padding is applied
// homomorphically without the server learning which tokens are padding.
type AttentionMasks struct {
	// KeyMask holds, for each dense score ciphertext g, in block u and slot
	// i < Rows, valid[(i + t) mod Block] for the shift t = denseShifts[g][u]:
	// 1 where the key of score (i, i+t) is a real token; 0 in the block's
	// rows i >= Rows, so those slots (no token of the layout) get no
	// attention at all, and in the blocks of the last ciphertext that hold
	// no shift.
	KeyMask []*rlwe.Ciphertext
	// QueryWeights holds valid_i/m in slot i of every block (m real
	// tokens): the importance score averages over real query rows.
	QueryWeights *rlwe.Ciphertext
}

// neededShift reports whether the token shift t (score (i, i+t mod Block))
// pairs two rows of the layout for some i < Rows: t < Rows or t > Block -
// Rows. The other shifts only pair slots beyond the rows, whose scores the
// key mask zeroes, so the evaluator skips them: attention costs
// min(2·Rows-1, Block) shifts, which is where pruning pays in attention.
func neededShift(lay Layout, t int) bool {
	return t < lay.Rows || t > lay.Block-lay.Rows
}

// denseShifts returns the token shifts the attention evaluates (the
// needed ones, in increasing order) packed c to a dense score ciphertext,
// c the columns per ciphertext of the attention's view (scoreLayout):
// column block u of dense ciphertext g holds shift denseShifts(lay)[g][u]
// (for each of its heads, one per token block); the last ciphertext may
// hold fewer. Packing only the needed shifts halves the dense ciphertexts
// (and their column sums, exp, masks and broadcasts) once the rows are at
// most a quarter of the block.
func denseShifts(lay Layout) [][]int {
	c := scoreLayout(lay).ColsPerCt()
	var all []int
	for t := 0; t < lay.Block; t++ {
		if neededShift(lay, t) {
			all = append(all, t)
		}
	}
	var out [][]int
	for i := 0; i < len(all); i += c {
		out = append(out, all[i:min(i+c, len(all))])
	}
	return out
}

// numDense returns the number of dense score ciphertexts per head (per
// group of HeadsPerCt heads).
func numDense(lay Layout) int { return len(denseShifts(lay)) }

// scoreLayout returns the attention's column view of lay: with hp =
// lay.HeadsPerCt() heads per ciphertext in the stacked order (StackedColumn),
// column block q of the view is hp token blocks of lay (block j·hp + h of
// lay is column j of head h), so a ciphertext has headDim column blocks of
// hp·Block slots and every sum over column blocks is a per-head sum, each
// head in its own token block. hp = 1 returns lay.
func scoreLayout(lay Layout) Layout {
	hp := lay.HeadsPerCt()
	lay.Block *= hp
	lay.HeadDim = 0
	return lay
}

// AttentionMaskVectors returns the slot vectors of the attention masks for
// the token validity flags valid (len = lay.Rows).
func AttentionMaskVectors(valid []bool, lay Layout) (keyMask [][]float64, queryWeights []float64, err error) {
	if len(valid) != lay.Rows {
		return nil, nil, fmt.Errorf("cannot AttentionMaskVectors: %d flags for %d rows", len(valid), lay.Rows)
	}
	m := 0
	for _, v := range valid {
		if v {
			m++
		}
	}
	if m == 0 {
		return nil, nil, fmt.Errorf("cannot AttentionMaskVectors: no valid token")
	}
	isValid := func(j int) bool { return j < lay.Rows && valid[j] }
	B := lay.Block
	hp := lay.HeadsPerCt()
	for _, group := range denseShifts(lay) {
		v := make([]float64, lay.Slots)
		for u, t := range group {
			for h := 0; h < hp; h++ {
				blk := v[(u*hp+h)*B : (u*hp+h+1)*B]
				for i := 0; i < lay.Rows; i++ {
					if isValid((i + t) % B) {
						blk[i] = 1
					}
				}
			}
		}
		keyMask = append(keyMask, v)
	}
	queryWeights = lay.TokenVector(func(i int) float64 {
		if valid[i] {
			return 1 / float64(m)
		}
		return 0
	})
	return keyMask, queryWeights, nil
}

// EncryptAttentionMasks encrypts the attention masks of valid at the top level.
func (c *Client) EncryptAttentionMasks(valid []bool, lay Layout) (*AttentionMasks, error) {
	km, qw, err := AttentionMaskVectors(valid, lay)
	if err != nil {
		return nil, fmt.Errorf("cannot EncryptAttentionMasks: %w", err)
	}
	out := &AttentionMasks{}
	for _, v := range km {
		ct, err := c.EncryptVector(v, c.Params.MaxLevel())
		if err != nil {
			return nil, fmt.Errorf("cannot EncryptAttentionMasks: %w", err)
		}
		out.KeyMask = append(out.KeyMask, ct)
	}
	if out.QueryWeights, err = c.EncryptVector(qw, c.Params.MaxLevel()); err != nil {
		return nil, fmt.Errorf("cannot EncryptAttentionMasks: %w", err)
	}
	return out, nil
}

// tokenShift rotates tokens cyclically within every block (i -> i+t mod
// Block) with baby-step giant-step rotations: t = T·g + b uses the baby
// rotations b and b - Block (hoisted per ciphertext) and one giant rotation
// T·g, so only 2T + Block/T - 2 Galois keys are needed instead of 2·Block.
// Every shift t > T costs one giant rotation whatever T is, so T is chosen
// to minimize the keys (ties to the smaller T, fewer hoisted babies): T = 8
// for Block = 128, 30 keys (T = 16 would need 38).
type tokenShift struct {
	block, baby, slots int
}

func newTokenShift(block, slots int) tokenShift {
	best, bestKeys := 1, block // T = 1: the baby -Block and Block-1 giants
	for T := 2; T <= block; T <<= 1 {
		if keys := 2*T + block/T - 2; keys < bestKeys {
			best, bestKeys = T, keys
		}
	}
	return tokenShift{block: block, baby: best, slots: slots}
}

// rotations returns every rotation index the shift uses.
func (ts tokenShift) rotations() []int {
	var r []int
	for b := 0; b < ts.baby; b++ {
		if b > 0 {
			r = append(r, b)
		}
		r = append(r, b-ts.block)
	}
	for g := 1; g*ts.baby < ts.block; g++ {
		r = append(r, g*ts.baby)
	}
	return r
}

// babies returns rot_b(ct) and rot_{b-Block}(ct) for b < T (hoisted).
func (w *worker) babies(ts tokenShift, ct *rlwe.Ciphertext) (r, rp []*rlwe.Ciphertext, err error) {
	rots := make([]int, 0, 2*ts.baby)
	for b := 0; b < ts.baby; b++ {
		if b > 0 {
			rots = append(rots, b)
		}
		rots = append(rots, b-ts.block)
	}
	m, err := w.rotateHoistedNew(ct, rots)
	if err != nil {
		return nil, nil, err
	}
	r, rp = make([]*rlwe.Ciphertext, ts.baby), make([]*rlwe.Ciphertext, ts.baby)
	for b := 0; b < ts.baby; b++ {
		if b == 0 {
			r[b] = ct
		} else {
			r[b] = m[b]
		}
		rp[b] = m[b-ts.block]
	}
	return r, rp, nil
}

// shiftMasks returns scale·lo_t and scale·hi_t pre-rotated by -T·g.
func (ts tokenShift) shiftMasks(t int, scale float64) (m1, m2 []float64) {
	g := t / ts.baby
	m1, m2 = make([]float64, ts.slots), make([]float64, ts.slots)
	for s := 0; s < ts.slots; s++ {
		src := ((s-g*ts.baby)%ts.slots + ts.slots) % ts.slots
		if src%ts.block+t < ts.block {
			m1[s] = scale
		} else {
			m2[s] = scale
		}
	}
	return m1, m2
}

// cyc returns scale·(ct with tokens shifted cyclically by t in each block):
// slot i of a block gets slot (i+t) mod Block. It consumes one level. Its
// masks come from pc (nil: encoded for this call only).
func (w *worker) cyc(ts tokenShift, pc *ptCache, r, rp []*rlwe.Ciphertext, t int, scale float64) (*rlwe.Ciphertext, error) {
	acc, err := w.cycBaby(ts, pc, r, rp, t, scale)
	if err != nil {
		return nil, err
	}
	if g := t / ts.baby; g > 0 {
		if err := w.rotate(acc, g*ts.baby, acc); err != nil {
			return nil, err
		}
	}
	return acc, nil
}

// cycBaby returns cyc's result before its giant rotation: rot_{-T·g} of
// the shifted ciphertext, t = T·g + b. A sum of products with such terms
// of one giant step g can be rotated once instead of every term.
func (w *worker) cycBaby(ts tokenShift, pc *ptCache, r, rp []*rlwe.Ciphertext, t int, scale float64) (*rlwe.Ciphertext, error) {
	b := t % ts.baby
	level := r[b].Level()
	if rp[b].Level() < level {
		level = rp[b].Level()
	}
	masks, err := pc.get(ptKey{kind: kindShiftMasks, index: t, level: level, value: scale}, func() ([]*rlwe.Plaintext, error) {
		m1, m2 := ts.shiftMasks(t, scale)
		ptScale := w.levelScale(level)
		p1, err := w.encode(m1, level, ptScale)
		if err != nil {
			return nil, err
		}
		p2, err := w.encode(m2, level, ptScale)
		if err != nil {
			return nil, err
		}
		return []*rlwe.Plaintext{p1, p2}, nil
	})
	if err != nil {
		return nil, err
	}
	p1, p2 := masks[0], masks[1]
	acc := hefloat.NewCiphertext(w.params, 1, level)
	if err := w.eval.Mul(r[b], p1, acc); err != nil {
		return nil, err
	}
	if err := w.eval.MulThenAdd(rp[b], p2, acc); err != nil {
		return nil, err
	}
	if err := w.rescale(acc); err != nil {
		return nil, err
	}
	return acc, nil
}

// giantPre returns rot_{-T·g}(ct) for every giant step g in gs (g > 0) as
// rot_{-Block}(rot_{Block-T·g}(ct)): the first rotations hoisted, every
// key one of the token shift's (its giants and its baby -Block), so the
// regrouped products of a head spanning several ciphertexts need no key of
// their own.
func (w *worker) giantPre(ts tokenShift, ct *rlwe.Ciphertext, gs []int) (map[int]*rlwe.Ciphertext, error) {
	idx := make([]int, 0, len(gs))
	for _, g := range gs {
		idx = append(idx, ts.block-g*ts.baby)
	}
	m, err := w.rotateHoistedNew(ct, idx)
	if err != nil {
		return nil, err
	}
	out := make(map[int]*rlwe.Ciphertext, len(gs))
	for _, g := range gs {
		r := m[ts.block-g*ts.baby]
		if err := w.rotate(r, -ts.block, r); err != nil {
			return nil, err
		}
		out[g] = r
	}
	return out, nil
}

// columnSum is the baby-step giant-step split of the column sums of
// columnSums: its rotations (b·Block for b < baby, g·baby·Block) are those
// of a Cols x Cols matmul on the same layout, so it needs no Galois key of
// its own.
type columnSum struct {
	block, cols, baby int
}

func newColumnSum(lay Layout) columnSum {
	el := &EncodedLinear{In: lay.Cols, Out: lay.Cols, Block: lay.Block, Slots: lay.Slots}
	return columnSum{block: lay.Block, cols: lay.ColsPerCt(), baby: el.bestBaby()}
}

// rotations returns the rotations of columnSums and blockRotations: those
// of the Cols x Cols matmul on the layout.
func (cs columnSum) rotations() []int {
	el := &EncodedLinear{Block: cs.block, Slots: cs.block * cs.cols, Baby: cs.baby}
	return el.Rotations()
}

// columnSums returns the ciphertext whose block u holds sel's value times
// the sum over the c column blocks of ps[u] (the products of c token
// shifts; nil entries are skipped): the scores of c shifts packed into one
// ciphertext. Summing each ps[u] with log2(c) rotations and selecting block
// u would cost c·log2(c) rotations; instead, with R_k = Σ_u sel_{u+k} ⊙
// ps[u] (block u+k of ps[u] moved nowhere yet),
//
//	out = Σ_k rot_{k·Block}(R_k),  since rot_{k·Block}(R_k)[u] = sel·ps[u][u+k],
//
// and k = g·T + b splits the rotations into c baby and c/T giant ones. sels
// holds sel on block w (encoded at ps's level) for every w < c. One level,
// like the selection it replaces; the result is not rescaled.
func (w *worker) columnSums(ps []*rlwe.Ciphertext, sels []*rlwe.Plaintext, cs columnSum) (*rlwe.Ciphertext, error) {
	c, T := cs.cols, cs.baby
	level := -1
	for _, p := range ps {
		if p != nil {
			level = p.Level()
			break
		}
	}
	if level < 0 {
		return nil, fmt.Errorf("cannot columnSums: no product")
	}
	var acc *rlwe.Ciphertext
	tmp := hefloat.NewCiphertext(w.params, 1, level)
	for g := 0; g*T < c; g++ {
		var inner *rlwe.Ciphertext
		for b := 0; b < T && g*T+b < c; b++ {
			k := g*T + b
			r := hefloat.NewCiphertext(w.params, 1, level)
			first := true
			for u, p := range ps {
				if p == nil {
					continue
				}
				var err error
				if first {
					err = w.eval.Mul(p, sels[(u+k)%c], r)
				} else {
					err = w.eval.MulThenAdd(p, sels[(u+k)%c], r)
				}
				if err != nil {
					return nil, err
				}
				first = false
			}
			if b > 0 {
				if err := w.rotate(r, b*cs.block, tmp); err != nil {
					return nil, err
				}
				r, tmp = tmp, r
			}
			if err := w.addInto(&inner, r); err != nil {
				return nil, err
			}
		}
		if g > 0 {
			if err := w.rotate(inner, g*T*cs.block, tmp); err != nil {
				return nil, err
			}
			inner, tmp = tmp, inner
		}
		if err := w.addInto(&acc, inner); err != nil {
			return nil, err
		}
	}
	return acc, nil
}

// blockRotations returns rot_{k·Block}(d) for every k < c, k = g·T + b:
// T-1 hoisted baby rotations and c-T giant ones, with the keys of
// columnSum (the matmul's).
func (w *worker) blockRotations(d *rlwe.Ciphertext, cs columnSum) ([]*rlwe.Ciphertext, error) {
	c, T := cs.cols, cs.baby
	rots := make([]*rlwe.Ciphertext, c)
	rots[0] = d
	if T > 1 {
		idx := make([]int, 0, T-1)
		for b := 1; b < T; b++ {
			idx = append(idx, b*cs.block)
		}
		m, err := w.rotateHoistedNew(d, idx)
		if err != nil {
			return nil, err
		}
		for b := 1; b < T; b++ {
			rots[b] = m[b*cs.block]
		}
	}
	for g := 1; g*T < c; g++ {
		for b := 0; b < T && g*T+b < c; b++ {
			r, err := w.rotateNew(rots[b], g*T*cs.block)
			if err != nil {
				return nil, err
			}
			rots[g*T+b] = r
		}
	}
	return rots, nil
}

// ghostRows returns 1 in the slots of the rows i >= Rows of every block
// (no token of the layout) and 0 elsewhere, or nil when Rows = Block.
func ghostRows(lay Layout) []float64 {
	if lay.Rows == lay.Block {
		return nil
	}
	v := make([]float64, lay.Slots)
	for b := 0; b < lay.Slots; b += lay.Block {
		for i := lay.Rows; i < lay.Block; i++ {
			v[b+i] = 1
		}
	}
	return v
}

// selectors returns, from pc, the c block selectors (value on block v and 0
// elsewhere, for every v < c) encoded at level.
func (w *worker) selectors(pc *ptCache, lay Layout, level int, value float64) ([]*rlwe.Plaintext, error) {
	c := lay.ColsPerCt()
	out := make([]*rlwe.Plaintext, c)
	for v := range c {
		pts, err := pc.get(ptKey{kind: kindSelector, index: v, level: level, value: value}, func() ([]*rlwe.Plaintext, error) {
			pt, err := w.encode(blockSelector(lay, v, value), level, w.levelScale(level))
			return []*rlwe.Plaintext{pt}, err
		})
		if err != nil {
			return nil, err
		}
		out[v] = pts[0]
	}
	return out, nil
}

// blockSelector returns scale on every slot of block u and 0 elsewhere.
func blockSelector(lay Layout, u int, scale float64) []float64 {
	v := make([]float64, lay.Slots)
	for i := u * lay.Block; i < (u+1)*lay.Block; i++ {
		v[i] = scale
	}
	return v
}

// AttentionConfig holds the public constants of the attention block.
type AttentionConfig struct {
	// Heads is the number of heads; the head dimension is Cols/Heads.
	Heads int
	// ExpShift is the public shift subtracted from the scaled logits before
	// the exp polynomial (the approximate forward must use the same).
	ExpShift float64
}

// attention computes the context (softmax(Q·Kᵀ/√d_h)·V per head, heads
// concatenated, before the output projection) and the importance scores.
// With several heads per ciphertext (lay.HeadsPerCt() = hp > 1) q, k and v
// are in the stacked column order and so is the context; the loops below
// run over groups of hp heads, every group's heads in separate token blocks
// of the same ciphertexts (scoreLayout).
func (ev *Evaluator) attention(ctx context.Context, q, k, v *CtMatrix, masks *AttentionMasks, cfg AttentionConfig, degs DegreeSet, br Refresher, tr *Trace) (*CtMatrix, *rlwe.Ciphertext, error) {
	lay := q.Layout
	hp := lay.HeadsPerCt()
	slay := scoreLayout(lay)
	// B is the token block (shifts are cyclic within it), c the column
	// blocks of the score view, of SB = hp·B slots.
	c, B, SB := slay.ColsPerCt(), lay.Block, slay.Block
	dh := lay.Cols / cfg.Heads
	if dh*cfg.Heads != lay.Cols || dh%c != 0 || (hp > 1 && (lay.HeadDim != dh || cfg.Heads%hp != 0)) {
		return nil, nil, fmt.Errorf("cannot attention: %d columns, %d heads, %d columns per ciphertext (head dimension %d)", lay.Cols, cfg.Heads, lay.ColsPerCt(), lay.HeadDim)
	}
	groupsN := cfg.Heads / hp
	cph := dh / c
	nd := numDense(lay)
	if masks == nil || len(masks.KeyMask) != nd || masks.QueryWeights == nil {
		return nil, nil, fmt.Errorf("cannot attention: masks missing or for another layout")
	}
	ts := newTokenShift(B, lay.Slots)
	expRec := ev.reg.Recipe(approx.Exp, approx.High)
	expScalar, expConst := expRec.ChangeOfBasis()
	alpha := expScalar / math.Sqrt(float64(dh))
	beta := expScalar*(-cfg.ExpShift) + expConst

	// Scores: dense[h][g] holds, in block u and slot i, the exp polynomial's
	// input for score (i, i+t mod B), t = groups[g][u].
	groups := denseShifts(lay)
	// Level plan: every stage below runs on only the levels it and the
	// stages up to the next refresh use (ensureFor's horizon, trim): the
	// scores need 3 and the exp a refresh after them in any case; the exp
	// and the key mask share one refresh, the reciprocal and the
	// normalization another, the normalization and A·V a third.
	expDepth := ev.funcDepth(approx.Exp, degs, true)
	qCts := ev.trim(q.Cts, 3, expDepth)
	kCts := ev.trim(k.Cts, 3, expDepth)
	if err := ev.ensureFor(ctx, br, tr, "scores", 3, 3, qCts, kCts); err != nil {
		return nil, nil, err
	}
	dense := make([][]*rlwe.Ciphertext, groupsN)
	cs := newColumnSum(slay)
	pc := newPtCache() // the scores' constants, shared by the heads
	// The hoisted baby rotations of every key ciphertext, one work item
	// each.
	rK, rpK := make([][]*rlwe.Ciphertext, len(kCts)), make([][]*rlwe.Ciphertext, len(kCts))
	err := ev.parallel(ctx, groupsN*cph, func(w *worker, a int) error {
		var err error
		rK[a], rpK[a], err = w.babies(ts, kCts[a])
		return err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("cannot attention (key rotations): %w", err)
	}
	// Per head group, the products of every needed shift (one work item
	// each), then the column sums of each dense group: every core works
	// even when a single head group (several heads stacked) and a single
	// dense ciphertext are left.
	var shiftItems [][2]int // (g, u)
	for g, group := range groups {
		for u := range group {
			shiftItems = append(shiftItems, [2]int{g, u})
		}
	}
	// A head spanning cph > 1 ciphertexts: the products of shift t = T·g +
	// b are Σ_j q_j ⊙ rot_{T·g}(m_j) = rot_{T·g}(Σ_j rot_{-T·g}(q_j) ⊙ m_j)
	// (m_j the masked baby rotations of k_j), one giant rotation per shift
	// instead of cph, for the rotations rot_{-T·g}(q_j) once per head.
	var giantSteps []int // the giant steps g > 0 of the needed shifts
	for t := 0; t < B; t++ {
		if g := t / ts.baby; g > 0 && neededShift(lay, t) && !slices.Contains(giantSteps, g) {
			giantSteps = append(giantSteps, g)
		}
	}
	regroup := cph > 1 && len(giantSteps) > 0
	for h := range dense {
		dense[h] = make([]*rlwe.Ciphertext, nd)
		ps := make([][]*rlwe.Ciphertext, nd) // ps[g][u]: the product for shift groups[g][u]
		for g := range ps {
			ps[g] = make([]*rlwe.Ciphertext, c)
		}
		var qg []map[int]*rlwe.Ciphertext // qg[j][g] = rot_{-T·g}(q_j)
		if regroup {
			qg = make([]map[int]*rlwe.Ciphertext, cph)
			err = ev.parallel(ctx, cph, func(w *worker, j int) error {
				var err error
				qg[j], err = w.giantPre(ts, qCts[h*cph+j], giantSteps)
				return err
			})
			if err != nil {
				break
			}
		}
		err = ev.parallel(ctx, len(shiftItems), func(w *worker, i int) error {
			g, u := shiftItems[i][0], shiftItems[i][1]
			t := groups[g][u]
			giant := t / ts.baby
			var p *rlwe.Ciphertext
			for j := 0; j < cph; j++ {
				var kc, qa *rlwe.Ciphertext
				var err error
				if regroup && giant > 0 {
					kc, err = w.cycBaby(ts, pc, rK[h*cph+j], rpK[h*cph+j], t, 1)
					qa = qg[j][giant]
				} else {
					kc, err = w.cyc(ts, pc, rK[h*cph+j], rpK[h*cph+j], t, 1)
					qa = qCts[h*cph+j]
				}
				if err != nil {
					return err
				}
				if p == nil {
					p = hefloat.NewCiphertext(w.params, 2, min(qa.Level(), kc.Level()))
					if err := w.eval.Mul(qa, kc, p); err != nil {
						return err
					}
				} else if err := w.eval.MulThenAdd(qa, kc, p); err != nil {
					return err
				}
			}
			if err := w.eval.Relinearize(p, p); err != nil {
				return err
			}
			if regroup && giant > 0 {
				if err := w.rotate(p, giant*ts.baby, p); err != nil {
					return err
				}
			}
			if err := w.rescale(p); err != nil {
				return err
			}
			ps[g][u] = p
			return nil
		})
		if err != nil {
			break
		}
		// The column sum over the c blocks of ps[g][u] is the score of
		// shift groups[g][u].
		err = ev.parallel(ctx, nd, func(w *worker, g int) error {
			level := -1
			for _, p := range ps[g] {
				if p != nil {
					level = p.Level()
					break
				}
			}
			if level < 0 {
				return nil // no needed shift in this group: dense[h][g] stays nil
			}
			sels, err := w.selectors(pc, slay, level, alpha)
			if err != nil {
				return err
			}
			acc, err := w.columnSums(ps[g], sels, cs)
			if err != nil {
				return err
			}
			if err := w.rescale(acc); err != nil {
				return err
			}
			if err := w.eval.Add(acc, beta, acc); err != nil {
				return err
			}
			dense[h][g] = acc
			return nil
		})
		if err != nil {
			break
		}
	}
	if err != nil {
		return nil, nil, fmt.Errorf("cannot attention (scores): %w", err)
	}
	// flat lists the computed dense ciphertexts (groups without a needed
	// shift stay nil and are skipped throughout); groupOf[i] and headOf[i]
	// say where flat's i-th ciphertext belongs.
	var groupOf, headOf []int
	for h := range dense {
		for g, d := range dense[h] {
			if d != nil {
				groupOf, headOf = append(groupOf, g), append(headOf, h)
			}
		}
	}
	flat := func() []*rlwe.Ciphertext {
		out := make([]*rlwe.Ciphertext, len(groupOf))
		for i := range out {
			out[i] = dense[headOf[i]][groupOf[i]]
		}
		return out
	}
	unflat := func(f []*rlwe.Ciphertext) {
		for i, ct := range f {
			dense[headOf[i]][groupOf[i]] = ct
		}
	}

	// exp, then the padding mask on keys.
	all := flat()
	if err := ev.ensureFor(ctx, br, tr, "exp", expDepth, expDepth+1, all); err != nil {
		return nil, nil, err
	}
	keyMask := append([]*rlwe.Ciphertext(nil), masks.KeyMask...)
	err = ev.parallel(ctx, len(all), func(w *worker, i int) error {
		e, err := w.evalByDegree(ev.reg, approx.Exp, degs, lay, all[i], nil)
		all[i] = e
		return err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("cannot attention (exp): %w", err)
	}
	if err := ev.ensure(ctx, br, tr, "key mask", 1, all, keyMask); err != nil {
		return nil, nil, err
	}
	err = ev.parallel(ctx, len(all), func(w *worker, i int) error {
		e, err := w.mulRelinNew(all[i], keyMask[groupOf[i]])
		all[i] = e
		return err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("cannot attention (key mask): %w", err)
	}
	unflat(all)

	// Row sums and their reciprocals, one ciphertext per head (group).
	sums := make([]*rlwe.Ciphertext, groupsN)
	err = ev.parallel(ctx, groupsN, func(w *worker, h int) error {
		var s *rlwe.Ciphertext
		for _, e := range dense[h] {
			if e == nil {
				continue
			}
			if err := w.addInto(&s, e); err != nil {
				return err
			}
		}
		var err error
		if sums[h], err = w.rotateSum(s, SB, c); err != nil {
			return err
		}
		// The block's rows i >= Rows got no attention (sum 0): give them the
		// sum 1, inside the reciprocal's interval; their normalized scores
		// stay exactly 0.
		if ghost := ghostRows(lay); ghost != nil {
			return w.eval.Add(sums[h], ghost, sums[h])
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("cannot attention (row sums): %w", err)
	}
	recDepth := ev.funcDepth(approx.Reciprocal, degs, false)
	if err := ev.applyRefreshing(ctx, br, tr, "reciprocal", approx.Reciprocal, degs, lay, recDepth+1, sums); err != nil {
		return nil, nil, fmt.Errorf("cannot attention (reciprocal): %w", err)
	}
	all = flat()
	if err := ev.ensureFor(ctx, br, tr, "normalize", 1, 1+3, all, sums); err != nil {
		return nil, nil, err
	}
	err = ev.parallel(ctx, len(all), func(w *worker, i int) error {
		a, err := w.mulRelinNew(all[i], sums[headOf[i]])
		all[i] = a
		return err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("cannot attention (normalize): %w", err)
	}
	unflat(all)

	// A·V and the importance scores.
	all = flat()
	vCts := append([]*rlwe.Ciphertext(nil), v.Cts...)
	qw := []*rlwe.Ciphertext{masks.QueryWeights}
	if err := ev.ensureFor(ctx, br, tr, "attention·V", 3, 3, all, vCts, qw); err != nil {
		return nil, nil, err
	}
	unflat(all)
	// The products take the lower level of their factors: V and the query
	// weights need no more levels than the attention weights have.
	avLevel := ev.params.MaxLevel()
	for _, ct := range all {
		avLevel = min(avLevel, ct.Level())
	}
	vCts = dropTo(vCts, avLevel)
	qw = dropTo(qw, avLevel)
	rV, rpV := make([][]*rlwe.Ciphertext, len(vCts)), make([][]*rlwe.Ciphertext, len(vCts))
	err = ev.parallel(ctx, len(vCts), func(w *worker, a int) error {
		var err error
		rV[a], rpV[a], err = w.babies(ts, vCts[a])
		return err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("cannot attention (V rotations): %w", err)
	}
	nw := len(ev.workers)
	if nw > B {
		nw = B
	}
	type partial struct {
		ctx []*rlwe.Ciphertext
		imp *rlwe.Ciphertext
	}
	var shifts []int
	for t := 0; t < B; t++ {
		if neededShift(lay, t) {
			shifts = append(shifts, t)
		}
	}
	nw = min(nw, len(shifts))
	// The attention weights of shift t = g·c + u, broadcast from block u of
	// dense[h][g] to every block, for every head and needed shift: from the
	// c block rotations of each dense ciphertext, at_u = Σ_k sel_{u-k} ⊙
	// rot_{k·Block}(d) (block v of rot_{k·Block}(d) is block v+k of d), c
	// rotations per dense ciphertext instead of log2(c) per shift.
	ats := make([][]*rlwe.Ciphertext, groupsN)
	pc = newPtCache() // A·V's constants (the scores' are dropped)
	// Per head group: the block rotations of its dense ciphertexts (one
	// work item each), then one broadcast per shift (one item each).
	for h := range ats {
		ats[h] = make([]*rlwe.Ciphertext, B)
		rots := make([][]*rlwe.Ciphertext, nd)
		err = ev.parallel(ctx, nd, func(w *worker, g int) error {
			if dense[h][g] == nil {
				return nil
			}
			var err error
			rots[g], err = w.blockRotations(dense[h][g], cs)
			return err
		})
		if err != nil {
			break
		}
		err = ev.parallel(ctx, len(shiftItems), func(w *worker, i int) error {
			g, u := shiftItems[i][0], shiftItems[i][1]
			if rots[g] == nil {
				return nil
			}
			level := dense[h][g].Level()
			sels, err := w.selectors(pc, slay, level, 1)
			if err != nil {
				return err
			}
			at := hefloat.NewCiphertext(w.params, 1, level)
			for k, r := range rots[g] {
				sel := sels[((u-k)%c+c)%c]
				if k == 0 {
					err = w.eval.Mul(r, sel, at)
				} else {
					err = w.eval.MulThenAdd(r, sel, at)
				}
				if err != nil {
					return err
				}
			}
			if err := w.rescale(at); err != nil {
				return err
			}
			ats[h][groups[g][u]] = at
			return nil
		})
		if err != nil {
			break
		}
	}
	if err != nil {
		return nil, nil, fmt.Errorf("cannot attention (A·V weights): %w", err)
	}
	// With cph > 1 the shifts are taken by giant step: Σ_t at_t ⊙ cyc_t(v)
	// over the shifts t = T·g + b of one g is rot_{T·g}(Σ_t rot_{-T·g}(at_t)
	// ⊙ m_t(v)), one giant rotation per giant step and ciphertext instead
	// of one per shift and ciphertext; rot_{-T·g}(at_t) is the rotation by
	// Block - T·g, since every column block of at_t is the same (a
	// broadcast). Without it each shift is its own step.
	var steps [][]int // the needed shifts, by step
	if regroup {
		byG := map[int][]int{}
		var gs []int
		for _, t := range shifts {
			g := t / ts.baby
			if _, ok := byG[g]; !ok {
				gs = append(gs, g)
			}
			byG[g] = append(byG[g], t)
		}
		for _, g := range gs {
			steps = append(steps, byG[g])
		}
	} else {
		for _, t := range shifts {
			steps = append(steps, []int{t})
		}
	}
	nw = min(nw, len(steps))
	parts := make([]partial, nw)
	err = ev.parallel(ctx, nw, func(w *worker, chunk int) error {
		acc := make([]*rlwe.Ciphertext, len(vCts))
		var imp *rlwe.Ciphertext
		for _, step := range steps[chunk*len(steps)/nw : (chunk+1)*len(steps)/nw] {
			giant := 0
			if regroup {
				giant = step[0] / ts.baby
			}
			inner := acc // the products of this step: rotated into acc at its end
			if giant > 0 {
				inner = make([]*rlwe.Ciphertext, len(vCts))
			}
			for _, t := range step {
				if err := ctx.Err(); err != nil {
					return err
				}
				var y *rlwe.Ciphertext
				for h := 0; h < groupsN; h++ {
					at := ats[h][t]
					if at == nil {
						return fmt.Errorf("no attention weights for head %d, shift %d", h, t)
					}
					ats[h][t] = nil // free it once used
					atr := at
					if giant > 0 {
						var err error
						if atr, err = w.rotateNew(at, B-giant*ts.baby); err != nil {
							return err
						}
					}
					for j := 0; j < cph; j++ {
						a := h*cph + j
						var vc *rlwe.Ciphertext
						var err error
						if giant > 0 {
							vc, err = w.cycBaby(ts, pc, rV[a], rpV[a], t, 1)
						} else {
							vc, err = w.cyc(ts, pc, rV[a], rpV[a], t, 1)
						}
						if err != nil {
							return err
						}
						if inner[a] == nil {
							inner[a] = hefloat.NewCiphertext(w.params, 2, min(atr.Level(), vc.Level()))
							if err := w.eval.Mul(atr, vc, inner[a]); err != nil {
								return err
							}
						} else if err := w.eval.MulThenAdd(atr, vc, inner[a]); err != nil {
							return err
						}
					}
					if err := w.addInto(&y, at); err != nil {
						return err
					}
				}
				z, err := w.mulRelinNew(y, qw[0])
				if err != nil {
					return err
				}
				s := (B - t) % B
				zr, zrp, err := w.babiesOne(ts, z, s%ts.baby)
				if err != nil {
					return err
				}
				zs, err := w.cyc(ts, pc, zr, zrp, s, 1/float64(cfg.Heads))
				if err != nil {
					return err
				}
				if err := w.addInto(&imp, zs); err != nil {
					return err
				}
			}
			if giant > 0 {
				for a, ct := range inner {
					if ct == nil {
						continue
					}
					if err := w.eval.Relinearize(ct, ct); err != nil {
						return err
					}
					if err := w.rotate(ct, giant*ts.baby, ct); err != nil {
						return err
					}
					if err := w.addInto(&acc[a], ct); err != nil {
						return err
					}
				}
			}
		}
		parts[chunk] = partial{ctx: acc, imp: imp}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("cannot attention (A·V): %w", err)
	}
	out := &CtMatrix{Layout: lay, Cts: make([]*rlwe.Ciphertext, len(vCts))}
	var imp *rlwe.Ciphertext
	w0 := ev.workers[0]
	for _, p := range parts {
		for a, ct := range p.ctx {
			if ct == nil {
				continue
			}
			if err := w0.addInto(&out.Cts[a], ct); err != nil {
				return nil, nil, fmt.Errorf("cannot attention: %w", err)
			}
		}
		if p.imp != nil {
			if err := w0.addInto(&imp, p.imp); err != nil {
				return nil, nil, fmt.Errorf("cannot attention: %w", err)
			}
		}
	}
	err = ev.parallel(ctx, len(out.Cts), func(w *worker, a int) error {
		if out.Cts[a].Degree() == 2 {
			if err := w.eval.Relinearize(out.Cts[a], out.Cts[a]); err != nil {
				return err
			}
		}
		return w.rescale(out.Cts[a])
	})
	if err != nil {
		return nil, nil, fmt.Errorf("cannot attention: %w", err)
	}
	if hp > 1 {
		// Each token block of imp holds its head's share: add the hp
		// blocks of every column block (all column blocks are equal, the
		// attention weights having been broadcast to all of them), so
		// that every token block holds the sum over all heads.
		if imp, err = w0.rotateSum(imp, B, hp); err != nil {
			return nil, nil, fmt.Errorf("cannot attention: %w", err)
		}
	}
	return out, imp, nil
}

// babiesOne returns slices r, rp with r[b] = rot_b(ct), rp[b] = rot_{b-B}(ct)
// filled for the one baby index b (for cyc with a single shift).
func (w *worker) babiesOne(ts tokenShift, ct *rlwe.Ciphertext, b int) (r, rp []*rlwe.Ciphertext, err error) {
	r, rp = make([]*rlwe.Ciphertext, ts.baby), make([]*rlwe.Ciphertext, ts.baby)
	rots := []int{b - ts.block}
	if b > 0 {
		rots = append(rots, b)
	}
	m, err := w.rotateHoistedNew(ct, rots)
	if err != nil {
		return nil, nil, err
	}
	if b > 0 {
		r[b] = m[b]
	} else {
		r[b] = ct
	}
	rp[b] = m[b-ts.block]
	return r, rp, nil
}
