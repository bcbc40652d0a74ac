package kernels

// The unrolled NTT kernels: the same butterflies, in the same order per
// output word, as cpu_ntt_generic.go and Lattigo's nttUnrolled16Lazy and
// inttLazyUnrolled16, eight or sixteen words per iteration through
// fixed-size array views (no bounds checks inside the block).

// nttLazyUnrolled is nttLazyGeneric, eight butterflies per iteration.
func nttLazyUnrolled(dst, src []uint64, mod *Modulus) {
	n := len(dst)
	q, qInv, roots := mod.Q, mod.MRed, mod.RootsForward
	twoQ, fourQ := 2*q, 4*q
	src = src[:n]

	t := n >> 1
	f := roots[1]
	for j := 0; j < t; j += 8 {
		xi := (*[8]uint64)(src[j : j+8])
		yi := (*[8]uint64)(src[j+t : j+t+8])
		xo := (*[8]uint64)(dst[j : j+8])
		yo := (*[8]uint64)(dst[j+t : j+t+8])
		xo[0], yo[0] = butterfly(xi[0], yi[0], f, twoQ, fourQ, q, qInv, false)
		xo[1], yo[1] = butterfly(xi[1], yi[1], f, twoQ, fourQ, q, qInv, false)
		xo[2], yo[2] = butterfly(xi[2], yi[2], f, twoQ, fourQ, q, qInv, false)
		xo[3], yo[3] = butterfly(xi[3], yi[3], f, twoQ, fourQ, q, qInv, false)
		xo[4], yo[4] = butterfly(xi[4], yi[4], f, twoQ, fourQ, q, qInv, false)
		xo[5], yo[5] = butterfly(xi[5], yi[5], f, twoQ, fourQ, q, qInv, false)
		xo[6], yo[6] = butterfly(xi[6], yi[6], f, twoQ, fourQ, q, qInv, false)
		xo[7], yo[7] = butterfly(xi[7], yi[7], f, twoQ, fourQ, q, qInv, false)
	}

	for m := 2; m < n; m <<= 1 {
		t >>= 1
		reduce := forwardReduces(m, t)
		switch {
		case t >= 8:
			if reduce {
				for i := 0; i < m; i++ {
					j1 := 2 * i * t
					f = roots[m+i]
					for j := j1; j < j1+t; j += 8 {
						x := (*[8]uint64)(dst[j : j+8])
						y := (*[8]uint64)(dst[j+t : j+t+8])
						x[0], y[0] = butterfly(x[0], y[0], f, twoQ, fourQ, q, qInv, true)
						x[1], y[1] = butterfly(x[1], y[1], f, twoQ, fourQ, q, qInv, true)
						x[2], y[2] = butterfly(x[2], y[2], f, twoQ, fourQ, q, qInv, true)
						x[3], y[3] = butterfly(x[3], y[3], f, twoQ, fourQ, q, qInv, true)
						x[4], y[4] = butterfly(x[4], y[4], f, twoQ, fourQ, q, qInv, true)
						x[5], y[5] = butterfly(x[5], y[5], f, twoQ, fourQ, q, qInv, true)
						x[6], y[6] = butterfly(x[6], y[6], f, twoQ, fourQ, q, qInv, true)
						x[7], y[7] = butterfly(x[7], y[7], f, twoQ, fourQ, q, qInv, true)
					}
				}
			} else {
				for i := 0; i < m; i++ {
					j1 := 2 * i * t
					f = roots[m+i]
					for j := j1; j < j1+t; j += 8 {
						x := (*[8]uint64)(dst[j : j+8])
						y := (*[8]uint64)(dst[j+t : j+t+8])
						x[0], y[0] = butterfly(x[0], y[0], f, twoQ, fourQ, q, qInv, false)
						x[1], y[1] = butterfly(x[1], y[1], f, twoQ, fourQ, q, qInv, false)
						x[2], y[2] = butterfly(x[2], y[2], f, twoQ, fourQ, q, qInv, false)
						x[3], y[3] = butterfly(x[3], y[3], f, twoQ, fourQ, q, qInv, false)
						x[4], y[4] = butterfly(x[4], y[4], f, twoQ, fourQ, q, qInv, false)
						x[5], y[5] = butterfly(x[5], y[5], f, twoQ, fourQ, q, qInv, false)
						x[6], y[6] = butterfly(x[6], y[6], f, twoQ, fourQ, q, qInv, false)
						x[7], y[7] = butterfly(x[7], y[7], f, twoQ, fourQ, q, qInv, false)
					}
				}
			}
		case t == 4:
			if reduce {
				for i := 0; i < m; i += 2 {
					psi := (*[2]uint64)(roots[m+i : m+i+2])
					x := (*[16]uint64)(dst[8*i : 8*i+16])
					x[0], x[4] = butterfly(x[0], x[4], psi[0], twoQ, fourQ, q, qInv, true)
					x[1], x[5] = butterfly(x[1], x[5], psi[0], twoQ, fourQ, q, qInv, true)
					x[2], x[6] = butterfly(x[2], x[6], psi[0], twoQ, fourQ, q, qInv, true)
					x[3], x[7] = butterfly(x[3], x[7], psi[0], twoQ, fourQ, q, qInv, true)
					x[8], x[12] = butterfly(x[8], x[12], psi[1], twoQ, fourQ, q, qInv, true)
					x[9], x[13] = butterfly(x[9], x[13], psi[1], twoQ, fourQ, q, qInv, true)
					x[10], x[14] = butterfly(x[10], x[14], psi[1], twoQ, fourQ, q, qInv, true)
					x[11], x[15] = butterfly(x[11], x[15], psi[1], twoQ, fourQ, q, qInv, true)
				}
			} else {
				for i := 0; i < m; i += 2 {
					psi := (*[2]uint64)(roots[m+i : m+i+2])
					x := (*[16]uint64)(dst[8*i : 8*i+16])
					x[0], x[4] = butterfly(x[0], x[4], psi[0], twoQ, fourQ, q, qInv, false)
					x[1], x[5] = butterfly(x[1], x[5], psi[0], twoQ, fourQ, q, qInv, false)
					x[2], x[6] = butterfly(x[2], x[6], psi[0], twoQ, fourQ, q, qInv, false)
					x[3], x[7] = butterfly(x[3], x[7], psi[0], twoQ, fourQ, q, qInv, false)
					x[8], x[12] = butterfly(x[8], x[12], psi[1], twoQ, fourQ, q, qInv, false)
					x[9], x[13] = butterfly(x[9], x[13], psi[1], twoQ, fourQ, q, qInv, false)
					x[10], x[14] = butterfly(x[10], x[14], psi[1], twoQ, fourQ, q, qInv, false)
					x[11], x[15] = butterfly(x[11], x[15], psi[1], twoQ, fourQ, q, qInv, false)
				}
			}
		case t == 2:
			if reduce {
				for i := 0; i < m; i += 4 {
					psi := (*[4]uint64)(roots[m+i : m+i+4])
					x := (*[16]uint64)(dst[4*i : 4*i+16])
					x[0], x[2] = butterfly(x[0], x[2], psi[0], twoQ, fourQ, q, qInv, true)
					x[1], x[3] = butterfly(x[1], x[3], psi[0], twoQ, fourQ, q, qInv, true)
					x[4], x[6] = butterfly(x[4], x[6], psi[1], twoQ, fourQ, q, qInv, true)
					x[5], x[7] = butterfly(x[5], x[7], psi[1], twoQ, fourQ, q, qInv, true)
					x[8], x[10] = butterfly(x[8], x[10], psi[2], twoQ, fourQ, q, qInv, true)
					x[9], x[11] = butterfly(x[9], x[11], psi[2], twoQ, fourQ, q, qInv, true)
					x[12], x[14] = butterfly(x[12], x[14], psi[3], twoQ, fourQ, q, qInv, true)
					x[13], x[15] = butterfly(x[13], x[15], psi[3], twoQ, fourQ, q, qInv, true)
				}
			} else {
				for i := 0; i < m; i += 4 {
					psi := (*[4]uint64)(roots[m+i : m+i+4])
					x := (*[16]uint64)(dst[4*i : 4*i+16])
					x[0], x[2] = butterfly(x[0], x[2], psi[0], twoQ, fourQ, q, qInv, false)
					x[1], x[3] = butterfly(x[1], x[3], psi[0], twoQ, fourQ, q, qInv, false)
					x[4], x[6] = butterfly(x[4], x[6], psi[1], twoQ, fourQ, q, qInv, false)
					x[5], x[7] = butterfly(x[5], x[7], psi[1], twoQ, fourQ, q, qInv, false)
					x[8], x[10] = butterfly(x[8], x[10], psi[2], twoQ, fourQ, q, qInv, false)
					x[9], x[11] = butterfly(x[9], x[11], psi[2], twoQ, fourQ, q, qInv, false)
					x[12], x[14] = butterfly(x[12], x[14], psi[3], twoQ, fourQ, q, qInv, false)
					x[13], x[15] = butterfly(x[13], x[15], psi[3], twoQ, fourQ, q, qInv, false)
				}
			}
		default: // t == 1, always reduced
			for i := 0; i < m; i += 8 {
				psi := (*[8]uint64)(roots[m+i : m+i+8])
				x := (*[16]uint64)(dst[2*i : 2*i+16])
				x[0], x[1] = butterfly(x[0], x[1], psi[0], twoQ, fourQ, q, qInv, true)
				x[2], x[3] = butterfly(x[2], x[3], psi[1], twoQ, fourQ, q, qInv, true)
				x[4], x[5] = butterfly(x[4], x[5], psi[2], twoQ, fourQ, q, qInv, true)
				x[6], x[7] = butterfly(x[6], x[7], psi[3], twoQ, fourQ, q, qInv, true)
				x[8], x[9] = butterfly(x[8], x[9], psi[4], twoQ, fourQ, q, qInv, true)
				x[10], x[11] = butterfly(x[10], x[11], psi[5], twoQ, fourQ, q, qInv, true)
				x[12], x[13] = butterfly(x[12], x[13], psi[6], twoQ, fourQ, q, qInv, true)
				x[14], x[15] = butterfly(x[14], x[15], psi[7], twoQ, fourQ, q, qInv, true)
			}
		}
	}
}

// inttLazyCoreUnrolled is inttLazyCoreGeneric, eight butterflies per iteration.
func inttLazyCoreUnrolled(dst, src []uint64, mod *Modulus) {
	n := len(dst)
	q, qInv, roots := mod.Q, mod.MRed, mod.RootsBackward
	twoQ, fourQ := 2*q, 4*q
	src = src[:n]

	h := n >> 1
	for i, j := h, 0; i < 2*h; i, j = i+8, j+16 {
		psi := (*[8]uint64)(roots[i : i+8])
		xi := (*[16]uint64)(src[j : j+16])
		xo := (*[16]uint64)(dst[j : j+16])
		xo[0], xo[1] = invButterfly(xi[0], xi[1], psi[0], twoQ, fourQ, q, qInv)
		xo[2], xo[3] = invButterfly(xi[2], xi[3], psi[1], twoQ, fourQ, q, qInv)
		xo[4], xo[5] = invButterfly(xi[4], xi[5], psi[2], twoQ, fourQ, q, qInv)
		xo[6], xo[7] = invButterfly(xi[6], xi[7], psi[3], twoQ, fourQ, q, qInv)
		xo[8], xo[9] = invButterfly(xi[8], xi[9], psi[4], twoQ, fourQ, q, qInv)
		xo[10], xo[11] = invButterfly(xi[10], xi[11], psi[5], twoQ, fourQ, q, qInv)
		xo[12], xo[13] = invButterfly(xi[12], xi[13], psi[6], twoQ, fourQ, q, qInv)
		xo[14], xo[15] = invButterfly(xi[14], xi[15], psi[7], twoQ, fourQ, q, qInv)
	}

	t := 2
	for m := n >> 1; m > 1; m >>= 1 {
		h = m >> 1
		switch {
		case t >= 8:
			for i := 0; i < h; i++ {
				j1 := 2 * i * t
				f := roots[h+i]
				for j := j1; j < j1+t; j += 8 {
					x := (*[8]uint64)(dst[j : j+8])
					y := (*[8]uint64)(dst[j+t : j+t+8])
					x[0], y[0] = invButterfly(x[0], y[0], f, twoQ, fourQ, q, qInv)
					x[1], y[1] = invButterfly(x[1], y[1], f, twoQ, fourQ, q, qInv)
					x[2], y[2] = invButterfly(x[2], y[2], f, twoQ, fourQ, q, qInv)
					x[3], y[3] = invButterfly(x[3], y[3], f, twoQ, fourQ, q, qInv)
					x[4], y[4] = invButterfly(x[4], y[4], f, twoQ, fourQ, q, qInv)
					x[5], y[5] = invButterfly(x[5], y[5], f, twoQ, fourQ, q, qInv)
					x[6], y[6] = invButterfly(x[6], y[6], f, twoQ, fourQ, q, qInv)
					x[7], y[7] = invButterfly(x[7], y[7], f, twoQ, fourQ, q, qInv)
				}
			}
		case t == 4:
			for i := 0; i < h; i += 2 {
				psi := (*[2]uint64)(roots[h+i : h+i+2])
				x := (*[16]uint64)(dst[8*i : 8*i+16])
				x[0], x[4] = invButterfly(x[0], x[4], psi[0], twoQ, fourQ, q, qInv)
				x[1], x[5] = invButterfly(x[1], x[5], psi[0], twoQ, fourQ, q, qInv)
				x[2], x[6] = invButterfly(x[2], x[6], psi[0], twoQ, fourQ, q, qInv)
				x[3], x[7] = invButterfly(x[3], x[7], psi[0], twoQ, fourQ, q, qInv)
				x[8], x[12] = invButterfly(x[8], x[12], psi[1], twoQ, fourQ, q, qInv)
				x[9], x[13] = invButterfly(x[9], x[13], psi[1], twoQ, fourQ, q, qInv)
				x[10], x[14] = invButterfly(x[10], x[14], psi[1], twoQ, fourQ, q, qInv)
				x[11], x[15] = invButterfly(x[11], x[15], psi[1], twoQ, fourQ, q, qInv)
			}
		default: // t == 2
			for i := 0; i < h; i += 4 {
				psi := (*[4]uint64)(roots[h+i : h+i+4])
				x := (*[16]uint64)(dst[4*i : 4*i+16])
				x[0], x[2] = invButterfly(x[0], x[2], psi[0], twoQ, fourQ, q, qInv)
				x[1], x[3] = invButterfly(x[1], x[3], psi[0], twoQ, fourQ, q, qInv)
				x[4], x[6] = invButterfly(x[4], x[6], psi[1], twoQ, fourQ, q, qInv)
				x[5], x[7] = invButterfly(x[5], x[7], psi[1], twoQ, fourQ, q, qInv)
				x[8], x[10] = invButterfly(x[8], x[10], psi[2], twoQ, fourQ, q, qInv)
				x[9], x[11] = invButterfly(x[9], x[11], psi[2], twoQ, fourQ, q, qInv)
				x[12], x[14] = invButterfly(x[12], x[14], psi[3], twoQ, fourQ, q, qInv)
				x[13], x[15] = invButterfly(x[13], x[15], psi[3], twoQ, fourQ, q, qInv)
			}
		}
		t <<= 1
	}
}

// reduceUnrolled is reduceGeneric, eight words per iteration.
func reduceUnrolled(dst, src []uint64, mod *Modulus) {
	q, u := mod.Q, mod.BRed
	src = src[:len(dst)]
	for j := 0; j < len(dst); j += 8 {
		x := (*[8]uint64)(src[j : j+8])
		z := (*[8]uint64)(dst[j : j+8])
		z[0] = bredAdd(x[0], q, u)
		z[1] = bredAdd(x[1], q, u)
		z[2] = bredAdd(x[2], q, u)
		z[3] = bredAdd(x[3], q, u)
		z[4] = bredAdd(x[4], q, u)
		z[5] = bredAdd(x[5], q, u)
		z[6] = bredAdd(x[6], q, u)
		z[7] = bredAdd(x[7], q, u)
	}
}

// mulScalarMontgomeryUnrolled is mulScalarMontgomeryGeneric, eight words per iteration.
func mulScalarMontgomeryUnrolled(dst, src []uint64, c uint64, mod *Modulus, lazy bool) {
	q, qInv := mod.Q, mod.MRed
	src = src[:len(dst)]
	for j := 0; j < len(dst); j += 8 {
		x := (*[8]uint64)(src[j : j+8])
		z := (*[8]uint64)(dst[j : j+8])
		if lazy {
			z[0] = mredLazy(x[0], c, q, qInv)
			z[1] = mredLazy(x[1], c, q, qInv)
			z[2] = mredLazy(x[2], c, q, qInv)
			z[3] = mredLazy(x[3], c, q, qInv)
			z[4] = mredLazy(x[4], c, q, qInv)
			z[5] = mredLazy(x[5], c, q, qInv)
			z[6] = mredLazy(x[6], c, q, qInv)
			z[7] = mredLazy(x[7], c, q, qInv)
		} else {
			z[0] = mred(x[0], c, q, qInv)
			z[1] = mred(x[1], c, q, qInv)
			z[2] = mred(x[2], c, q, qInv)
			z[3] = mred(x[3], c, q, qInv)
			z[4] = mred(x[4], c, q, qInv)
			z[5] = mred(x[5], c, q, qInv)
			z[6] = mred(x[6], c, q, qInv)
			z[7] = mred(x[7], c, q, qInv)
		}
	}
}
