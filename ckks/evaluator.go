package ckks

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"
	"github.com/tuneinsight/lattigo/v5/he/hefloat"

	"github.com/cipherprune/cipherprune/kernels"
	"github.com/cipherprune/cipherprune/models/approx"
)

// Evaluator is the server's homomorphic evaluator: Lattigo parameters,
// evaluation keys, the approximation registry, and one Lattigo evaluator
// copy per worker goroutine. It is safe for use by one caller at a time;
// its methods run their independent parts (heads, ciphertexts, diagonals)
// on all workers.
type Evaluator struct {
	params  hefloat.Parameters
	reg     *approx.Registry
	workers []*worker
	// reserve is the number of bottom levels no operation may use: the
	// two-party refresh masks a ciphertext statistically and needs that
	// much modulus below the message (mpcbridge/share's MinLevel).
	reserve int
	// linearLevel, when positive, caps the level of every matmul
	// (WithLinearLevel).
	linearLevel int
	// backend, when not nil, runs the key switches and rescales
	// (WithBackend) through kev, shared by the workers.
	backend kernels.Backend
	kev     *kernels.Evaluator
}

// EvaluatorOption configures NewEvaluator.
type EvaluatorOption func(*Evaluator) error

// WithReserve keeps the bottom levels 0..levels-1 free: every stage
// refreshes its inputs early enough that its outputs stay at level
// >= levels, where the bridge can mask them (mpcbridge/share's
// Server.MinLevel). The default is 0 (the secret-key test refresh).
func WithReserve(levels int) EvaluatorOption {
	return func(ev *Evaluator) error {
		if levels < 0 || levels > ev.params.MaxLevel() {
			return fmt.Errorf("reserve of %d levels outside 0..%d", levels, ev.params.MaxLevel())
		}
		ev.reserve = levels
		return nil
	}
}

// worker is one goroutine's evaluator, encoder and polynomial evaluator.
type worker struct {
	params hefloat.Parameters
	eval   *hefloat.Evaluator
	enc    *encoder
	poly   *hefloat.PolynomialEvaluator
	// kev, when not nil, is the kernels evaluator of WithBackend.
	kev *kernels.Evaluator
	// scratch holds one plaintext per level for encodings consumed at once
	// (scratchEncode), so the matmuls' diagonals allocate nothing.
	scratch []*rlwe.Plaintext
}

// NewEvaluator returns an evaluator for params with the evaluation keys evk
// (relinearization and the Galois keys of GaloisElements), the registry reg
// (approx.Default() if nil) and workers goroutines (runtime.GOMAXPROCS(0)
// if workers <= 0), configured by opts.
func NewEvaluator(params hefloat.Parameters, evk rlwe.EvaluationKeySet, reg *approx.Registry, workers int, opts ...EvaluatorOption) (*Evaluator, error) {
	if evk == nil {
		return nil, errors.New("cannot NewEvaluator: nil evaluation keys")
	}
	if reg == nil {
		reg = approx.Default()
	}
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	base := hefloat.NewEvaluator(params, evk)
	ev := &Evaluator{params: params, reg: reg}
	for _, opt := range opts {
		if err := opt(ev); err != nil {
			return nil, fmt.Errorf("cannot NewEvaluator: %w", err)
		}
	}
	if ev.backend != nil {
		kev, err := newDeviceEvaluator(ev.backend, evk)
		if err != nil {
			return nil, fmt.Errorf("cannot NewEvaluator: backend %s: %w", ev.backend.Name(), err)
		}
		ev.kev = kev
	}
	for i := 0; i < workers; i++ {
		e := base
		if i > 0 {
			e = base.ShallowCopy()
		}
		ev.workers = append(ev.workers, &worker{
			params: params,
			eval:   e,
			enc:    newEncoder(params),
			kev:    ev.kev,
			poly:   hefloat.NewPolynomialEvaluator(params, e),
		})
	}
	return ev, nil
}

// WithLinearLevel runs every matmul (Linear) at most at the given level:
// an input above it is dropped to it first (never below the reserve + 1,
// so the output stays where the bridge can mask it). A matmul's cost, its
// on-the-fly diagonal encodings, plaintext products and rotations, grows
// with the number of primes of its level; dropping trades it for a refresh
// of the outputs before the next deep stage (one bridge round, the outputs
// sent back at the top level). 0, the default, runs each matmul at its
// input's level.
func WithLinearLevel(level int) EvaluatorOption {
	return func(ev *Evaluator) error {
		if level < 0 || level > ev.params.MaxLevel() {
			return fmt.Errorf("linear level %d outside 0..%d", level, ev.params.MaxLevel())
		}
		ev.linearLevel = level
		return nil
	}
}

// Params returns the parameters.
func (ev *Evaluator) Params() hefloat.Parameters { return ev.params }

// Registry returns the approximation registry.
func (ev *Evaluator) Registry() *approx.Registry { return ev.reg }

// Reserve returns the number of bottom levels kept free (WithReserve).
func (ev *Evaluator) Reserve() int { return ev.reserve }

// Workers returns the number of worker goroutines.
func (ev *Evaluator) Workers() int { return len(ev.workers) }

// parallel runs f(w, i) for i in [0, n) on the workers, each worker with its
// own evaluator. It stops early on the first error or when ctx is done.
func (ev *Evaluator) parallel(ctx context.Context, n int, f func(w *worker, i int) error) error {
	if n <= 0 {
		return nil
	}
	nw := len(ev.workers)
	if nw > n {
		nw = n
	}
	if nw == 1 {
		for i := 0; i < n; i++ {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := f(ev.workers[0], i); err != nil {
				return err
			}
		}
		return nil
	}
	var (
		mu   sync.Mutex
		next int
		ferr error
		wg   sync.WaitGroup
	)
	for k := 0; k < nw; k++ {
		wg.Add(1)
		go func(w *worker) {
			defer wg.Done()
			for {
				mu.Lock()
				if ferr != nil || next >= n {
					mu.Unlock()
					return
				}
				i := next
				next++
				mu.Unlock()
				err := ctx.Err()
				if err == nil {
					err = f(w, i)
				}
				if err != nil {
					mu.Lock()
					if ferr == nil {
						ferr = err
					}
					mu.Unlock()
					return
				}
			}
		}(ev.workers[k])
	}
	wg.Wait()
	return ferr
}

// rescale rescales ct in place.
func (w *worker) rescale(ct *rlwe.Ciphertext) error {
	if w.kev != nil && ct.Degree() == 1 {
		return w.rescaleOnDevice(ct)
	}
	return w.eval.Rescale(ct, ct)
}

// mulVecNew returns ct ⊙ v (v a slot vector encoded with the scale of the
// prime it consumes, so the output keeps ct's scale), rescaled.
func (w *worker) mulVecNew(ct *rlwe.Ciphertext, v []float64) (*rlwe.Ciphertext, error) {
	out, err := w.eval.MulNew(ct, v)
	if err != nil {
		return nil, err
	}
	return out, w.rescale(out)
}

// mulConstNew returns c·ct, rescaled unless c is an integer.
func (w *worker) mulConstNew(ct *rlwe.Ciphertext, c float64) (*rlwe.Ciphertext, error) {
	if c == math.Trunc(c) && math.Abs(c) < 1<<52 {
		return w.eval.MulNew(ct, int64(c))
	}
	out, err := w.eval.MulNew(ct, c)
	if err != nil {
		return nil, err
	}
	return out, w.rescale(out)
}

// mulRelinNew returns a·b relinearized and rescaled.
func (w *worker) mulRelinNew(a, b *rlwe.Ciphertext) (*rlwe.Ciphertext, error) {
	out := hefloat.NewCiphertext(w.params, 1, min(a.Level(), b.Level()))
	if err := w.mulRelin(a, b, out); err != nil {
		return nil, err
	}
	return out, w.rescale(out)
}

// rotateSum returns Σ_{k<count} rot(ct, k·step) with log2(count)
// rotations (count a power of two): with step = Block and count = columns
// per ciphertext, every block holds the sum over the ciphertext's columns.
func (w *worker) rotateSum(ct *rlwe.Ciphertext, step, count int) (*rlwe.Ciphertext, error) {
	acc := ct.CopyNew()
	tmp := hefloat.NewCiphertext(w.params, 1, ct.Level())
	for s := 1; s < count; s <<= 1 {
		if err := w.rotate(acc, s*step, tmp); err != nil {
			return nil, fmt.Errorf("cannot rotateSum: %w", err)
		}
		if err := w.eval.Add(acc, tmp, acc); err != nil {
			return nil, fmt.Errorf("cannot rotateSum: %w", err)
		}
	}
	return acc, nil
}

// rotateSumRotations returns the rotations rotateSum uses.
func rotateSumRotations(step, count int) []int {
	var r []int
	for s := 1; s < count; s <<= 1 {
		r = append(r, s*step)
	}
	return r
}

// encode encodes v at level with the given scale.
func (w *worker) encode(v []float64, level int, scale rlwe.Scale) (*rlwe.Plaintext, error) {
	pt := hefloat.NewPlaintext(w.params, level)
	pt.Scale = scale
	if err := w.enc.Encode(v, pt); err != nil {
		return nil, err
	}
	return pt, nil
}

// scratchEncode encodes v at level and scale into the worker's scratch
// plaintext for that level: valid until the next scratchEncode at the same
// level, for a plaintext that is used at once and not kept.
func (w *worker) scratchEncode(v []float64, level int, scale rlwe.Scale) (*rlwe.Plaintext, error) {
	if w.scratch == nil {
		w.scratch = make([]*rlwe.Plaintext, w.params.MaxLevel()+1)
	}
	pt := w.scratch[level]
	if pt == nil {
		pt = hefloat.NewPlaintext(w.params, level)
		w.scratch[level] = pt
	}
	pt.Scale = scale
	if err := w.enc.Encode(v, pt); err != nil {
		return nil, err
	}
	return pt, nil
}

// levelScale returns the scale of a plaintext that, multiplied into a
// ciphertext at level and rescaled, leaves the ciphertext's scale unchanged.
func (w *worker) levelScale(level int) rlwe.Scale {
	return rlwe.NewScale(w.params.Q()[level])
}

// addInto adds b into acc (acc may be nil: it then becomes a copy of b).
func (w *worker) addInto(acc **rlwe.Ciphertext, b *rlwe.Ciphertext) error {
	if *acc == nil {
		*acc = b.CopyNew()
		return nil
	}
	if (*acc).Level() > b.Level() {
		w.eval.DropLevel(*acc, (*acc).Level()-b.Level())
	}
	return w.eval.Add(*acc, b, *acc)
}
