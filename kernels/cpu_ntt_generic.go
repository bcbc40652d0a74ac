package kernels

import "math/bits"

// The generic NTT kernels: Lattigo's butterflies, stage order, twiddle
// indices and lazy-reduction schedule (ring/ntt.go, the path for N >= 16),
// written as plain loops.

// forwardReduces reports whether Lattigo reduces the butterfly inputs below
// 4q in the forward stage m (m = 1, 2, 4, ..., N/2; t = N/(2m)).
func forwardReduces(m, t int) bool {
	return m > 1 && (bits.Len64(uint64(m))&1 == 1 || t == 1)
}

// nttLazyGeneric writes the forward NTT of src to dst with outputs below
// some small multiple of q, exactly as ring.NTTStandardLazy.
func nttLazyGeneric(dst, src []uint64, mod *Modulus) {
	n := len(dst)
	q, qInv, roots := mod.Q, mod.MRed, mod.RootsForward
	twoQ, fourQ := 2*q, 4*q
	src = src[:n]

	t := n >> 1
	f := roots[1]
	for j := 0; j < t; j++ {
		dst[j], dst[j+t] = butterfly(src[j], src[j+t], f, twoQ, fourQ, q, qInv, false)
	}
	for m := 2; m < n; m <<= 1 {
		t >>= 1
		reduce := forwardReduces(m, t)
		for i := 0; i < m; i++ {
			j1 := 2 * i * t
			f = roots[m+i]
			x, y := dst[j1:j1+t], dst[j1+t:j1+2*t]
			for j := range x {
				x[j], y[j] = butterfly(x[j], y[j], f, twoQ, fourQ, q, qInv, reduce)
			}
		}
	}
}

// inttLazyCoreGeneric is the butterfly network of ring.INTTStandardLazy,
// without the final multiplication by N^-1.
func inttLazyCoreGeneric(dst, src []uint64, mod *Modulus) {
	n := len(dst)
	q, qInv, roots := mod.Q, mod.MRed, mod.RootsBackward
	twoQ, fourQ := 2*q, 4*q
	src = src[:n]

	h := n >> 1
	for i := 0; i < h; i++ {
		dst[2*i], dst[2*i+1] = invButterfly(src[2*i], src[2*i+1], roots[h+i], twoQ, fourQ, q, qInv)
	}
	t := 2
	for m := n >> 1; m > 1; m >>= 1 {
		h = m >> 1
		for i := 0; i < h; i++ {
			j1 := 2 * i * t
			f := roots[h+i]
			x, y := dst[j1:j1+t], dst[j1+t:j1+2*t]
			for j := range x {
				x[j], y[j] = invButterfly(x[j], y[j], f, twoQ, fourQ, q, qInv)
			}
		}
		t <<= 1
	}
}

// reduceGeneric is ring's reducevec: x mod q in [0, q).
func reduceGeneric(dst, src []uint64, mod *Modulus) {
	src = src[:len(dst)]
	for j := range dst {
		dst[j] = bredAdd(src[j], mod.Q, mod.BRed)
	}
}

// mulScalarMontgomeryGeneric is ring's mulscalarmontgomeryvec (lazy: the
// mulscalarmontgomerylazyvec variant).
func mulScalarMontgomeryGeneric(dst, src []uint64, c uint64, mod *Modulus, lazy bool) {
	src = src[:len(dst)]
	if lazy {
		for j := range dst {
			dst[j] = mredLazy(src[j], c, mod.Q, mod.MRed)
		}
		return
	}
	for j := range dst {
		dst[j] = mred(src[j], c, mod.Q, mod.MRed)
	}
}
