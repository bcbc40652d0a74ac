package elementwise

import (
	"fmt"
	"math/bits"
	"sync"
	"sync/atomic"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"
	"github.com/tuneinsight/lattigo/v5/he"
	"github.com/tuneinsight/lattigo/v5/he/hefloat"
	"github.com/tuneinsight/lattigo/v5/utils/bignum"
)

// parPoly evaluates a Chebyshev polynomial on one ciphertext with several
// goroutines, each with its own evaluator (Lattigo's evaluators hold
// scratch buffers and are not safe to share): a call of fewer ciphertexts
// than the server has workers (LayerNorm's 1/√x at n = 1 is one value)
// would otherwise leave all but one worker idle. The work is Lattigo's
// own baby-step giant-step evaluation (he.EvaluatePolynomial), its
// operations and operands unchanged, only their order: the powers of the
// basis wave by wave (he.PowerBasis.GenPower; a power depends only on
// those of earlier waves), then the baby steps (independent inner
// products, he.EvaluateBabyStep), then each round of giant steps
// (independent pairs, he.EvaluateGianStep). The ciphertext is the one
// hefloat.PolynomialEvaluator computes, bit for bit (TestParallelPoly).
type parPoly struct {
	he.Evaluator // evals[0]: the steps that stay sequential
	params       hefloat.Parameters
	evals        []*hefloat.Evaluator
}

// newParPoly returns the evaluator on evals (at least one).
func newParPoly(params hefloat.Parameters, evals []*hefloat.Evaluator) *parPoly {
	return &parPoly{Evaluator: evals[0], params: params, evals: evals}
}

// Evaluate returns poly(ct) at targetScale, as hefloat.PolynomialEvaluator's
// Evaluate does.
func (e *parPoly) Evaluate(ct *rlwe.Ciphertext, poly bignum.Polynomial, targetScale rlwe.Scale) (*rlwe.Ciphertext, error) {
	pb := hefloat.NewPowerBasis(ct, poly.Basis)
	if err := e.genPowers(&pb, poly); err != nil {
		return nil, fmt.Errorf("cannot evaluate the power basis: %w", err)
	}
	pe := &hefloat.PolynomialEvaluator{Parameters: e.params, EvaluatorForPolynomial: e}
	return pe.EvaluateFromPowerBasis(pb, poly, targetScale)
}

// powers returns the powers he.EvaluatePolynomial generates for poly (the
// powers of two below its degree, then the baby steps' powers of poly's
// parity), with every power they are computed from
// (he.SplitDegree: T_n = 2·T_a·T_b - T_|a-b|), and the wave of each: one
// more than the latest of its operands (T_1: wave 0).
func powers(poly bignum.Polynomial) map[int]int {
	logDegree := bits.Len64(uint64(poly.Degree()))
	logSplit := bignum.OptimalSplit(logDegree)
	wave := map[int]int{0: 0, 1: 0}
	var add func(n int) int
	add = func(n int) int {
		if w, ok := wave[n]; ok {
			return w
		}
		a, b := he.SplitDegree(n)
		c := a - b
		if c < 0 {
			c = -c
		}
		w := 1 + max(add(a), add(b), add(c))
		wave[n] = w
		return w
	}
	for n := 2; n <= 1<<(logDegree-1); n <<= 1 {
		add(n)
	}
	odd, even := poly.IsOdd, poly.IsEven
	for i := (1 << logSplit) - 1; i > 2; i-- {
		if !(even || odd) || (i&1 == 0 && even) || (i&1 == 1 && odd) {
			add(i)
		}
	}
	delete(wave, 0)
	return wave
}

// genPowers computes pb's powers for poly wave by wave, the powers of one
// wave in parallel: each on a copy of pb's map (GenPower finds its
// operands there and writes only its own power), merged after the wave.
func (e *parPoly) genPowers(pb *he.PowerBasis, poly bignum.Polynomial) error {
	waves := [][]int{}
	for n, w := range powers(poly) {
		if w == 0 {
			continue
		}
		for len(waves) < w {
			waves = append(waves, nil)
		}
		waves[w-1] = append(waves[w-1], n)
	}
	for _, wave := range waves {
		out := make([]*rlwe.Ciphertext, len(wave))
		err := e.parallel(len(wave), func(i int, ev *hefloat.Evaluator) error {
			cp := he.PowerBasis{Basis: pb.Basis, Value: make(map[int]*rlwe.Ciphertext, len(pb.Value)+1)}
			for k, v := range pb.Value {
				cp.Value[k] = v
			}
			if err := cp.GenPower(wave[i], false, ev); err != nil {
				return err
			}
			out[i] = cp.Value[wave[i]]
			return nil
		})
		if err != nil {
			return err
		}
		for i, n := range wave {
			pb.Value[n] = out[i]
		}
	}
	return nil
}

// EvaluatePatersonStockmeyerPolynomialVector implements
// he.EvaluatorForPolynomial: he.EvaluatePatersonStockmeyerPolynomialVector's
// steps, the baby steps and each round's giant steps in parallel.
func (e *parPoly) EvaluatePatersonStockmeyerPolynomialVector(poly he.PatersonStockmeyerPolynomialVector, pb he.PowerBasis) (*rlwe.Ciphertext, error) {
	split := len(poly.Value[0].Value)
	steps := make([]*he.BabyStep, split)
	getters := make([]he.CoefficientGetter[*bignum.Complex], len(e.evals))
	for g := range getters {
		getters[g] = &hefloat.CoefficientGetter{Values: make([]*bignum.Complex, pb.Value[1].Slots())}
	}
	err := e.parallelG(split, func(i, g int, ev *hefloat.Evaluator) error {
		bs, err := he.EvaluateBabyStep(i, ev, poly, getters[g], pb)
		if err != nil {
			return fmt.Errorf("cannot EvaluateBabyStep: %w", err)
		}
		steps[split-i-1] = bs
		return nil
	})
	if err != nil {
		return nil, err
	}
	for len(steps) != 1 {
		giant := make([]int, len(steps))
		var pairs []int
		for i := 0; i < len(steps); i++ {
			if i == len(steps)-1 {
				giant[i] = 2
			} else if steps[i].Degree == steps[i+1].Degree {
				giant[i] = 1
				pairs = append(pairs, i)
				i++
			}
		}
		if err := e.parallel(len(pairs), func(k int, ev *hefloat.Evaluator) error {
			return he.EvaluateGianStep(pairs[k], giant, steps, ev, pb)
		}); err != nil {
			return nil, err
		}
		// The last, unpaired step takes the degree of the one before it,
		// as updated by its pair: after the pairs.
		if last := len(steps) - 1; giant[last] == 2 {
			if err := he.EvaluateGianStep(last, giant, steps, e.evals[0], pb); err != nil {
				return nil, err
			}
		}
		kept := steps[:0]
		for _, s := range steps {
			if s != nil {
				kept = append(kept, s)
			}
		}
		steps = kept
	}
	res := steps[0].Value
	if res.Degree() == 2 {
		if err := e.evals[0].Relinearize(res, res); err != nil {
			return nil, err
		}
	}
	if err := e.evals[0].Rescale(res, res); err != nil {
		return nil, err
	}
	return res, nil
}

// parallel runs f(i, evaluator) for i in [0, n) on up to len(e.evals)
// goroutines, each with its own evaluator; the first error is returned.
func (e *parPoly) parallel(n int, f func(i int, ev *hefloat.Evaluator) error) error {
	return e.parallelG(n, func(i, _ int, ev *hefloat.Evaluator) error { return f(i, ev) })
}

// parallelG is parallel, f also given its goroutine's index.
func (e *parPoly) parallelG(n int, f func(i, g int, ev *hefloat.Evaluator) error) error {
	gs := min(n, len(e.evals))
	if gs <= 1 {
		for i := 0; i < n; i++ {
			if err := f(i, 0, e.evals[0]); err != nil {
				return err
			}
		}
		return nil
	}
	var next atomic.Int64
	errs := make([]error, gs)
	var wg sync.WaitGroup
	for g := 0; g < gs; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || errs[g] != nil {
					return
				}
				errs[g] = f(i, g, e.evals[g])
			}
		}(g)
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
