// Package kernels defines the hot operations on RNS polynomials behind one
// interface, Backend, so that the key-switching pipeline of Lattigo v5
// (gadget product, automorphism, relinearization, rescale) can run on
// another device while producing the very same words as Lattigo.
//
// Layout and conventions are Lattigo's (ring.Poly, limb-major
// Coeffs[limb][coefficient]; Q limbs followed by P limbs; Montgomery
// constants as ring.MRedConstant, Barrett constants as ring.BRedConstant; the
// negacyclic NTT of ring.NumberTheoreticTransformerStandard with its
// bit-reversed twiddles and its lazy-reduction schedule). Every operation is
// exact modular arithmetic, so a Backend is correct only if it is
// bit-identical to Lattigo: the tests compare word for word.
//
// Layers, as in Lattigo: the scalar arithmetic (modarith.go) and the
// constant tables (Params) are shared by every backend; Backend exposes the
// steps (NTT, basis extension, inner product with a key, mod-down,
// automorphism, rescale, pointwise products, the lazy Montgomery
// multiply-accumulate and the fused product of a matrix of ciphertexts by
// a matrix of plaintexts of ckks/polymat) on device-resident Buffers;
// Evaluator composes the steps into GadgetProduct, Automorphism, Rotate,
// Relinearize, MulRelin and Rescale without knowing which device runs them.
//
// NewParamsQ builds the tables of a ring without P moduli (ckks/polymat's
// products need no key switching); the key-switching operations refuse it.
//
// CPU is the pure-Go reference backend. It has two kernel variants with
// identical outputs, a plain loop ("generic") and an 8-way unrolled one
// ("unrolled"); github.com/klauspost/cpuid/v2 picks one once at start-up
// (DefaultVariant()), in the manner of CIRCL's generic and fast paths. The CUDA
// backend lives in package cuda and is built only with -tags cuda.
package kernels
