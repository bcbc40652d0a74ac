package kernels

import (
	"github.com/tuneinsight/lattigo/v5/core/rlwe"
	"github.com/tuneinsight/lattigo/v5/ring/ringqp"
)

// Backend runs the hot operations on RNS polynomials that stay resident in
// its memory: upload once, run many operations, download. Every operation
// applies to every polynomial of its operands (batching), operands of one
// call must have the same degree, count and basis unless a method says
// otherwise, and every result is word for word the result of the Lattigo v5
// routine named in the method's documentation. Polynomials are in the NTT
// domain unless a method says otherwise.
//
// A Backend is safe for concurrent use as long as concurrent calls do not
// write a Buffer another call reads or writes. Operations may run
// asynchronously: Download and Synchronize wait for every earlier one.
type Backend interface {
	// Name reports the implementation and its kernel variant, e.g.
	// "cpu/unrolled" or "cuda/sm_90".
	Name() string
	// Params returns the constants the backend was built for.
	Params() *Params

	// Alloc reserves count polynomials in basis b, zeroed.
	Alloc(b Basis, count int) (Buffer, error)
	// Free releases the memory of a buffer returned by Alloc; views of it
	// become invalid.
	Free(b Buffer) error
	// Upload writes src[k] (its first LevelQ+1 Q limbs and LevelP+1 P limbs)
	// into the k-th polynomial of dst; len(src) must be dst.Count().
	Upload(dst Buffer, src []ringqp.Poly) error
	// Download reads the k-th polynomial of src into dst[k], which must have
	// at least as many limbs.
	Download(src Buffer, dst []ringqp.Poly) error
	// Copy copies src into dst.
	Copy(dst, src Buffer) error
	// Synchronize waits until every queued operation has completed.
	Synchronize() error
	// Close releases everything the backend holds (not the Buffers it
	// handed out, which must be freed before).
	Close() error

	// NTT is ring.Ring.NTT on every limb: the negacyclic forward transform,
	// output in [0, q).
	NTT(dst, src Buffer) error
	// NTTLazy is ring.Ring.NTTLazy: output in [0, 2q), same representatives as Lattigo.
	NTTLazy(dst, src Buffer) error
	// INTT is ring.Ring.INTT: the inverse transform, output in [0, q).
	INTT(dst, src Buffer) error
	// INTTLazy is ring.Ring.INTTLazy: output in [0, 2q).
	INTTLazy(dst, src Buffer) error

	// Add is ring.Ring.Add: dst = a + b mod q.
	Add(dst, a, b Buffer) error
	// Sub is ring.Ring.Sub: dst = a - b mod q.
	Sub(dst, a, b Buffer) error
	// Reduce is ring.Ring.Reduce: dst = a mod q in [0, q).
	Reduce(dst, a Buffer) error
	// MForm is ring.Ring.MForm: dst = a * 2^64 mod q.
	MForm(dst, a Buffer) error
	// MulCoeffsMontgomery is ring.Ring.MulCoeffsMontgomery: dst = a * b * 2^-64 mod q.
	MulCoeffsMontgomery(dst, a, b Buffer) error
	// MulCoeffsMontgomeryThenAdd is ring.Ring.MulCoeffsMontgomeryThenAdd:
	// dst = dst + a * b * 2^-64 mod q.
	MulCoeffsMontgomeryThenAdd(dst, a, b Buffer) error
	// ReduceLazy is ring.Ring.ReduceLazy: dst = a mod q in [0, 2q), for
	// any 64-bit words.
	ReduceLazy(dst, a Buffer) error
	// MulCoeffsMontgomeryLazyThenAddLazy is
	// ring.Ring.MulCoeffsMontgomeryLazyThenAddLazy: dst = dst + a * b *
	// 2^-64, every product lazily reduced to [0, 2q) and the sum not reduced
	// at all (a and b below q; the caller bounds the number of terms, see
	// LazyTerms).
	MulCoeffsMontgomeryLazyThenAddLazy(dst, a, b Buffer) error
	// MulMatrixMontgomery is the product of a matrix of ciphertexts by a
	// matrix of plaintexts in Montgomery form, the hot loop of
	// ckks/polymat: for every limb and coefficient,
	//
	//	dst[r, c, p] = Σ_a x[r, a, p] · wt[c, a] · 2^-64 mod q, in [0, q),
	//
	// the words Lattigo computes with MulCoeffsMontgomeryLazyThenAddLazy into
	// a zero accumulator, ReduceLazy whenever one more term could overflow
	// and Reduce at the end (MatrixShape has the operands' layout). dst must
	// not overlap x or wt.
	MulMatrixMontgomery(dst, x, wt Buffer, shape MatrixShape) error

	// NewAutomorphismIndex uploads the NTT-domain permutation of
	// X -> X^galEl (ring.AutomorphismNTTIndex).
	NewAutomorphismIndex(galEl uint64) (AutomorphismIndex, error)
	// AutomorphismNTT is ring.Ring.AutomorphismNTTWithIndex; dst must not
	// overlap src.
	AutomorphismNTT(dst, src Buffer, index AutomorphismIndex) error

	// DecomposeNTT is rlwe.Evaluator.DecomposeNTT: the RNS gadget
	// decomposition for a key at levelP. cNTT and cCoeff hold the same
	// polynomials (Q basis, at levelQ) in the NTT and the coefficient domain;
	// dst holds, for the k-th polynomial, its DigitCount(levelQ, levelP)
	// digits extended to basis (levelQ, levelP), NTT domain, at
	// k*DigitCount .. (k+1)*DigitCount-1.
	DecomposeNTT(dst, cNTT, cCoeff Buffer, levelP int) error
	// UploadGadgetKey uploads the gadget ciphertext of an evaluation key
	// (rlwe.EvaluationKey.GadgetCiphertext, with BaseTwoDecomposition 0).
	UploadGadgetKey(key *rlwe.GadgetCiphertext) (GadgetKey, error)
	// GadgetInnerProduct is the multiply-accumulate of
	// rlwe.Evaluator.GadgetProductHoistedLazy: for the k-th group of digits,
	// dst[2k+c] = sum_i digits[k*D+i] * key[i][c] mod QP (c = 0, 1; D digits),
	// with Lattigo's lazy accumulation and its reductions. dst has basis
	// (levelQ, key levelP), digits are DecomposeNTT's output.
	GadgetInnerProduct(dst, digits Buffer, key GadgetKey) error
	// ModDownNTT is ring.BasisExtender.ModDownQPtoQNTT on every polynomial:
	// dst (basis Q at levelQ) = round(src / P) for src in basis (levelQ, levelP).
	ModDownNTT(dst, src Buffer) error
	// RescaleNTT is ring.Ring.DivRoundByLastModulusNTT on every polynomial:
	// dst (at level l-1) = round(src / Q_l) for src at level l, no P limbs.
	RescaleNTT(dst, src Buffer) error
}

// AutomorphismIndex is a backend-resident permutation of the NTT slots.
type AutomorphismIndex interface {
	// GaloisElement returns the Galois element the permutation is for.
	GaloisElement() uint64
	// Release frees the backend memory of the index.
	Release() error
}

// GadgetKey is a backend-resident gadget ciphertext (a key-switching key).
type GadgetKey interface {
	// LevelQ and LevelP are the levels of the key's moduli.
	LevelQ() int
	LevelP() int
	// Digits returns the number of RNS digits of the key.
	Digits() int
	// Release frees the backend memory of the key.
	Release() error
}
