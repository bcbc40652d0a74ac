package kernels

import "fmt"

// ReduceLazy is ring.Ring.ReduceLazy.
func (c *CPU) ReduceLazy(dst, a Buffer) error {
	return c.unary("ReduceLazy", dst, a, c.reduceLazy1)
}

func (c *CPU) reduceLazy1(z, x []uint64, mod *Modulus) {
	if c.variant == VariantUnrolled {
		reduceLazyUnrolled(z, x, mod)
	} else {
		reduceLazyGeneric(z, x, mod)
	}
}

// MulCoeffsMontgomeryLazyThenAddLazy is
// ring.Ring.MulCoeffsMontgomeryLazyThenAddLazy.
func (c *CPU) MulCoeffsMontgomeryLazyThenAddLazy(dst, a, b Buffer) error {
	return c.binary("MulCoeffsMontgomeryLazyThenAddLazy", dst, a, b, c.macLazy1)
}

func (c *CPU) macLazy1(z, x, y []uint64, mod *Modulus) {
	if c.variant == VariantUnrolled {
		macLazyUnrolled(z, x, y, mod)
	} else {
		macLazyGeneric(z, x, y, mod)
	}
}

// MulMatrixMontgomery is the product of a matrix of ciphertexts by a matrix
// of plaintexts (see Backend and MatrixShape). The work is split into
// independent jobs (on the backend's workers), one per limb, chunk of
// coefficients and, for many outputs, tile of rows; a job keeps the
// chunks of its accumulators in cache while the input and weight chunks
// stream through once (each input chunk serves Cols outputs, each weight
// chunk the tile's Rows·Parts), and lazily reduces them every LazyTerms(q)
// inner terms.
func (c *CPU) MulMatrixMontgomery(dst, x, wt Buffer, s MatrixShape) error {
	const op = "MulMatrixMontgomery"
	wd, err := c.host(dst)
	if err != nil {
		return fmt.Errorf("cannot %s: %w", op, err)
	}
	wx, err := c.host(x)
	if err != nil {
		return fmt.Errorf("cannot %s: %w", op, err)
	}
	ww, err := c.host(wt)
	if err != nil {
		return fmt.Errorf("cannot %s: %w", op, err)
	}
	if err := s.Check(dst, x, wt); err != nil {
		return fmt.Errorf("cannot %s: %w", op, err)
	}
	n := dst.lay.N
	chunk, rowTile := matrixTiling(n, s)
	chunks, tiles := n/chunk, ceilDivInt(s.Rows, rowTile)
	basis := dst.Basis()
	unrolled := c.variant == VariantUnrolled
	c.parallel(dst.lay.Limbs()*chunks*tiles, func(job int) {
		j, rest := job/(chunks*tiles), job%(chunks*tiles)
		lo := (rest / tiles) * chunk
		hi := lo + chunk
		r0 := (rest % tiles) * rowTile
		r1 := min(s.Rows, r0+rowTile)
		nAcc := (r1 - r0) * s.Cols * s.Parts
		nx := (r1 - r0) * s.Parts
		// The tile's input chunks of one inner index serve every column:
		// copied next to each other (packed), they stay in cache, where
		// polynomials N words apart would compete for the same sets.
		pack := s.Cols > 1 && nx > 4
		words := nAcc * chunk
		if pack {
			words += nx * chunk
		}
		mod := c.params.Modulus(basis, j)
		sp := c.getScratch(words)
		defer c.putScratch(sp)
		acc := (*sp)[:nAcc*chunk]
		xs := (*sp)[nAcc*chunk:]
		clear(acc)
		input := func(r, a, p int) []uint64 {
			if pack {
				o := ((r-r0)*s.Parts + p) * chunk
				return xs[o : o+chunk]
			}
			return limb(wx, x, (r*s.Inner+a)*s.Parts+p, j)[lo:hi]
		}
		maxTerms, terms := LazyTerms(mod.Q), 0
		for a := 0; a < s.Inner; a++ {
			if terms == maxTerms {
				if unrolled {
					reduceLazyUnrolled(acc, acc, mod)
				} else {
					reduceLazyGeneric(acc, acc, mod)
				}
				terms = 1
			}
			if pack {
				for r := r0; r < r1; r++ {
					for p := 0; p < s.Parts; p++ {
						copy(input(r, a, p), limb(wx, x, (r*s.Inner+a)*s.Parts+p, j)[lo:hi])
					}
				}
			}
			for col := 0; col < s.Cols; col++ {
				w := limb(ww, wt, col*s.Inner+a, j)[lo:hi]
				for r := r0; r < r1; r++ {
					o := ((r-r0)*s.Cols + col) * s.Parts * chunk
					p := 0
					if unrolled {
						for ; p+2 <= s.Parts; p += 2 {
							macLazy2Unrolled(acc[o+p*chunk:o+(p+1)*chunk], acc[o+(p+1)*chunk:o+(p+2)*chunk],
								input(r, a, p), input(r, a, p+1), w, mod)
						}
					}
					for ; p < s.Parts; p++ {
						z := acc[o+p*chunk : o+(p+1)*chunk]
						if unrolled {
							macLazyUnrolled(z, input(r, a, p), w, mod)
						} else {
							macLazyGeneric(z, input(r, a, p), w, mod)
						}
					}
				}
			}
			terms++
		}
		for k := 0; k < nAcc; k++ {
			z := limb(wd, dst, r0*s.Cols*s.Parts+k, j)[lo:hi]
			if unrolled {
				reduceUnrolled(z, acc[k*chunk:(k+1)*chunk], mod)
			} else {
				reduceGeneric(z, acc[k*chunk:(k+1)*chunk], mod)
			}
		}
	})
	return nil
}

func ceilDivInt(a, b int) int { return (a + b - 1) / b }

// reduceLazyGeneric is ring's reducelazyvec: x mod q in [0, 2q).
func reduceLazyGeneric(dst, src []uint64, mod *Modulus) {
	src = src[:len(dst)]
	for j := range dst {
		dst[j] = bredAddLazy(src[j], mod.Q, mod.BRed)
	}
}

// reduceLazyUnrolled is reduceLazyGeneric, eight words per iteration.
func reduceLazyUnrolled(dst, src []uint64, mod *Modulus) {
	q, u := mod.Q, mod.BRed
	src = src[:len(dst)]
	for j := 0; j < len(dst); j += 8 {
		x := (*[8]uint64)(src[j : j+8])
		z := (*[8]uint64)(dst[j : j+8])
		z[0] = bredAddLazy(x[0], q, u)
		z[1] = bredAddLazy(x[1], q, u)
		z[2] = bredAddLazy(x[2], q, u)
		z[3] = bredAddLazy(x[3], q, u)
		z[4] = bredAddLazy(x[4], q, u)
		z[5] = bredAddLazy(x[5], q, u)
		z[6] = bredAddLazy(x[6], q, u)
		z[7] = bredAddLazy(x[7], q, u)
	}
}

// macLazyGeneric is ring's mulcoeffsmontgomerylazythenaddlazyvec:
// z += MRedLazy(x, y).
func macLazyGeneric(z, x, y []uint64, mod *Modulus) {
	q, qInv := mod.Q, mod.MRed
	x, y = x[:len(z)], y[:len(z)]
	for i := range z {
		z[i] += mredLazy(x[i], y[i], q, qInv)
	}
}

// macLazyUnrolled is macLazyGeneric, eight words per iteration.
func macLazyUnrolled(z, x, y []uint64, mod *Modulus) {
	q, qInv := mod.Q, mod.MRed
	x, y = x[:len(z)], y[:len(z)]
	for i := 0; i < len(z); i += 8 {
		a := (*[8]uint64)(z[i : i+8])
		u := (*[8]uint64)(x[i : i+8])
		v := (*[8]uint64)(y[i : i+8])
		a[0] += mredLazy(u[0], v[0], q, qInv)
		a[1] += mredLazy(u[1], v[1], q, qInv)
		a[2] += mredLazy(u[2], v[2], q, qInv)
		a[3] += mredLazy(u[3], v[3], q, qInv)
		a[4] += mredLazy(u[4], v[4], q, qInv)
		a[5] += mredLazy(u[5], v[5], q, qInv)
		a[6] += mredLazy(u[6], v[6], q, qInv)
		a[7] += mredLazy(u[7], v[7], q, qInv)
	}
}

// macLazy2Unrolled is macLazyUnrolled on two accumulators that share y
// (the two components of a ciphertext times one plaintext), loading y once.
func macLazy2Unrolled(z0, z1, x0, x1, y []uint64, mod *Modulus) {
	q, qInv := mod.Q, mod.MRed
	n := len(z0)
	z1, x0, x1, y = z1[:n], x0[:n], x1[:n], y[:n]
	for i := 0; i < n; i += 8 {
		a := (*[8]uint64)(z0[i : i+8])
		b := (*[8]uint64)(z1[i : i+8])
		u := (*[8]uint64)(x0[i : i+8])
		w := (*[8]uint64)(x1[i : i+8])
		v := (*[8]uint64)(y[i : i+8])
		a[0] += mredLazy(u[0], v[0], q, qInv)
		b[0] += mredLazy(w[0], v[0], q, qInv)
		a[1] += mredLazy(u[1], v[1], q, qInv)
		b[1] += mredLazy(w[1], v[1], q, qInv)
		a[2] += mredLazy(u[2], v[2], q, qInv)
		b[2] += mredLazy(w[2], v[2], q, qInv)
		a[3] += mredLazy(u[3], v[3], q, qInv)
		b[3] += mredLazy(w[3], v[3], q, qInv)
		a[4] += mredLazy(u[4], v[4], q, qInv)
		b[4] += mredLazy(w[4], v[4], q, qInv)
		a[5] += mredLazy(u[5], v[5], q, qInv)
		b[5] += mredLazy(w[5], v[5], q, qInv)
		a[6] += mredLazy(u[6], v[6], q, qInv)
		b[6] += mredLazy(w[6], v[6], q, qInv)
		a[7] += mredLazy(u[7], v[7], q, qInv)
		b[7] += mredLazy(w[7], v[7], q, qInv)
	}
}
