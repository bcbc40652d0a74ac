package polymat

import (
	"context"
	"errors"
	"fmt"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"
	"github.com/tuneinsight/lattigo/v5/ring"
	"github.com/tuneinsight/lattigo/v5/ring/ringqp"

	"github.com/cipherprune/cipherprune/kernels"
)

// Evaluator computes the products of a Layout through a kernels.Backend
// (kernels.MulMatrixMontgomery, and the NTT of the weights it encodes). It holds no per-call state and is safe for
// concurrent use.
type Evaluator struct {
	params  Parameters
	workers int
	be      kernels.Backend
}

// NewEvaluator returns an evaluator on the CPU reference backend of
// package kernels (its variant chosen for this CPU) that runs on workers
// goroutines (at least one).
func NewEvaluator(params Parameters, workers int) *Evaluator {
	be, err := kernels.NewCPU(params.kernels, kernels.CPUOptions{})
	if err != nil {
		panic(fmt.Errorf("polymat: CPU backend: %w", err)) // params.kernels was validated with params
	}
	return &Evaluator{params: params, workers: max(1, workers), be: be}
}

// NewEvaluatorWithBackend returns an evaluator whose products run on be,
// which must have been opened for params.KernelParams() (the same ring),
// with workers goroutines issuing operations.
func NewEvaluatorWithBackend(params Parameters, workers int, be kernels.Backend) (*Evaluator, error) {
	if be == nil {
		return nil, errors.New("cannot NewEvaluatorWithBackend: nil backend")
	}
	kp := be.Params()
	if kp.N() != params.N() || kp.MaxLevelQ() != params.Limbs()-1 {
		return nil, fmt.Errorf("cannot NewEvaluatorWithBackend: backend for N = %d with %d primes, parameters %v", kp.N(), kp.MaxLevelQ()+1, params)
	}
	for i, m := range kp.Q() {
		if m.Q != params.moduli[i] {
			return nil, fmt.Errorf("cannot NewEvaluatorWithBackend: backend prime %d is %d, parameters have %d", i, m.Q, params.moduli[i])
		}
	}
	return &Evaluator{params: params, workers: max(1, workers), be: be}, nil
}

// Workers returns the number of goroutines.
func (ev *Evaluator) Workers() int { return ev.workers }

// Backend returns the backend the products run on.
func (ev *Evaluator) Backend() kernels.Backend { return ev.be }

func (ev *Evaluator) basis() kernels.Basis {
	return kernels.Basis{LevelQ: ev.params.Limbs() - 1, LevelP: -1}
}

// toWeight uploads the coefficient-domain plaintext p (in Montgomery
// form, from encodeWeightBlock) into dst (one polynomial) and brings it to
// the NTT domain there.
func (ev *Evaluator) toWeight(dst kernels.Buffer, p ring.Poly) error {
	if err := ev.be.Upload(dst, []ringqp.Poly{{Q: p}}); err != nil {
		return err
	}
	return ev.be.NTT(dst, dst)
}

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
// conversion happens per call): kernels.Backend.MulMatrixMontgomery.
//
// Work is split by groups of column blocks: a worker encodes the group's
// weight blocks when w is not pre-encoded, then multiplies every input
// block by them in one backend call (on the CPU, in coefficient chunks that
// keep the group's accumulators in cache while every input and weight
// block streams through once).
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
	if w.PreEncoded() && w.pts.IsZero() {
		return errors.New("cannot MulThen: released weights")
	}
	if err := ev.checkInputs(lay, in); err != nil {
		return fmt.Errorf("cannot MulThen: %w", err)
	}
	if err := ev.mulThen(ctx, lay, in, w, then); err != nil {
		return fmt.Errorf("cannot MulThen: %w", err)
	}
	return nil
}

// workerBuffers are one worker's backend buffers for MulThen.
type workerBuffers struct {
	out     kernels.Buffer // nI·cols·2 output polynomials
	weights kernels.Buffer // nA·cols weight plaintexts (on the fly)
	poly    ring.Poly      // host scratch for encoding
}

func (ev *Evaluator) mulThen(ctx context.Context, lay Layout, in []*rlwe.Ciphertext, w *EncodedWeights, then func(worker, o int, ct *rlwe.Ciphertext) error) (err error) {
	be, basis := ev.be, ev.basis()
	var bufs []kernels.Buffer
	alloc := func(count int) (kernels.Buffer, error) {
		b, err := be.Alloc(basis, count)
		if err == nil {
			bufs = append(bufs, b)
		}
		return b, err
	}
	defer func() {
		for _, b := range bufs {
			if ferr := be.Free(b); err == nil && ferr != nil {
				err = ferr
			}
		}
	}()
	x, err := alloc(2 * lay.Inputs())
	if err != nil {
		return err
	}
	err = parallel(ctx, ev.workers, lay.Inputs(), func(_, k int) error {
		return be.Upload(x.Slice(2*k, 2*k+2), []ringqp.Poly{{Q: in[k].Value[0]}, {Q: in[k].Value[1]}})
	})
	if err != nil {
		return err
	}
	cols := ev.groupCols(lay)
	groups := ceilDiv(lay.nJ, cols)
	workers := min(ev.workers, groups)
	wb := make([]workerBuffers, workers)
	for k := range wb {
		if wb[k].out, err = alloc(2 * lay.nI * cols); err != nil {
			return err
		}
		if !w.PreEncoded() {
			if wb[k].weights, err = alloc(lay.nA * cols); err != nil {
				return err
			}
			wb[k].poly = ev.params.RingQ().NewPoly()
		}
	}
	return parallel(ctx, workers, groups, func(worker, g int) error {
		j0 := g * cols
		j1 := min(lay.nJ, j0+cols)
		nc := j1 - j0
		b := &wb[worker]
		var wt kernels.Buffer
		if w.PreEncoded() {
			wt = w.pts.Slice(j0*lay.nA, j1*lay.nA)
		} else {
			// Encoded in Montgomery form (encodeWeightBlock), then one
			// NTT of the group on the backend.
			wt = b.weights.Slice(0, nc*lay.nA)
			for jj := 0; jj < nc; jj++ {
				for a := 0; a < lay.nA; a++ {
					lay.encodeWeightBlockInt64(ev.params, b.poly, w.w, a, j0+jj)
					if err := be.Upload(wt.Poly(jj*lay.nA+a), []ringqp.Poly{{Q: b.poly}}); err != nil {
						return err
					}
				}
			}
			if err := be.NTT(wt, wt); err != nil {
				return err
			}
		}
		out := b.out.Slice(0, 2*lay.nI*nc)
		shape := kernels.MatrixShape{Rows: lay.nI, Inner: lay.nA, Cols: nc, Parts: 2}
		if err := be.MulMatrixMontgomery(out, x, wt, shape); err != nil {
			return err
		}
		for i := 0; i < lay.nI; i++ {
			for jj := 0; jj < nc; jj++ {
				k := i*nc + jj
				ct := NewCiphertext(ev.params)
				if err := be.Download(out.Slice(2*k, 2*k+2), []ringqp.Poly{{Q: ct.Value[0]}, {Q: ct.Value[1]}}); err != nil {
					return err
				}
				if err := then(worker, lay.OutputIndex(i, j0+jj), ct); err != nil {
					return err
				}
			}
		}
		return nil
	})
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

// maxGroupCols bounds the column blocks of a task: each input chunk the
// backend reads serves that many outputs; more would only grow the
// worker's buffers (and, on the fly, its encoded weights).
const maxGroupCols = 16

// groupCols returns the column blocks per task: as many as maxGroupCols,
// but at least two tasks per worker for balance.
func (ev *Evaluator) groupCols(lay Layout) int {
	return max(1, min(maxGroupCols, ceilDiv(lay.nJ, 2*ev.workers)))
}
