package kernels

import "math/bits"

// The scalar modular arithmetic of Lattigo v5 (ring/modular_reduction.go),
// restated so that every backend (and the CUDA kernels in package cuda) can
// be read against one definition. Lazy variants return values in [0, 2q);
// the exact outputs, non-canonical ones included, must equal Lattigo's
// because later steps (the rescale in particular) depend on the
// representative and not only on the residue.

// mred returns x*y*2^-64 mod q in [0, q), for x*y < q*2^64.
func mred(x, y, q, qInv uint64) uint64 {
	mhi, mlo := bits.Mul64(x, y)
	hhi, _ := bits.Mul64(mlo*qInv, q)
	r := mhi - hhi + q
	if r >= q {
		r -= q
	}
	return r
}

// mredLazy returns x*y*2^-64 mod q in [0, 2q).
func mredLazy(x, y, q, qInv uint64) uint64 {
	ahi, alo := bits.Mul64(x, y)
	h, _ := bits.Mul64(alo*qInv, q)
	return ahi - h + q
}

// bredAdd returns a mod q in [0, q) for any 64-bit a; u is ring.BRedConstant(q).
func bredAdd(a, q uint64, u [2]uint64) uint64 {
	mhi, _ := bits.Mul64(a, u[0])
	r := a - mhi*q
	if r >= q {
		r -= q
	}
	return r
}

// bredAddLazy returns a mod q in [0, 2q) for any 64-bit a, as ring.BRedAddLazy.
func bredAddLazy(a, q uint64, u [2]uint64) uint64 {
	mhi, _ := bits.Mul64(a, u[0])
	return a - mhi*q
}

// cred returns a - q if a >= q, else a.
func cred(a, q uint64) uint64 {
	if a >= q {
		return a - q
	}
	return a
}

// mform returns a*2^64 mod q in [0, q), as ring.MForm.
func mform(a, q uint64, u [2]uint64) uint64 {
	mhi, _ := bits.Mul64(a, u[1])
	r := -(a*u[0] + mhi) * q
	if r >= q {
		r -= q
	}
	return r
}

// butterfly is Lattigo's forward Cooley-Tukey butterfly with the input
// reduced below 4q when reduce is set: U+V*psi, U-V*psi+2q.
func butterfly(u, v, psi, twoQ, fourQ, q, qInv uint64, reduce bool) (uint64, uint64) {
	if reduce && u >= fourQ {
		u -= fourQ
	}
	v = mredLazy(v, psi, q, qInv)
	return u + v, u + twoQ - v
}

// invButterfly is Lattigo's inverse Gentleman-Sande butterfly:
// (U+V) mod 2q, (U-V+4q)*psi lazily reduced.
func invButterfly(u, v, psi, twoQ, fourQ, q, qInv uint64) (uint64, uint64) {
	x := u + v
	if x >= twoQ {
		x -= twoQ
	}
	return x, mredLazy(u+fourQ-v, psi, q, qInv)
}
