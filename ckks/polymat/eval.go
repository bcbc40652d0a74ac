package polymat

import (
	"context"
	"errors"
	"fmt"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"
)

// accBytes is the working set of accumulators a worker keeps per
// coefficient chunk: small enough for a core's L2 cache, so that every
// input ciphertext read from memory serves a whole group of outputs.
const accBytes = 256 << 10

// Evaluator computes the products of a Layout. It holds no per-call state
// and is safe for concurrent use.
type Evaluator struct {
	params  Parameters
	workers int
}

// NewEvaluator returns an evaluator that runs on workers goroutines (at
// least one).
func NewEvaluator(params Parameters, workers int) *Evaluator {
	return &Evaluator{params: params, workers: max(1, workers)}
}

// Workers returns the number of goroutines.
func (ev *Evaluator) Workers() int { return ev.workers }

// checkInputs checks the input ciphertexts of lay: degree 1, every limb,
// NTT domain, standard (not Montgomery) form.
func (ev *Evaluator) checkInputs(lay Layout, in []*rlwe.Ciphertext) error {
	if lay.n != ev.params.N() {
		return fmt.Errorf("layout for N = %d, parameters for %d", lay.n, ev.params.N())
	}
	if len(in) != lay.Inputs() {
		return fmt.Errorf("%d input ciphertexts, layout has %d", len(in), lay.Inputs())
	}
	for k, ct := range in {
		switch {
		case ct == nil || ct.MetaData == nil:
			return fmt.Errorf("input %d: nil ciphertext", k)
		case ct.Degree() != 1:
			return fmt.Errorf("input %d: degree %d, want 1", k, ct.Degree())
		case ct.Level() != ev.params.Limbs()-1:
			return fmt.Errorf("input %d: level %d, want %d", k, ct.Level(), ev.params.Limbs()-1)
		case !ct.IsNTT || ct.IsMontgomery:
			return fmt.Errorf("input %d: not in the NTT domain and standard form", k)
		case ct.Value[0].N() != ev.params.N():
			return fmt.Errorf("input %d: degree %d, want %d", k, ct.Value[0].N(), ev.params.N())
		}
	}
	return nil
}

// MulThen computes every output ciphertext of lay,
//
//	out(i, j) = Σ_a in[lay.InputIndex(i, a)] · W(a, j),
//
// in the NTT domain with coefficients in [0, q), and hands each to
// then(worker, o, ct) (o = lay.OutputIndex(i, j)) on the worker that
// computed it, as soon as it is complete; then may keep ct and runs
// concurrently on different workers. The products are lazy Montgomery
// multiply-accumulates (the weights are in Montgomery form, so no
// conversion happens per call), reduced every Parameters.MaxLazy terms and
// at the end.
//
// Work is split by groups of column blocks; within a group, coefficients
// are processed in chunks so that the accumulators of the group stay in
// cache while every input block and weight block streams through once.
func (ev *Evaluator) MulThen(ctx context.Context, lay Layout, in []*rlwe.Ciphertext, w *EncodedWeights, then func(worker, o int, ct *rlwe.Ciphertext) error) error {
	if w == nil {
		return errors.New("cannot MulThen: nil weights")
	}
	if err := w.Compatible(lay); err != nil {
		return fmt.Errorf("cannot MulThen: %w", err)
	}
	if !w.params.Equal(ev.params) {
		return errors.New("cannot MulThen: weights for other parameters")
	}
	if err := ev.checkInputs(lay, in); err != nil {
		return fmt.Errorf("cannot MulThen: %w", err)
	}
	plan := ev.plan(lay)
	groups := ceilDiv(lay.nJ, plan.cols)
	err := parallel(ctx, ev.workers, groups, func(worker, g int) error {
		j0 := g * plan.cols
		j1 := min(lay.nJ, j0+plan.cols)
		outs := ev.mulGroup(lay, in, w, j0, j1, plan.chunk)
		for i := 0; i < lay.nI; i++ {
			for j := j0; j < j1; j++ {
				if err := then(worker, lay.OutputIndex(i, j), outs[i*(j1-j0)+(j-j0)]); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("cannot MulThen: %w", err)
	}
	return nil
}

// MulNew returns all output ciphertexts of lay, indexed by OutputIndex.
func (ev *Evaluator) MulNew(ctx context.Context, lay Layout, in []*rlwe.Ciphertext, w *EncodedWeights) ([]*rlwe.Ciphertext, error) {
	out := make([]*rlwe.Ciphertext, lay.Outputs())
	err := ev.MulThen(ctx, lay, in, w, func(_, o int, ct *rlwe.Ciphertext) error {
		out[o] = ct
		return nil
	})
	return out, err
}

// mulPlan is how one call splits its work: cols column blocks per task,
// chunk coefficients per pass.
type mulPlan struct {
	cols, chunk int
}

func (ev *Evaluator) plan(lay Layout) mulPlan {
	limbs := ev.params.Limbs()
	// Enough outputs per task to reuse each input chunk many times, but at
	// least two tasks per worker for balance.
	cols := max(1, min(ceilDiv(32, lay.nI), ceilDiv(lay.nJ, 2*ev.workers)))
	perCoeff := lay.nI * cols * 2 * limbs * 8
	chunk := accBytes / perCoeff
	chunk = max(64, min(lay.n, chunk&^63))
	for lay.n%chunk != 0 {
		chunk -= 64 // N is a power of two, so 64 divides it
	}
	return mulPlan{cols: cols, chunk: chunk}
}

// mulGroup computes the outputs (i, j) for every i and j in [j0, j1),
// indexed i·(j1-j0) + (j-j0).
func (ev *Evaluator) mulGroup(lay Layout, in []*rlwe.Ciphertext, w *EncodedWeights, j0, j1, chunk int) []*rlwe.Ciphertext {
	params := ev.params
	ringQ := params.RingQ()
	limbs := params.Limbs()
	nc := j1 - j0
	outs := make([]*rlwe.Ciphertext, lay.nI*nc)
	for k := range outs {
		ct := rlwe.NewCiphertext(params.rlwe, 1, limbs-1)
		ct.IsNTT = true
		outs[k] = ct
	}
	// acc[((i·nc + jj)·2 + p)·limbs + l] is a chunk of output (i, j0+jj),
	// polynomial p, limb l.
	nAcc := lay.nI * nc * 2 * limbs
	accBuf := make([]uint64, nAcc*chunk)
	acc := make([][]uint64, nAcc)
	for k := range acc {
		acc[k] = accBuf[k*chunk : (k+1)*chunk]
	}
	maxLazy := params.maxLazy
	for s := 0; s < lay.n; s += chunk {
		e := s + chunk
		clear(accBuf)
		lazy := 0
		for a := 0; a < lay.nA; a++ {
			if lazy == maxLazy {
				for k, v := range acc {
					ringQ.SubRings[k%limbs].ReduceLazy(v, v)
				}
				lazy = 0
			}
			for l := 0; l < limbs; l++ {
				sub := ringQ.SubRings[l]
				for jj := 0; jj < nc; jj++ {
					wv := w.pts[a*w.nJ+j0+jj].Coeffs[l][s:e]
					for i := 0; i < lay.nI; i++ {
						ct := in[lay.InputIndex(i, a)]
						base := (i*nc + jj) * 2 * limbs
						sub.MulCoeffsMontgomeryLazyThenAddLazy(ct.Value[0].Coeffs[l][s:e], wv, acc[base+l])
						sub.MulCoeffsMontgomeryLazyThenAddLazy(ct.Value[1].Coeffs[l][s:e], wv, acc[base+limbs+l])
					}
				}
			}
			lazy++
		}
		for i := 0; i < lay.nI; i++ {
			for jj := 0; jj < nc; jj++ {
				ct := outs[i*nc+jj]
				base := (i*nc + jj) * 2 * limbs
				for p := 0; p < 2; p++ {
					for l := 0; l < limbs; l++ {
						ringQ.SubRings[l].Reduce(acc[base+p*limbs+l], ct.Value[p].Coeffs[l][s:e])
					}
				}
			}
		}
	}
	return outs
}
