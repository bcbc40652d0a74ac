package kernels

import (
	"fmt"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"
	"github.com/tuneinsight/lattigo/v5/ring"
	"github.com/tuneinsight/lattigo/v5/ring/ringqp"
)

// Ciphertext is a degree-1 RLWE (CKKS) ciphertext in the NTT domain,
// resident on a backend: two polynomials in the Q basis and Lattigo's
// metadata (scale, slots, domain).
type Ciphertext struct {
	buf   Buffer // the allocation, at its largest level
	level int
	// MetaData is the ciphertext's Lattigo metadata.
	MetaData rlwe.MetaData
}

// Level returns the level of the ciphertext.
func (ct *Ciphertext) Level() int { return ct.level }

// Value returns the two polynomials at the ciphertext's level.
func (ct *Ciphertext) Value() Buffer { return ct.buf.AtLevel(ct.level, -1) }

// resize sets the level, which cannot exceed the allocation's.
func (ct *Ciphertext) resize(level int) error {
	if level > ct.buf.lay.LevelQ || level < 0 {
		return fmt.Errorf("level %d outside the allocation (0..%d)", level, ct.buf.lay.LevelQ)
	}
	ct.level = level
	return nil
}

// GaloisKey is an rlwe.GaloisKey resident on a backend, with its permutation.
type GaloisKey struct {
	// GaloisElement is the automorphism X -> X^GaloisElement.
	GaloisElement uint64
	// Key is the key-switching key.
	Key GadgetKey
	// Index is the NTT-domain permutation of the automorphism.
	Index AutomorphismIndex
}

// RelinearizationKey is an rlwe.RelinearizationKey resident on a backend.
type RelinearizationKey struct {
	// Key is the key-switching key from s^2 to s.
	Key GadgetKey
}

// EvaluationKeySet holds the keys an Evaluator uses.
type EvaluationKeySet struct {
	// Relin is used by MulRelin; it may be nil.
	Relin *RelinearizationKey
	// Galois maps Galois elements to their keys.
	Galois map[uint64]*GaloisKey
}

// UploadEvaluationKeySet uploads a relinearization key (which may be nil)
// and Galois keys.
func UploadEvaluationKeySet(be Backend, rlk *rlwe.RelinearizationKey, gks ...*rlwe.GaloisKey) (*EvaluationKeySet, error) {
	set := &EvaluationKeySet{Galois: make(map[uint64]*GaloisKey, len(gks))}
	if rlk != nil {
		k, err := be.UploadGadgetKey(&rlk.GadgetCiphertext)
		if err != nil {
			return nil, fmt.Errorf("cannot UploadEvaluationKeySet: relinearization key: %w", err)
		}
		set.Relin = &RelinearizationKey{Key: k}
	}
	for _, gk := range gks {
		k, err := be.UploadGadgetKey(&gk.GadgetCiphertext)
		if err != nil {
			return nil, fmt.Errorf("cannot UploadEvaluationKeySet: Galois key %d: %w", gk.GaloisElement, err)
		}
		idx, err := be.NewAutomorphismIndex(gk.GaloisElement)
		if err != nil {
			return nil, fmt.Errorf("cannot UploadEvaluationKeySet: Galois key %d: %w", gk.GaloisElement, err)
		}
		set.Galois[gk.GaloisElement] = &GaloisKey{GaloisElement: gk.GaloisElement, Key: k, Index: idx}
	}
	return set, nil
}

// Release frees the backend memory of every key of the set.
func (s *EvaluationKeySet) Release() error {
	var first error
	keep := func(err error) {
		if first == nil && err != nil {
			first = fmt.Errorf("cannot Release: %w", err)
		}
	}
	if s.Relin != nil {
		keep(s.Relin.Key.Release())
	}
	for _, g := range s.Galois {
		keep(g.Key.Release())
		keep(g.Index.Release())
	}
	return first
}

// workspace is the scratch memory of one evaluation, at the largest levels.
type workspace struct {
	coeff  Buffer // 1 x Q: the input of the decomposition, coefficient domain
	digits Buffer // D x QP: the gadget decomposition
	acc    Buffer // 2 x QP: the key inner product
	ks     Buffer // 2 x Q: the key-switched pair
	mf     Buffer // 2 x Q: MForm of a multiplicand
	prod   Buffer // 3 x Q: the degree-2 product
}

// Evaluator composes the Backend steps into the key-switching operations of
// Lattigo's rlwe and ckks evaluators (GadgetProduct, Automorphism, Rotate,
// MulRelin, Rescale) with bit-identical results. Scratch memory comes from a
// small pool, so an Evaluator is safe for concurrent use on distinct outputs.
type Evaluator struct {
	be     Backend
	params *Params
	keys   *EvaluationKeySet
	pool   chan *workspace
}

// NewEvaluator returns an Evaluator running on be with keys (which may be nil).
func NewEvaluator(be Backend, keys *EvaluationKeySet) *Evaluator {
	if keys == nil {
		keys = &EvaluationKeySet{}
	}
	return &Evaluator{be: be, params: be.Params(), keys: keys, pool: make(chan *workspace, 4)}
}

// Backend returns the backend the evaluator runs on.
func (e *Evaluator) Backend() Backend { return e.be }

// Close frees the pooled scratch memory.
func (e *Evaluator) Close() error {
	for {
		select {
		case w := <-e.pool:
			if err := e.freeWorkspace(w); err != nil {
				return fmt.Errorf("cannot Close: %w", err)
			}
		default:
			return nil
		}
	}
}

func (e *Evaluator) getWorkspace() (*workspace, error) {
	select {
	case w := <-e.pool:
		return w, nil
	default:
	}
	p := e.params
	if p.MaxLevelP() < 0 {
		return nil, fmt.Errorf("parameters without P moduli (NewParamsQ) cannot key-switch")
	}
	q := Basis{p.MaxLevelQ(), -1}
	qp := Basis{p.MaxLevelQ(), p.MaxLevelP()}
	w := &workspace{}
	for _, a := range []struct {
		dst   *Buffer
		b     Basis
		count int
	}{
		{&w.coeff, q, 1}, {&w.digits, qp, p.DigitCount(p.MaxLevelQ(), p.MaxLevelP())}, {&w.acc, qp, 2},
		{&w.ks, q, 2}, {&w.mf, q, 2}, {&w.prod, q, 3},
	} {
		buf, err := e.be.Alloc(a.b, a.count)
		if err != nil {
			_ = e.freeWorkspace(w)
			return nil, err
		}
		*a.dst = buf
	}
	return w, nil
}

func (e *Evaluator) putWorkspace(w *workspace) {
	select {
	case e.pool <- w:
	default:
		_ = e.freeWorkspace(w)
	}
}

func (e *Evaluator) freeWorkspace(w *workspace) error {
	for _, b := range []Buffer{w.coeff, w.digits, w.acc, w.ks, w.mf, w.prod} {
		if !b.IsZero() {
			if err := e.be.Free(b); err != nil {
				return err
			}
		}
	}
	return nil
}

// NewCiphertext allocates a zero ciphertext at level on the backend.
func (e *Evaluator) NewCiphertext(level int) (*Ciphertext, error) {
	buf, err := e.be.Alloc(Basis{level, -1}, 2)
	if err != nil {
		return nil, fmt.Errorf("cannot NewCiphertext: %w", err)
	}
	return &Ciphertext{buf: buf, level: level, MetaData: rlwe.MetaData{}}, nil
}

// UploadCiphertext copies a degree-1 NTT-domain Lattigo ciphertext to the backend.
func (e *Evaluator) UploadCiphertext(ct *rlwe.Ciphertext) (*Ciphertext, error) {
	if ct.Degree() != 1 || ct.MetaData == nil || !ct.IsNTT {
		return nil, fmt.Errorf("cannot UploadCiphertext: want a degree-1 ciphertext in the NTT domain")
	}
	out, err := e.NewCiphertext(ct.Level())
	if err != nil {
		return nil, fmt.Errorf("cannot UploadCiphertext: %w", err)
	}
	if err := e.be.Upload(out.buf, []ringqp.Poly{{Q: ct.Value[0]}, {Q: ct.Value[1]}}); err != nil {
		_ = e.be.Free(out.buf)
		return nil, fmt.Errorf("cannot UploadCiphertext: %w", err)
	}
	out.MetaData = *ct.MetaData
	return out, nil
}

// DownloadCiphertext copies ct into the Lattigo ciphertext out, resizing it
// to ct's level.
func (e *Evaluator) DownloadCiphertext(ct *Ciphertext, out *rlwe.Ciphertext) error {
	out.Resize(1, ct.level)
	if err := e.be.Download(ct.Value(), []ringqp.Poly{{Q: out.Value[0]}, {Q: out.Value[1]}}); err != nil {
		return fmt.Errorf("cannot DownloadCiphertext: %w", err)
	}
	if out.MetaData == nil {
		out.MetaData = &rlwe.MetaData{}
	}
	*out.MetaData = ct.MetaData
	return nil
}

// FreeCiphertext releases the backend memory of ct.
func (e *Evaluator) FreeCiphertext(ct *Ciphertext) error {
	if err := e.be.Free(ct.buf); err != nil {
		return fmt.Errorf("cannot FreeCiphertext: %w", err)
	}
	return nil
}

// GadgetProduct is rlwe.Evaluator.GadgetProduct for an NTT-domain cx (one
// polynomial, Q basis) and an NTT-domain output pair out (two polynomials,
// Q basis at levelQ or above): out = round(<decomp(cx), key> / P).
func (e *Evaluator) GadgetProduct(levelQ int, cx Buffer, key GadgetKey, out Buffer) error {
	w, err := e.getWorkspace()
	if err != nil {
		return fmt.Errorf("cannot GadgetProduct: %w", err)
	}
	defer e.putWorkspace(w)
	if err := e.gadgetProduct(w, levelQ, cx, key, out); err != nil {
		return fmt.Errorf("cannot GadgetProduct: %w", err)
	}
	return nil
}

func (e *Evaluator) gadgetProduct(w *workspace, levelQ int, cx Buffer, key GadgetKey, out Buffer) error {
	levelQ = min(levelQ, key.LevelQ())
	levelP := key.LevelP()
	if cx.lay.LevelQ < levelQ || out.lay.LevelQ < levelQ || out.lay.Count != 2 || cx.lay.Count != 1 {
		return fmt.Errorf("operands (%d x %s, %d x %s) do not fit level %d",
			cx.lay.Count, cx.Basis(), out.lay.Count, out.Basis(), levelQ)
	}
	cx = cx.AtLevel(levelQ, -1)
	cc := w.coeff.AtLevel(levelQ, -1)
	if err := e.be.INTT(cc, cx); err != nil {
		return err
	}
	nd := e.params.DigitCount(levelQ, levelP)
	var digits Buffer
	if nd <= w.digits.Count() {
		digits = w.digits.AtLevel(levelQ, levelP).Slice(0, nd)
	} else { // a key with fewer P moduli than the parameters: more digits
		tmp, err := e.be.Alloc(Basis{levelQ, levelP}, nd)
		if err != nil {
			return err
		}
		defer e.be.Free(tmp)
		digits = tmp
	}
	if err := e.be.DecomposeNTT(digits, cx, cc, levelP); err != nil {
		return err
	}
	acc := w.acc.AtLevel(levelQ, levelP)
	if err := e.be.GadgetInnerProduct(acc, digits, key); err != nil {
		return err
	}
	return e.be.ModDownNTT(out.AtLevel(levelQ, -1), acc)
}

// Automorphism is rlwe.Evaluator.Automorphism: out = phi(ct) for
// phi: X -> X^galEl, key-switched back to the secret key.
func (e *Evaluator) Automorphism(ct *Ciphertext, galEl uint64, out *Ciphertext) error {
	level := min(ct.level, out.buf.lay.LevelQ)
	if galEl == 1 {
		if out != ct {
			if err := out.resize(level); err != nil {
				return fmt.Errorf("cannot Automorphism: %w", err)
			}
			if err := e.be.Copy(out.Value(), ct.Value().AtLevel(level, -1)); err != nil {
				return fmt.Errorf("cannot Automorphism: %w", err)
			}
			out.MetaData = ct.MetaData
		}
		return nil
	}
	gk, ok := e.keys.Galois[galEl]
	if !ok {
		return fmt.Errorf("cannot Automorphism: no Galois key for element %d", galEl)
	}
	w, err := e.getWorkspace()
	if err != nil {
		return fmt.Errorf("cannot Automorphism: %w", err)
	}
	defer e.putWorkspace(w)

	in := ct.Value().AtLevel(level, -1)
	ks := w.ks.AtLevel(level, -1)
	if err := e.gadgetProduct(w, level, in.Poly(1), gk.Key, ks); err != nil {
		return fmt.Errorf("cannot Automorphism: %w", err)
	}
	if err := e.be.Add(ks.Poly(0), ks.Poly(0), in.Poly(0)); err != nil {
		return fmt.Errorf("cannot Automorphism: %w", err)
	}
	md := ct.MetaData
	if err := out.resize(level); err != nil {
		return fmt.Errorf("cannot Automorphism: %w", err)
	}
	if err := e.be.AutomorphismNTT(out.Value(), ks, gk.Index); err != nil {
		return fmt.Errorf("cannot Automorphism: %w", err)
	}
	out.MetaData = md
	return nil
}

// GaloisElement returns the Galois element of a rotation by k slots,
// 5^k mod 2N (rlwe.Parameters.GaloisElement).
func (e *Evaluator) GaloisElement(k int) uint64 {
	nthRoot := e.params.NthRoot()
	return ring.ModExp(ring.GaloisGen, uint64(k)&(nthRoot-1), nthRoot)
}

// Rotate is ckks.Evaluator.Rotate: rotates the slots of ct by k to the left.
func (e *Evaluator) Rotate(ct *Ciphertext, k int, out *Ciphertext) error {
	if err := e.Automorphism(ct, e.GaloisElement(k), out); err != nil {
		return fmt.Errorf("cannot Rotate: %w", err)
	}
	return nil
}

// MulRelin is ckks.Evaluator.MulRelin for two ciphertexts: out = a*b,
// relinearized; out's scale is the product of the scales.
func (e *Evaluator) MulRelin(a, b, out *Ciphertext) error {
	if e.keys.Relin == nil {
		return fmt.Errorf("cannot MulRelin: no relinearization key")
	}
	level := min(a.level, b.level, out.buf.lay.LevelQ)
	w, err := e.getWorkspace()
	if err != nil {
		return fmt.Errorf("cannot MulRelin: %w", err)
	}
	defer e.putWorkspace(w)

	be := e.be
	av, bv := a.Value().AtLevel(level, -1), b.Value().AtLevel(level, -1)
	mf := w.mf.AtLevel(level, -1)
	prod := w.prod.AtLevel(level, -1)
	c0, c1, c2 := prod.Poly(0), prod.Poly(1), prod.Poly(2)
	steps := []func() error{
		func() error { return be.MForm(mf, av) },
		func() error { return be.MulCoeffsMontgomery(c0, mf.Poly(0), bv.Poly(0)) },
		func() error { return be.MulCoeffsMontgomery(c2, mf.Poly(1), bv.Poly(1)) },
		func() error { return be.MulCoeffsMontgomery(c1, mf.Poly(0), bv.Poly(1)) },
		func() error { return be.MulCoeffsMontgomeryThenAdd(c1, mf.Poly(1), bv.Poly(0)) },
		func() error { return e.gadgetProduct(w, level, c2, e.keys.Relin.Key, w.ks.AtLevel(level, -1)) },
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return fmt.Errorf("cannot MulRelin: %w", err)
		}
	}
	md := a.MetaData
	md.Scale = a.MetaData.Scale.Mul(b.MetaData.Scale)
	md.LogDimensions.Rows = max(a.MetaData.LogDimensions.Rows, b.MetaData.LogDimensions.Rows)
	md.LogDimensions.Cols = max(a.MetaData.LogDimensions.Cols, b.MetaData.LogDimensions.Cols)
	if err := out.resize(level); err != nil {
		return fmt.Errorf("cannot MulRelin: %w", err)
	}
	if err := be.Add(out.Value(), prod.Slice(0, 2), w.ks.AtLevel(level, -1)); err != nil {
		return fmt.Errorf("cannot MulRelin: %w", err)
	}
	out.MetaData = md
	return nil
}

// Rescale is ckks.Evaluator.Rescale (one modulus per rescale): divides ct
// by its last modulus and rounds; out is one level lower.
func (e *Evaluator) Rescale(ct, out *Ciphertext) error {
	l := ct.level
	if l < 1 {
		return fmt.Errorf("cannot Rescale: input Ciphertext level is too low")
	}
	if out.buf.lay.LevelQ < l-1 {
		return fmt.Errorf("cannot Rescale: output allocation below level %d", l-1)
	}
	md := ct.MetaData
	md.Scale = md.Scale.Div(rlwe.NewScale(e.params.q[l].Q))
	if err := e.be.RescaleNTT(out.buf.AtLevel(l-1, -1), ct.Value()); err != nil {
		return fmt.Errorf("cannot Rescale: %w", err)
	}
	out.level = l - 1
	out.MetaData = md
	return nil
}
