package ckks

import (
	"context"
	"errors"
	"math"
	"runtime"
	"sync"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"
	"github.com/tuneinsight/lattigo/v5/he/hefloat"

	"github.com/cipherprune/cipherprune/models/approx"
)

// Evaluator is the server's homomorphic evaluator: Lattigo parameters,
// evaluation keys, the approximation registry, and one Lattigo evaluator
// copy per worker goroutine. It is safe for use by one caller at a time;
// its methods run their independent parts (ciphertexts) on all workers.
type Evaluator struct {
	params  hefloat.Parameters
	reg     *approx.Registry
	workers []*worker
}

// worker is one goroutine's evaluator, encoder and polynomial evaluator.
type worker struct {
	params hefloat.Parameters
	eval   *hefloat.Evaluator
	enc    *hefloat.Encoder
	poly   *hefloat.PolynomialEvaluator
}

// NewEvaluator returns an evaluator for params with the evaluation keys evk
// (the relinearization key), the registry reg (approx.Default() if nil) and
// workers goroutines (runtime.GOMAXPROCS(0) if workers <= 0).
func NewEvaluator(params hefloat.Parameters, evk rlwe.EvaluationKeySet, reg *approx.Registry, workers int) (*Evaluator, error) {
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
	for i := 0; i < workers; i++ {
		e := base
		if i > 0 {
			e = base.ShallowCopy()
		}
		ev.workers = append(ev.workers, &worker{
			params: params,
			eval:   e,
			enc:    hefloat.NewEncoder(params),
			poly:   hefloat.NewPolynomialEvaluator(params, e),
		})
	}
	return ev, nil
}

// Params returns the parameters.
func (ev *Evaluator) Params() hefloat.Parameters { return ev.params }

// Registry returns the approximation registry.
func (ev *Evaluator) Registry() *approx.Registry { return ev.reg }

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
func (w *worker) rescale(ct *rlwe.Ciphertext) error { return w.eval.Rescale(ct, ct) }

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
	if err := w.eval.MulRelin(a, b, out); err != nil {
		return nil, err
	}
	return out, w.rescale(out)
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
