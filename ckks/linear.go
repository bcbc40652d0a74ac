package ckks

import (
	"context"
	"fmt"
	"math"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"
	"github.com/tuneinsight/lattigo/v5/he/hefloat"

	"github.com/cipherprune/cipherprune/models"
)

// EncodedLinear is a dense layer y = Scale·(x·Wᵀ + b) + Shift prepared for
// the block diagonal method with baby-step giant-step on the column-block
// Layout.
//
// With c columns per ciphertext, output ciphertext o is
//
//	y_o = Σ_g rot_{g·c1·B}( Σ_a Σ_{b<c1} P[a,o,g,b] ⊙ rot_{b·B}(x_a) )
//
// where B is the block size, c1 the baby step, a runs over input
// ciphertexts and P[a,o,g,b] holds, in block p and token slot i < n, the
// weight W[o·c + p, a·c + (p + g·c1 + b) mod c] (columns of the diagonal
// g·c1 + b, pre-rotated by -g·c1 blocks). The baby rotations are hoisted
// (one key-switch decomposition per input ciphertext) and shared by every
// output; the giant rotations are one per output and giant step.
//
// Scale and Shift fold the change of basis of the nonlinearity that follows
// (GELU, tanh) into the layer, saving the level it would cost.
//
// The plaintext diagonals are encoded on the fly by default (they are
// Block times larger than the weights: 9216 plaintexts for a 768x768 layer
// at N=2^14); Precompute caches them for one input level when memory allows.
type EncodedLinear struct {
	// In and Out are the input and output widths.
	In, Out int
	// Block is the token block size of the layout it applies to.
	Block int
	// Slots is the number of slots per ciphertext.
	Slots int
	// Baby is c1, the baby step (a power of two dividing c).
	Baby int
	// Scale and Shift are the output affine map (1 and 0 for a plain layer).
	Scale, Shift float64
	// W is the weight matrix, Out x In, and Bias its bias (Out).
	W    models.Matrix
	Bias []float64

	cacheLevel int
	cacheRows  int
	cache      [][]*rlwe.Plaintext // [o][(a*giants+g)*Baby+b], nil when zero
}

// NewEncodedLinear prepares l for layouts of the given block size and slots.
// scale and shift are the output affine map (1, 0 for none).
func NewEncodedLinear(l *models.Linear, block, slots int, scale, shift float64) (*EncodedLinear, error) {
	if l == nil || l.Weight.Rows != len(l.Bias) || l.Weight.Rows < 1 || l.Weight.Cols < 1 {
		return nil, fmt.Errorf("cannot NewEncodedLinear: invalid linear layer")
	}
	if block < 1 || slots%block != 0 {
		return nil, fmt.Errorf("cannot NewEncodedLinear: block %d does not divide slots %d", block, slots)
	}
	el := &EncodedLinear{
		In: l.Weight.Cols, Out: l.Weight.Rows, Block: block, Slots: slots,
		Scale: scale, Shift: shift,
		W: l.Weight.Clone(), Bias: append([]float64(nil), l.Bias...),
		cacheLevel: -1,
	}
	el.Baby = el.bestBaby()
	return el, nil
}

func (el *EncodedLinear) cols() int { return el.Slots / el.Block }
func (el *EncodedLinear) nIn() int  { c := el.cols(); return (el.In + c - 1) / c }
func (el *EncodedLinear) nOut() int { c := el.cols(); return (el.Out + c - 1) / c }

// giants returns the number of giant steps.
func (el *EncodedLinear) giants() int { return el.cols() / el.Baby }

// maxGiants caps the giant steps of a matmul. Giant rotations are not
// hoisted and each giant index needs its own Galois key (34.6 MB at
// Interactive14), so a layer with few output ciphertexts (the classifier)
// must not pick a small baby step whose many giant indices no other layer
// uses: with the cap, every giant index of BERT-base's classifier is already
// a key of its 3072x768 layer (BERT-base at n=128: 65 keys instead of 77).
const maxGiants = 16

// bestBaby picks c1 minimizing nIn·(c1-1) + nOut·(c/c1-1) rotations with at
// most maxGiants giant steps.
func (el *EncodedLinear) bestBaby() int {
	c := el.cols()
	best, bestCost := c, math.MaxInt
	for b := 1; b <= c; b <<= 1 {
		if c/b > maxGiants {
			continue
		}
		cost := el.nIn()*(b-1) + el.nOut()*(c/b-1)
		if cost < bestCost {
			best, bestCost = b, cost
		}
	}
	return best
}

// Rotations returns the rotation indices the layer uses (baby and giant steps).
func (el *EncodedLinear) Rotations() []int {
	var r []int
	for b := 1; b < el.Baby; b++ {
		r = append(r, b*el.Block)
	}
	for g := 1; g < el.giants(); g++ {
		r = append(r, g*el.Baby*el.Block)
	}
	return r
}

// RotationCount returns the number of key switches one application costs:
// hoisted baby rotations and giant rotations.
func (el *EncodedLinear) RotationCount() (baby, giant int) {
	return el.nIn() * (el.Baby - 1), el.nOut() * (el.giants() - 1)
}

// diag writes into v the plaintext P[a,o,g,b] for n token rows and reports
// whether it is non-zero.
func (el *EncodedLinear) diag(v []float64, n, a, o, g, b int) bool {
	c := el.cols()
	nz := false
	for p := 0; p < c; p++ {
		row := o*c + ((p-g*el.Baby)%c+c)%c
		col := a*c + (p+b)%c
		var x float64
		if row < el.Out && col < el.In {
			x = el.Scale * el.W.Data[row*el.In+col]
		}
		blk := v[p*el.Block : (p+1)*el.Block]
		for i := range blk {
			if i < n {
				blk[i] = x
			} else {
				blk[i] = 0
			}
		}
		if x != 0 {
			nz = true
		}
	}
	return nz
}

// biasVec returns the slot vector Scale·b + Shift of output ciphertext o.
func (el *EncodedLinear) biasVec(n, o int) []float64 {
	c := el.cols()
	v := make([]float64, el.Slots)
	for p := 0; p < c; p++ {
		row := o*c + p
		if row >= el.Out {
			break
		}
		x := el.Scale*el.Bias[row] + el.Shift
		for i := 0; i < n; i++ {
			v[p*el.Block+i] = x
		}
	}
	return v
}

// Precompute encodes every plaintext diagonal for inputs of n rows at level,
// so that Apply at that level and row count encodes nothing. It needs
// nIn·nOut·c plaintexts of (level+1)·N words: check the memory first.
func (ev *Evaluator) Precompute(ctx context.Context, el *EncodedLinear, n, level int) error {
	w0 := ev.workers[0]
	scale := w0.levelScale(level)
	cache := make([][]*rlwe.Plaintext, el.nOut())
	err := ev.parallel(ctx, el.nOut(), func(w *worker, o int) error {
		v := make([]float64, el.Slots)
		pts := make([]*rlwe.Plaintext, el.nIn()*el.cols())
		for a := 0; a < el.nIn(); a++ {
			for g := 0; g < el.giants(); g++ {
				for b := 0; b < el.Baby; b++ {
					if !el.diag(v, n, a, o, g, b) {
						continue
					}
					pt, err := w.encode(v, level, scale)
					if err != nil {
						return err
					}
					pts[(a*el.giants()+g)*el.Baby+b] = pt
				}
			}
		}
		cache[o] = pts
		return nil
	})
	if err != nil {
		return fmt.Errorf("cannot Precompute: %w", err)
	}
	el.cache, el.cacheLevel, el.cacheRows = cache, level, n
	return nil
}

// Linear returns x·Wᵀ+b (with the layer's output affine map) for x in the
// column-block layout; it consumes one level.
func (ev *Evaluator) Linear(ctx context.Context, x *CtMatrix, el *EncodedLinear) (*CtMatrix, error) {
	if err := x.Validate(); err != nil {
		return nil, fmt.Errorf("cannot Linear: %w", err)
	}
	lay := x.Layout
	if lay.Cols != el.In || lay.Block != el.Block || lay.Slots != el.Slots {
		return nil, fmt.Errorf("cannot Linear: input %dx%d block %d, layer expects %d columns block %d", lay.Rows, lay.Cols, lay.Block, el.In, el.Block)
	}
	level := x.Level()
	if level < 1 {
		return nil, fmt.Errorf("cannot Linear: input at level %d, needs 1", level)
	}
	if cap := max(ev.linearLevel, ev.reserve+1); ev.linearLevel > 0 && level > cap {
		level = cap // the inputs are dropped to it below
	}
	n := lay.Rows
	// Baby steps: hoisted rotations of every input ciphertext.
	babyRots := make([]int, 0, el.Baby)
	for b := 1; b < el.Baby; b++ {
		babyRots = append(babyRots, b*el.Block)
	}
	rot := make([][]*rlwe.Ciphertext, el.nIn())
	err := ev.parallel(ctx, el.nIn(), func(w *worker, a int) error {
		in := x.Cts[a]
		if in.Level() > level {
			in = w.eval.DropLevelNew(in, in.Level()-level)
		}
		rot[a] = make([]*rlwe.Ciphertext, el.Baby)
		rot[a][0] = in
		if len(babyRots) == 0 {
			return nil
		}
		m, err := w.rotateHoistedNew(in, babyRots)
		if err != nil {
			return err
		}
		for b := 1; b < el.Baby; b++ {
			rot[a][b] = m[b*el.Block]
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("cannot Linear: %w", err)
	}
	useCache := el.cache != nil && el.cacheLevel == level && el.cacheRows == n
	out := &CtMatrix{Layout: lay.WithCols(el.Out), Cts: make([]*rlwe.Ciphertext, el.nOut())}
	// The giant steps of every output, o-major, split into one contiguous
	// range per worker (so that a matmul with a single output ciphertext
	// uses every core too); each range leaves one partial sum per output it
	// touches, at most two ranges share an output's sum.
	giants, nw := el.giants(), len(ev.workers)
	items := el.nOut() * giants
	nw = min(nw, items)
	parts := make([][]*rlwe.Ciphertext, nw)
	err = ev.parallel(ctx, nw, func(w *worker, k int) error {
		scale := w.levelScale(level)
		v := make([]float64, el.Slots)
		tmp := hefloat.NewCiphertext(w.params, 1, level)
		parts[k] = make([]*rlwe.Ciphertext, el.nOut())
		for it := k * items / nw; it < (k+1)*items/nw; it++ {
			if err := ctx.Err(); err != nil {
				return err
			}
			o, g := it/giants, it%giants
			var acc *rlwe.Ciphertext
			for a := 0; a < el.nIn(); a++ {
				for b := 0; b < el.Baby; b++ {
					var pt *rlwe.Plaintext
					if useCache {
						pt = el.cache[o][(a*giants+g)*el.Baby+b]
						if pt == nil {
							continue
						}
					} else {
						if !el.diag(v, n, a, o, g, b) {
							continue
						}
						var err error
						if pt, err = w.scratchEncode(v, level, scale); err != nil {
							return err
						}
					}
					if acc == nil {
						acc = hefloat.NewCiphertext(w.params, 1, level)
						if err := w.eval.Mul(rot[a][b], pt, acc); err != nil {
							return err
						}
					} else if err := w.eval.MulThenAdd(rot[a][b], pt, acc); err != nil {
						return err
					}
				}
			}
			if acc == nil {
				continue
			}
			if g > 0 {
				if err := w.rotate(acc, g*el.Baby*el.Block, tmp); err != nil {
					return err
				}
				acc, tmp = tmp, acc
			}
			if y := parts[k][o]; y == nil {
				parts[k][o] = acc
			} else if err := w.eval.Add(y, acc, y); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("cannot Linear: %w", err)
	}
	err = ev.parallel(ctx, el.nOut(), func(w *worker, o int) error {
		var y *rlwe.Ciphertext
		for k := range parts {
			if p := parts[k][o]; p != nil {
				if y == nil {
					y = p
				} else if err := w.eval.Add(y, p, y); err != nil {
					return err
				}
			}
		}
		if y == nil { // an all-zero block of outputs
			y = hefloat.NewCiphertext(w.params, 1, level)
			y.Scale = x.Cts[0].Scale.Mul(w.levelScale(level))
		}
		if err := w.rescale(y); err != nil {
			return err
		}
		if err := w.eval.Add(y, el.biasVec(n, o), y); err != nil {
			return err
		}
		out.Cts[o] = y
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("cannot Linear: %w", err)
	}
	return out, nil
}
