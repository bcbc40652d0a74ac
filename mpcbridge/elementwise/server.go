package elementwise

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"
	"github.com/tuneinsight/lattigo/v5/he/hefloat"

	"github.com/cipherprune/cipherprune/ckks"
	"github.com/cipherprune/cipherprune/models/approx"
	"github.com/cipherprune/cipherprune/mpcbridge/share"
)

// Server is the model owner's side. It holds the client's public key (to
// re-randomize every output) and relinearization key (the only evaluation
// key: no Galois key anywhere), the approximation registry, and per worker
// a conversion server, a polynomial evaluator and a product evaluator. It
// runs one call at a time.
type Server struct {
	p       Parameters
	reg     *approx.Registry
	workers []*serverWorker
	// seqPoly turns off the evaluation of one ciphertext's polynomial on
	// several goroutines (parPoly): the benchmarks' before.
	seqPoly bool
}

type serverWorker struct {
	share *share.Server
	poly  *ckks.Evaluator // the unfolded recipes (Newton steps)
	eval  *hefloat.Evaluator
	pe    *hefloat.PolynomialEvaluator
	// helpers are the evaluators of the goroutines that share this
	// worker's polynomial when the call has fewer ciphertexts than the
	// server has workers (parPoly); par is how many of them, this one
	// included, the current call gives each ciphertext.
	helpers []*hefloat.Evaluator
	par     int
}

// NewServer returns the server side for the client's public key pk and
// relinearization key rlk, the registry reg (approx.Default() if nil), on
// workers goroutines (runtime.GOMAXPROCS(0) if workers <= 0). The masks
// and the re-randomizations draw from crypto/rand.
func NewServer(p Parameters, pk *rlwe.PublicKey, rlk *rlwe.RelinearizationKey, reg *approx.Registry, workers int) (*Server, error) {
	if rlk == nil {
		return nil, errors.New("cannot NewServer: nil relinearization key")
	}
	if reg == nil {
		reg = approx.Default()
	}
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	params := p.params
	if rlk.LevelQ() != params.MaxLevelQ() || rlk.LevelP() != params.MaxLevelP() || rlk.Value[0][0][0].Q.N() != params.N() {
		return nil, fmt.Errorf("cannot NewServer: relinearization key of degree %d at levels (%d, %d), parameters of degree %d at (%d, %d)", rlk.Value[0][0][0].Q.N(), rlk.LevelQ(), rlk.LevelP(), params.N(), params.MaxLevelQ(), params.MaxLevelP())
	}
	evk := rlwe.NewMemEvaluationKeySet(rlk)
	s := &Server{p: p, reg: reg}
	// One conversion server per worker, all counting against one session
	// budget of masked coefficients (share.Server.ShallowCopy).
	sh0, err := share.NewServer(params, pk, p.share, nil)
	if err != nil {
		return nil, fmt.Errorf("cannot NewServer: %w", err)
	}
	for w := 0; w < workers; w++ {
		sh := sh0
		if w > 0 {
			sh = sh0.ShallowCopy()
		}
		ev, err := ckks.NewEvaluator(params, evk, reg, 1)
		if err != nil {
			return nil, fmt.Errorf("cannot NewServer: %w", err)
		}
		eval := hefloat.NewEvaluator(params, evk)
		sw := &serverWorker{share: sh, poly: ev, eval: eval, pe: hefloat.NewPolynomialEvaluator(params, eval), par: 1}
		for h := 1; h < workers; h++ {
			sw.helpers = append(sw.helpers, eval.ShallowCopy())
		}
		s.workers = append(s.workers, sw)
	}
	return s, nil
}

// Params returns the protocol parameters.
func (s *Server) Params() Parameters { return s.p }

// Masked returns the number of coefficients masked so far in this session
// (N per output ciphertext); a call that would exceed 2^LogMaxValues fails
// (Parameters.SessionBound): use one Server per session.
func (s *Server) Masked() int64 { return s.workers[0].share.Masked() }

// Registry returns the approximation registry.
func (s *Server) Registry() *approx.Registry { return s.reg }

// PolyLevel returns the level of fn's input (Parameters.PolyLevel with the
// server's registry): the client's level argument of Client.Poly.
func (s *Server) PolyLevel(fn approx.Func, d approx.Degree) (int, error) {
	return s.p.PolyLevel(s.reg, fn, d)
}

// MulPolyLevel returns the level of y in x ⊙ fn(y)
// (Parameters.MulPolyLevel with the server's registry): the client's level
// argument of Client.MulPoly.
func (s *Server) MulPolyLevel(fn approx.Func, d approx.Degree) (int, error) {
	return s.p.MulPolyLevel(s.reg, fn, d)
}

// Poly computes shares of fn(x) (variant d of the registry's recipe) from
// the server's share x of the client's and server's integer shares of
// round(2^F·x), n = len(x) values in any layout: it returns the server's
// share of round(2^F·fn(x)), in the same layout. The client calls
// Client.Poly with its share of the same length and the level PolyLevel
// gives. Every value must lie in the recipe's interval (the polynomial
// cannot clamp) and |fn(x)| <= 2^B. It is Polys with one item.
func (s *Server) Poly(ctx context.Context, conn Conn, fn approx.Func, d approx.Degree, x share.Vector) (share.Vector, error) {
	out, err := s.Polys(ctx, conn, []PolyItem{{Fn: fn, Deg: d, X: x}})
	if err != nil {
		return nil, err
	}
	return out[0], nil
}

// PolyItem is one vector of a Polys call: the server's share X, on which
// it evaluates variant Deg of the registry's recipe for Fn.
type PolyItem struct {
	Fn  approx.Func
	Deg approx.Degree
	X   share.Vector
}

// Polys computes shares of every item's polynomial in one round trip
// (between 1 and MaxGroups items): the client encrypts all the items in
// one MsgInput (each item in its own ciphertexts, at its recipe's level:
// a ciphertext holds one polynomial), the server evaluates them on its
// workers in parallel, whatever item a ciphertext belongs to, and answers
// with one MsgOutput, so the items cost one round trip instead of one each
// (a layer's degree spans: the CLS and high-degree rows, then the
// low-degree rows). It returns the server's share of each item, as Poly
// does; the client calls Client.Polys with its shares and the levels
// PolyLevel gives, in the same order. The masked coefficients are those of
// separate Poly calls, ceil(len(X)/Slots)·N per item.
func (s *Server) Polys(ctx context.Context, conn Conn, items []PolyItem) ([]share.Vector, error) {
	gs := make([]serverGroup, len(items))
	for i, it := range items {
		level, err := s.PolyLevel(it.Fn, it.Deg)
		if err != nil {
			return nil, fmt.Errorf("cannot Poly: %w", err)
		}
		pl := s.p.plan(s.reg.Recipe(it.Fn, it.Deg))
		d := it.Deg
		gs[i] = serverGroup{xs: []share.Vector{it.X}, levels: []int{level}, factors: []float64{pl.scalar},
			compute: func(ctx context.Context, w *serverWorker, _ int, in []*rlwe.Ciphertext) (*rlwe.Ciphertext, error) {
				return w.evalPlan(ctx, pl, d, in[0])
			}}
	}
	out, err := s.run(ctx, conn, opPoly, true, gs)
	if err != nil {
		if len(items) == 1 {
			return nil, fmt.Errorf("cannot Poly %s/%s: %w", items[0].Fn, items[0].Deg, err)
		}
		return nil, fmt.Errorf("cannot Polys: %w", err)
	}
	return out, nil
}

// Mul computes shares of x ⊙ y from the server's shares of both: one
// ciphertext product per ciphertext, relinearized and rescaled. The client
// calls Client.Mul. |x_i·y_i| <= 2^B must hold.
func (s *Server) Mul(ctx context.Context, conn Conn, x, y share.Vector) (share.Vector, error) {
	l := s.p.MulLevel()
	out, err := s.run1(ctx, conn, opMul, false, serverGroup{xs: []share.Vector{x, y}, levels: []int{l, l},
		compute: func(_ context.Context, w *serverWorker, _ int, in []*rlwe.Ciphertext) (*rlwe.Ciphertext, error) {
			return w.mul(in[0], in[1])
		}})
	if err != nil {
		return nil, fmt.Errorf("cannot Mul: %w", err)
	}
	return out, nil
}

// Square computes shares of x ⊙ x from the server's share of x: one
// operand on the way up (half of Mul(x, x)'s bytes), one ciphertext square
// per ciphertext, relinearized and rescaled. The client calls
// Client.Square. |x_i|² <= 2^B must hold.
func (s *Server) Square(ctx context.Context, conn Conn, x share.Vector) (share.Vector, error) {
	l := s.p.MulLevel()
	out, err := s.run1(ctx, conn, opSquare, false, serverGroup{xs: []share.Vector{x}, levels: []int{l},
		compute: func(_ context.Context, w *serverWorker, _ int, in []*rlwe.Ciphertext) (*rlwe.Ciphertext, error) {
			return w.mul(in[0], in[0])
		}})
	if err != nil {
		return nil, fmt.Errorf("cannot Square: %w", err)
	}
	return out, nil
}

// MulScaled computes shares of w ⊙ x ⊙ y from the server's shares of x and
// y and its own plaintext w (len(w) = len(x), |w_i| <= 2^B): LayerNorm's
// γ_j·z_ij·(1/σ_i), with γ the server's weights repeated over the rows.
// x is encrypted one level higher (Parameters.MulScaledLevel); the server
// multiplies it by w, encoded at the scale of the prime it then rescales
// by (so the scale stays Δ exactly), and multiplies the result by y as Mul
// does. w never leaves the server: the output is masked and re-randomized
// like every other, which floods the w-dependent noise too. The client
// calls Client.MulScaled. |w_i·x_i·y_i| <= 2^B must hold.
func (s *Server) MulScaled(ctx context.Context, conn Conn, w []float64, x, y share.Vector) (share.Vector, error) {
	lx, err := s.p.MulScaledLevel()
	if err != nil {
		return nil, fmt.Errorf("cannot MulScaled: %w", err)
	}
	if len(w) != len(x) {
		return nil, fmt.Errorf("cannot MulScaled: %d weights for %d values", len(w), len(x))
	}
	if err := s.p.checkWeights(w); err != nil {
		return nil, fmt.Errorf("cannot MulScaled: %w", err)
	}
	out, err := s.run1(ctx, conn, opMulScaled, false, serverGroup{xs: []share.Vector{x, y}, levels: []int{lx, s.p.MulLevel()},
		compute: func(_ context.Context, sw *serverWorker, t int, in []*rlwe.Ciphertext) (*rlwe.Ciphertext, error) {
			xw, err := sw.mulWeights(in[0], w, t)
			if err != nil {
				return nil, err
			}
			return sw.mul(xw, in[1])
		}})
	if err != nil {
		return nil, fmt.Errorf("cannot MulScaled: %w", err)
	}
	return out, nil
}

// checkWeights checks the server's plaintext of a scaled product:
// |w_i| <= 2^B.
func (p Parameters) checkWeights(w []float64) error {
	bound := math.Ldexp(1, p.lit.LogBound)
	for i, v := range w {
		if !(math.Abs(v) <= bound) {
			return fmt.Errorf("weight %d is %v, outside [-2^B, 2^B] = [%g, %g]", i, v, -bound, bound)
		}
	}
	return nil
}

// mulWeights returns x ⊙ w (the weights of ciphertext t of a call),
// rescaled: w encoded at the scale of the prime the rescale divides by,
// so the scale stays Δ, one level down.
func (sw *serverWorker) mulWeights(x *rlwe.Ciphertext, w []float64, t int) (*rlwe.Ciphertext, error) {
	slots := sw.eval.GetParameters().MaxSlots()
	wt := make([]float64, slots)
	copy(wt, w[t*slots:min(len(w), (t+1)*slots)])
	xw := hefloat.NewCiphertext(*sw.eval.GetParameters(), 1, x.Level())
	if err := sw.eval.Mul(x, wt, xw); err != nil {
		return nil, err
	}
	if err := sw.eval.Rescale(xw, xw); err != nil {
		return nil, err
	}
	return xw, nil
}

// ScaledPolyItem is one item of a MulScaledPolys call: w ⊙ x ⊙ fn(y), with
// variant Deg of the registry's recipe for Fn, W the server's plaintext
// and X, Y the server's shares, all of one length.
type ScaledPolyItem struct {
	Fn   approx.Func
	Deg  approx.Degree
	W    []float64
	X, Y share.Vector
}

// MulScaledPolys computes shares of w ⊙ x ⊙ fn(y) for every item in one
// round trip, one conversion each way: LayerNorm's γ_j·z_ij·(1/√v_i) with
// the caller's layout repeating each row's v (and γ over the rows), one
// item per degree span, where Poly then MulScaled took two round trips.
// x is encrypted at MulScaledLevel and multiplied by w as MulScaled does,
// y at MulPolyLevel; the item's polynomial brings fn(y) down to the
// product level, and the product of the two to the mask level. The
// polynomial runs on every value of y, repeated or not: worth it where
// the repetition adds no ciphertext (LayerNorm on rows·d values within
// the ciphertexts of its rows' n values). The client calls
// Client.MulScaledPolys. |w_i·x_i·fn(y_i)| <= 2^B must hold.
func (s *Server) MulScaledPolys(ctx context.Context, conn Conn, items []ScaledPolyItem) ([]share.Vector, error) {
	lx, err := s.p.MulScaledLevel()
	if err != nil {
		return nil, fmt.Errorf("cannot MulScaledPolys: %w", err)
	}
	gs := make([]serverGroup, len(items))
	for i, it := range items {
		ly, err := s.MulPolyLevel(it.Fn, it.Deg)
		if err != nil {
			return nil, fmt.Errorf("cannot MulScaledPolys: %w", err)
		}
		if len(it.W) != len(it.X) {
			return nil, fmt.Errorf("cannot MulScaledPolys: item %d: %d weights for %d values", i, len(it.W), len(it.X))
		}
		if err := s.p.checkWeights(it.W); err != nil {
			return nil, fmt.Errorf("cannot MulScaledPolys: item %d: %w", i, err)
		}
		pl, d, w := s.p.plan(s.reg.Recipe(it.Fn, it.Deg)), it.Deg, it.W
		gs[i] = serverGroup{xs: []share.Vector{it.X, it.Y}, levels: []int{lx, ly}, factors: []float64{1, pl.scalar},
			compute: func(ctx context.Context, sw *serverWorker, t int, in []*rlwe.Ciphertext) (*rlwe.Ciphertext, error) {
				xw, err := sw.mulWeights(in[0], w, t)
				if err != nil {
					return nil, err
				}
				fy, err := sw.evalPlan(ctx, pl, d, in[1])
				if err != nil {
					return nil, err
				}
				return sw.mul(xw, fy)
			}}
	}
	out, err := s.run(ctx, conn, opMulScaledPoly, true, gs)
	if err != nil {
		return nil, fmt.Errorf("cannot MulScaledPolys: %w", err)
	}
	return out, nil
}

// MulPoly computes shares of x ⊙ fn(y) in one conversion each way (y at
// MulPolyLevel, x at MulLevel): LayerNorm's x·(1/√v) and softmax's
// e^s·(1/Σ) with the caller's layout repeating each row's v or Σ. The
// client calls Client.MulPoly.
func (s *Server) MulPoly(ctx context.Context, conn Conn, fn approx.Func, d approx.Degree, x, y share.Vector) (share.Vector, error) {
	level, err := s.MulPolyLevel(fn, d)
	if err != nil {
		return nil, fmt.Errorf("cannot MulPoly: %w", err)
	}
	pl := s.p.plan(s.reg.Recipe(fn, d))
	out, err := s.run1(ctx, conn, opMulPoly, true, serverGroup{xs: []share.Vector{x, y}, levels: []int{s.p.MulLevel(), level}, factors: []float64{1, pl.scalar},
		compute: func(ctx context.Context, w *serverWorker, _ int, in []*rlwe.Ciphertext) (*rlwe.Ciphertext, error) {
			fy, err := w.evalPlan(ctx, pl, d, in[1])
			if err != nil {
				return nil, err
			}
			return w.mul(in[0], fy)
		}})
	if err != nil {
		return nil, fmt.Errorf("cannot MulPoly %s/%s: %w", fn, d, err)
	}
	return out, nil
}

// apply evaluates the recipe on ct with ckks.Evaluator.ApplyFunc (change
// of basis, polynomial, post-processing: Cost().Depth levels).
func (w *serverWorker) apply(ctx context.Context, fn approx.Func, d approx.Degree, ct *rlwe.Ciphertext) (*rlwe.Ciphertext, error) {
	sl := ct.Slots()
	lay := ckks.Layout{Rows: 1, Cols: sl, Block: 1, Slots: sl}
	var degs ckks.DegreeSet
	if d != approx.High {
		degs = ckks.DegreeSet{d}
	}
	out, err := w.poly.ApplyFunc(ctx, fn, &ckks.CtMatrix{Layout: lay, Cts: []*rlwe.Ciphertext{ct}}, degs)
	if err != nil {
		return nil, err
	}
	return out.Cts[0], nil
}

// mul returns a·b relinearized and rescaled.
func (w *serverWorker) mul(a, b *rlwe.Ciphertext) (*rlwe.Ciphertext, error) {
	out := hefloat.NewCiphertext(*w.eval.GetParameters(), 1, min(a.Level(), b.Level()))
	if err := w.eval.MulRelin(a, b, out); err != nil {
		return nil, err
	}
	if err := w.eval.Rescale(out, out); err != nil {
		return nil, err
	}
	return out, nil
}

// checkVectors checks the lengths of a call's vectors (either party).
func (p Parameters) checkVectors(xs []share.Vector) (int, error) {
	n := len(xs[0])
	if n < 1 || n > p.lit.MaxValues {
		return 0, fmt.Errorf("%d values not in [1, %d]", n, p.lit.MaxValues)
	}
	for j, x := range xs[1:] {
		if len(x) != n {
			return 0, fmt.Errorf("operand %d has %d values, operand 0 has %d", j+1, len(x), n)
		}
	}
	limit := share.CodecBits(p.params.LogN())
	for j, x := range xs {
		for i, v := range x {
			if v.BitLen() > limit {
				return 0, fmt.Errorf("operand %d, value %d: a %d-bit share exceeds the %d bits the slot codec encodes (re-share it first, as prunestep's return step does)", j, i, v.BitLen(), limit)
			}
		}
	}
	return n, nil
}

// serverGroup is one group of a server's call: its operands (the
// server's shares), their levels, their encoding factors (nil: all 1), and
// the computation on one ciphertext of each operand (t: the ciphertext's
// index in the group).
type serverGroup struct {
	xs      []share.Vector
	levels  []int
	factors []float64
	compute func(ctx context.Context, w *serverWorker, t int, in []*rlwe.Ciphertext) (*rlwe.Ciphertext, error)
}

// run is the server's side of every operation, on one group or several
// (Polys): send the operands' encoding factors (MsgScales, when scaled:
// Poly, Polys and MulPoly), receive the client's ciphertexts (MsgInput, the
// groups' ciphertexts one after the other), add the server's shares
// (share.Server.SharesToEnc at Δ·factor, the ciphertext then read at Δ),
// compute, convert every output to shares (share.Server.EncToShares: drop
// to the mask level, fresh public-key encryption of zero, mask every
// coefficient) and send them (MsgOutput), pipelined over the workers,
// whatever group a ciphertext belongs to. It returns the server's output
// share of each group.
func (s *Server) run(ctx context.Context, conn Conn, o op, scaled bool, gs []serverGroup) ([]share.Vector, error) {
	xs, levels := make([][]share.Vector, len(gs)), make([][]int, len(gs))
	for g, gr := range gs {
		xs[g], levels[g] = gr.xs, gr.levels
	}
	sh, err := s.p.newShape(o, xs, levels)
	if err != nil {
		return nil, err
	}
	k := sh.ciphertexts()
	// A call of fewer ciphertexts than workers spreads each polynomial
	// over the idle ones (parPoly).
	par := max(1, len(s.workers)/k)
	if s.seqPoly {
		par = 1
	}
	for _, w := range s.workers {
		w.par = par
	}
	// The session's budget of masked coefficients, before any message.
	if left := s.workers[0].share.Remaining(); int64(k)*int64(s.p.params.N()) > left {
		return nil, fmt.Errorf("%d output ciphertexts (%d masked coefficients) would exceed the session's 2^%d (%d left): the masks' statistical bound covers no more; start a new session", k, int64(k)*int64(s.p.params.N()), s.p.lit.LogMaxValues, left)
	}
	if scaled {
		factors := make([][]float64, len(gs))
		for g, gr := range gs {
			factors[g] = gr.factors
		}
		if err := conn.Send(ctx, MsgScales, s.p.appendScales(nil, o, sh.values(), factors)); err != nil {
			return nil, fmt.Errorf("send: %w", err)
		}
	}
	slots := s.p.Slots()
	m := o.operands()
	scale := s.p.params.DefaultScale()
	inputs := make([][]byte, k*m)
	outputs := make([][]byte, k)
	res := make([]share.Vector, len(gs))
	for g, gr := range sh.groups {
		res[g] = make(share.Vector, gr.values)
	}
	pl := &pipeline{k: k, chunk: s.p.lit.Chunk, workers: len(s.workers)}
	pl.recv = func(ctx context.Context, _, first, count int) error {
		payload, err := conn.Recv(ctx, MsgInput)
		if err != nil {
			return fmt.Errorf("receive: %w", err)
		}
		entries, err := s.p.decodeMessage(payload, sh.input(first, count))
		if err != nil {
			return fmt.Errorf("bad input message: %w", err)
		}
		copy(inputs[first*m:], entries)
		return nil
	}
	pl.work = func(ctx context.Context, wi, t int) error {
		w := s.workers[wi]
		g, lt := sh.locate(t)
		gr := gs[g]
		in := make([]*rlwe.Ciphertext, m)
		for j := range in {
			sc := &shareConn{in: inputs[t*m+j]}
			inputs[t*m+j] = nil
			cts, err := w.share.SharesToEnc(ctx, sc, []share.Vector{piece(gr.xs[j], lt, slots)}, gr.levels[j], encodingScale(scale, gr.factors, j))
			if err != nil {
				return fmt.Errorf("ciphertext %d, operand %d: %w", t, j, err)
			}
			cts[0].Scale = rlwe.NewScale(&scale.Value) // read at Δ (a copy: no big.Float shared)
			in[j] = cts[0]
		}
		out, err := gr.compute(ctx, w, lt, in)
		if err != nil {
			return fmt.Errorf("ciphertext %d: %w", t, err)
		}
		if out.Level() != s.p.maskLevel {
			return fmt.Errorf("internal: ciphertext %d: %v output at level %d, want the mask level %d", t, o, out.Level(), s.p.maskLevel)
		}
		sc := &shareConn{}
		vs, err := w.share.EncToShares(ctx, sc, []*rlwe.Ciphertext{out})
		if err != nil {
			return fmt.Errorf("ciphertext %d: %w", t, err)
		}
		copy(res[g][lt*slots:], vs[0][:len(piece(res[g], lt, slots))])
		outputs[t] = sc.out
		return nil
	}
	pl.send = func(ctx context.Context, _, first, count int) error {
		msg := s.p.appendMessage(nil, sh.output(s.p.maskLevel, first, count), outputs[first:first+count])
		for t := first; t < first+count; t++ {
			outputs[t] = nil
		}
		if err := conn.Send(ctx, MsgOutput, msg); err != nil {
			return fmt.Errorf("send: %w", err)
		}
		return nil
	}
	if err := pl.run(ctx); err != nil {
		return nil, err
	}
	return res, nil
}

// run1 is run on one group: the single-group operations.
func (s *Server) run1(ctx context.Context, conn Conn, o op, scaled bool, gr serverGroup) (share.Vector, error) {
	out, err := s.run(ctx, conn, o, scaled, []serverGroup{gr})
	if err != nil {
		return nil, err
	}
	return out[0], nil
}

// encodingScale returns the scale operand j's shares are encoded at:
// Δ·factors[j] (both parties compute the same float64), Δ without factors.
func encodingScale(scale rlwe.Scale, factors []float64, j int) rlwe.Scale {
	if factors == nil || factors[j] == 1 {
		return scale
	}
	return rlwe.NewScale(scale.Float64() * factors[j])
}
