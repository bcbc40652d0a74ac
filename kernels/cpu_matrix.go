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
// independent jobs, one per limb and chunk of coefficients (on the
// backend's workers); a job keeps the chunks of all Rows·Cols·Parts
// accumulators in cache while every input and weight chunk streams through
// once, and lazily reduces them every LazyTerms(q) inner terms.
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
	nAcc := s.Rows * s.Cols * s.Parts
	chunk := matrixChunk(n, nAcc)
	chunks := n / chunk
	basis := dst.Basis()
	unrolled := c.variant == VariantUnrolled
	c.parallel(dst.lay.Limbs()*chunks, func(job int) {
		j, lo := job/chunks, (job%chunks)*chunk
		hi := lo + chunk
		mod := c.params.Modulus(basis, j)
		sp := c.getScratch(nAcc * chunk)
		defer c.putScratch(sp)
		acc := *sp
		clear(acc)
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
			for col := 0; col < s.Cols; col++ {
				w := limb(ww, wt, col*s.Inner+a, j)[lo:hi]
				for r := 0; r < s.Rows; r++ {
					xi := (r*s.Inner + a) * s.Parts
					o := (r*s.Cols + col) * s.Parts * chunk
					p := 0
					if unrolled {
						for ; p+2 <= s.Parts; p += 2 {
							macLazy2Unrolled(acc[o+p*chunk:o+(p+1)*chunk], acc[o+(p+1)*chunk:o+(p+2)*chunk],
								limb(wx, x, xi+p, j)[lo:hi], limb(wx, x, xi+p+1, j)[lo:hi], w, mod)
						}
					}
					for ; p < s.Parts; p++ {
						z := acc[o+p*chunk : o+(p+1)*chunk]
						if unrolled {
							macLazyUnrolled(z, limb(wx, x, xi+p, j)[lo:hi], w, mod)
						} else {
							macLazyGeneric(z, limb(wx, x, xi+p, j)[lo:hi], w, mod)
						}
					}
				}
			}
			terms++
		}
		for k := 0; k < nAcc; k++ {
			z := limb(wd, dst, k, j)[lo:hi]
			if unrolled {
				reduceUnrolled(z, acc[k*chunk:(k+1)*chunk], mod)
			} else {
				reduceGeneric(z, acc[k*chunk:(k+1)*chunk], mod)
			}
		}
	})
	return nil
}

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
