package kernels

import (
	"fmt"
	"math/bits"
)

// The key-switching steps of the CPU backend: Lattigo's gadget
// decomposition (ring.Decomposer.DecomposeAndSplit and
// rlwe.Evaluator.DecomposeSingleNTT), the lazy inner product with the key
// (rlwe's gadgetProductMultiplePLazyHoisted), the division by P
// (ring.BasisExtender.ModDownQPtoQNTT) and the division by the last modulus
// (ring.Ring.DivRoundByLastModulusNTT).

// extendRange is Lattigo's fast exact basis extension (ring.ModUpExact when
// offsets is nil, the centered one of DecomposeAndSplit otherwise) on
// coefficients lo..hi-1: from the limbs src (moduli srcMod) to the limbs dst
// (moduli dstMod), dst[j] using row rows[j] of the constants. The outputs are
// in [0, 2d_j) as Lattigo's multSum leaves them.
func extendRange(lo, hi int, src [][]uint64, srcMod []*Modulus, offsets []uint64, c *ModUpConstants, dst [][]uint64, dstMod []*Modulus, rows []int) {
	var y [MaxModuli]uint64
	ns := len(src)
	for x := lo; x < hi; x++ {
		var vf float64
		for k := 0; k < ns; k++ {
			a := src[k][x]
			if offsets != nil {
				a += offsets[k]
			}
			m := srcMod[k]
			y[k] = mred(a, c.SOverSiInvSi[k], m.Q, m.MRed)
			vf += float64(y[k]) / float64(m.Q)
		}
		v := uint64(vf)
		for j := range dst {
			row := c.SOverSiModD[rows[j]]
			rhi, rlo := bits.Mul64(y[0], row[0])
			for k := 1; k < ns; k++ {
				mhi, mlo := bits.Mul64(y[k], row[k])
				var carry uint64
				rlo, carry = bits.Add64(rlo, mlo, 0)
				rhi += mhi + carry
			}
			m := dstMod[j]
			h, _ := bits.Mul64(rlo*m.MRed, m.Q)
			dst[j][x] = rhi - h + m.Q + c.VTimesSModD[rows[j]][v]
		}
	}
}

// DecomposeNTT is rlwe.Evaluator.DecomposeNTT (see Backend).
func (c *CPU) DecomposeNTT(dst, cNTT, cCoeff Buffer, levelP int) error {
	const op = "DecomposeNTT"
	wd, err := c.host(dst)
	if err != nil {
		return fmt.Errorf("cannot %s: %w", op, err)
	}
	wn, err := c.host(cNTT)
	if err != nil {
		return fmt.Errorf("cannot %s: %w", op, err)
	}
	wc, err := c.host(cCoeff)
	if err != nil {
		return fmt.Errorf("cannot %s: %w", op, err)
	}
	digits, err := checkDecompose(c.params, dst, cNTT, cCoeff, levelP)
	if err != nil {
		return fmt.Errorf("cannot %s: %w", op, err)
	}
	p := c.params
	levelQ := cNTT.lay.LevelQ
	basis := dst.Basis()
	limbs := basis.Limbs()
	n := p.N()

	// Basis extension of every digit, in the coefficient domain.
	c.parallel(cNTT.lay.Count*digits, func(job int) {
		k, i := job/digits, job%digits
		d := p.Digit(levelQ, levelP, i)
		out := k*digits + i
		if d.Size == 1 {
			qs := p.q[d.Start].Q
			in := limb(wc, cCoeff, k, d.Start)
			outs := make([][]uint64, 0, limbs)
			mods := make([]*Modulus, 0, limbs)
			for j := 0; j < limbs; j++ {
				if j != d.Start {
					outs = append(outs, limb(wd, dst, out, j))
					mods = append(mods, p.Modulus(basis, j))
				}
			}
			for x := 0; x < n; x++ {
				coeff := in[x]
				neg := coeff >= qs>>1
				if neg {
					coeff = qs - coeff
				}
				for j, m := range mods {
					t := bredAdd(coeff, m.Q, m.BRed)
					if neg {
						t = m.Q - t
					}
					outs[j][x] = t
				}
			}
			return
		}
		src := make([][]uint64, d.Size)
		srcMod := make([]*Modulus, d.Size)
		for s := range src {
			src[s] = limb(wc, cCoeff, k, d.Start+s)
			srcMod[s] = &p.q[d.Start+s]
		}
		var outs [][]uint64
		var mods []*Modulus
		var rows []int
		var halves []uint64
		for j := 0; j < limbs; j++ {
			if j >= d.Start && j < d.Start+d.Size {
				continue
			}
			outs = append(outs, limb(wd, dst, out, j))
			mods = append(mods, p.Modulus(basis, j))
			if j <= levelQ {
				rows = append(rows, j)
				halves = append(halves, d.HalfModQ[j])
			} else {
				rows = append(rows, len(p.q)+j-levelQ-1)
				halves = append(halves, d.HalfModP[j-levelQ-1])
			}
		}
		extendRange(0, n, src, srcMod, d.HalfModGroup, d.ModUp, outs, mods, rows)
		for j, z := range outs {
			q, h := mods[j].Q, halves[j]
			for x := range z {
				z[x] = cred(z[x]+q-h, q)
			}
		}
	})

	// Back to the NTT domain; the digit's own limbs are the input's.
	c.parallel(cNTT.lay.Count*digits*limbs, func(job int) {
		k, i, j := job/(digits*limbs), (job/limbs)%digits, job%limbs
		d := p.Digit(levelQ, levelP, i)
		z := limb(wd, dst, k*digits+i, j)
		if j >= d.Start && j < d.Start+d.Size {
			copy(z, limb(wn, cNTT, k, j))
			return
		}
		c.ntt1(z, z, p.Modulus(basis, j))
	})
	return nil
}

func checkDecompose(p *Params, dst, cNTT, cCoeff Buffer, levelP int) (int, error) {
	if err := sameShape("DecomposeNTT", cNTT, cCoeff); err != nil {
		return 0, err
	}
	if cNTT.lay.LevelP != -1 {
		return 0, fmt.Errorf("input has P limbs")
	}
	levelQ := cNTT.lay.LevelQ
	if err := p.checkLevels(levelQ, levelP); err != nil {
		return 0, err
	}
	if levelP < 0 {
		return 0, fmt.Errorf("levelP %d < 0", levelP)
	}
	digits := p.DigitCount(levelQ, levelP)
	if dst.Basis() != (Basis{levelQ, levelP}) || dst.lay.Count != digits*cNTT.lay.Count {
		return 0, fmt.Errorf("output is %d x %s, want %d x %s", dst.lay.Count, dst.Basis(),
			digits*cNTT.lay.Count, Basis{levelQ, levelP})
	}
	return digits, nil
}

// GadgetInnerProduct is the lazy multiply-accumulate with the key (see Backend).
func (c *CPU) GadgetInnerProduct(dst, digits Buffer, key GadgetKey) error {
	const op = "GadgetInnerProduct"
	k, ok := key.(*cpuKey)
	if !ok {
		return fmt.Errorf("cannot %s: key does not belong to a CPU backend", op)
	}
	wd, err := c.host(dst)
	if err != nil {
		return fmt.Errorf("cannot %s: %w", op, err)
	}
	wg, err := c.host(digits)
	if err != nil {
		return fmt.Errorf("cannot %s: %w", op, err)
	}
	wk, _ := c.host(k.buf)
	levelQ, levelP, nd, groups, err := checkInnerProduct(c.params, dst, digits, k.levelQ, k.levelP)
	if err != nil {
		return fmt.Errorf("cannot %s: %w", op, err)
	}
	kv := k.buf.AtLevel(levelQ, levelP)
	qOverF, pOverF := c.params.QiOverflow(levelQ), c.params.PiOverflow(levelP)
	basis := dst.Basis()
	limbs := basis.Limbs()
	unrolled := c.variant == VariantUnrolled
	c.parallel(groups*limbs, func(job int) {
		g, j := job/limbs, job%limbs
		mod := c.params.Modulus(basis, j)
		overF := qOverF
		if j > levelQ {
			overF = pOverF
		}
		z0, z1 := limb(wd, dst, 2*g, j), limb(wd, dst, 2*g+1, j)
		for i := 0; i < nd; i++ {
			x := limb(wg, digits, g*nd+i, j)
			k0, k1 := limb(wk, kv, 2*i, j), limb(wk, kv, 2*i+1, j)
			if unrolled {
				macUnrolled(z0, z1, k0, k1, x, mod, i == 0)
			} else {
				macGeneric(z0, z1, k0, k1, x, mod, i == 0)
			}
			if i%overF == overF-1 {
				c.reduce1(z0, mod)
				c.reduce1(z1, mod)
			}
		}
		if nd%overF != 0 {
			c.reduce1(z0, mod)
			c.reduce1(z1, mod)
		}
	})
	return nil
}

func (c *CPU) reduce1(z []uint64, mod *Modulus) {
	if c.variant == VariantUnrolled {
		reduceUnrolled(z, z, mod)
	} else {
		reduceGeneric(z, z, mod)
	}
}

func checkInnerProduct(p *Params, dst, digits Buffer, keyLevelQ, keyLevelP int) (levelQ, levelP, nd, groups int, err error) {
	levelQ, levelP = digits.lay.LevelQ, digits.lay.LevelP
	if levelP != keyLevelP || levelQ > keyLevelQ {
		return 0, 0, 0, 0, fmt.Errorf("digits in %s, key at Q%dP%d", digits.Basis(), keyLevelQ, keyLevelP)
	}
	nd = p.DigitCount(levelQ, levelP)
	if digits.lay.Count%nd != 0 {
		return 0, 0, 0, 0, fmt.Errorf("%d digits is not a multiple of %d", digits.lay.Count, nd)
	}
	groups = digits.lay.Count / nd
	if dst.Basis() != digits.Basis() || dst.lay.Count != 2*groups {
		return 0, 0, 0, 0, fmt.Errorf("output is %d x %s, want %d x %s", dst.lay.Count, dst.Basis(), 2*groups, digits.Basis())
	}
	return levelQ, levelP, nd, groups, nil
}

// macGeneric is z0 (+)= k0*x, z1 (+)= k1*x with lazy Montgomery products
// (ring's mulcoeffsmontgomerylazyvec / ...lazythenaddlazyvec).
func macGeneric(z0, z1, k0, k1, x []uint64, mod *Modulus, first bool) {
	q, qInv := mod.Q, mod.MRed
	z1, k0, k1, x = z1[:len(z0)], k0[:len(z0)], k1[:len(z0)], x[:len(z0)]
	if first {
		for i := range z0 {
			z0[i] = mredLazy(k0[i], x[i], q, qInv)
			z1[i] = mredLazy(k1[i], x[i], q, qInv)
		}
		return
	}
	for i := range z0 {
		z0[i] += mredLazy(k0[i], x[i], q, qInv)
		z1[i] += mredLazy(k1[i], x[i], q, qInv)
	}
}

// macUnrolled is macGeneric, eight coefficients per iteration.
func macUnrolled(z0, z1, k0, k1, x []uint64, mod *Modulus, first bool) {
	q, qInv := mod.Q, mod.MRed
	for i := 0; i < len(z0); i += 8 {
		a := (*[8]uint64)(z0[i : i+8])
		b := (*[8]uint64)(z1[i : i+8])
		u := (*[8]uint64)(k0[i : i+8])
		w := (*[8]uint64)(k1[i : i+8])
		v := (*[8]uint64)(x[i : i+8])
		if first {
			*a = [8]uint64{}
			*b = [8]uint64{}
		}
		a[0] += mredLazy(u[0], v[0], q, qInv)
		a[1] += mredLazy(u[1], v[1], q, qInv)
		a[2] += mredLazy(u[2], v[2], q, qInv)
		a[3] += mredLazy(u[3], v[3], q, qInv)
		a[4] += mredLazy(u[4], v[4], q, qInv)
		a[5] += mredLazy(u[5], v[5], q, qInv)
		a[6] += mredLazy(u[6], v[6], q, qInv)
		a[7] += mredLazy(u[7], v[7], q, qInv)
		b[0] += mredLazy(w[0], v[0], q, qInv)
		b[1] += mredLazy(w[1], v[1], q, qInv)
		b[2] += mredLazy(w[2], v[2], q, qInv)
		b[3] += mredLazy(w[3], v[3], q, qInv)
		b[4] += mredLazy(w[4], v[4], q, qInv)
		b[5] += mredLazy(w[5], v[5], q, qInv)
		b[6] += mredLazy(w[6], v[6], q, qInv)
		b[7] += mredLazy(w[7], v[7], q, qInv)
	}
}

// ModDownNTT is ring.BasisExtender.ModDownQPtoQNTT on every polynomial.
func (c *CPU) ModDownNTT(dst, src Buffer) error {
	const op = "ModDownNTT"
	wd, err := c.host(dst)
	if err != nil {
		return fmt.Errorf("cannot %s: %w", op, err)
	}
	ws, err := c.host(src)
	if err != nil {
		return fmt.Errorf("cannot %s: %w", op, err)
	}
	levelQ, levelP := src.lay.LevelQ, src.lay.LevelP
	if levelP < 0 || dst.Basis() != (Basis{levelQ, -1}) || dst.lay.Count != src.lay.Count {
		return fmt.Errorf("cannot %s: %d x %s to %d x %s", op, src.lay.Count, src.Basis(), dst.lay.Count, dst.Basis())
	}
	p := c.params
	n := p.N()
	md := p.ModDown(levelP)
	rows := make([]int, levelQ+1)
	qmods := make([]*Modulus, levelQ+1)
	for i := range rows {
		rows[i], qmods[i] = i, &p.q[i]
	}
	pmods := make([]*Modulus, levelP+1)
	for j := range pmods {
		pmods[j] = &p.p[j]
	}
	c.parallel(src.lay.Count, func(k int) {
		sp := c.getScratch((levelQ + levelP + 2) * n)
		defer c.putScratch(sp)
		s := *sp
		tmpP := make([][]uint64, levelP+1)
		for j := range tmpP {
			tmpP[j] = s[j*n : (j+1)*n]
			c.intt1(tmpP[j], limb(ws, src, k, levelQ+1+j), pmods[j], true)
			pj, h := pmods[j].Q, md.HalfModP[j]
			for x, a := range tmpP[j] {
				tmpP[j][x] = cred(a+h, pj)
			}
		}
		tmpQ := make([][]uint64, levelQ+1)
		for i := range tmpQ {
			tmpQ[i] = s[(levelP+1+i)*n : (levelP+2+i)*n]
		}
		extendRange(0, n, tmpP, pmods, nil, md.ModUp, tmpQ, qmods, rows)
		for i, t := range tmpQ {
			m := qmods[i]
			q, h := m.Q, md.HalfModQ[i]
			for x, a := range t {
				t[x] = cred(a+q-h, q)
			}
			c.nttLazy1(t, t, m)
			in, out := limb(ws, src, k, i), limb(wd, dst, k, i)
			cst, twoQ := q-md.PInvModQ[i], 2*q
			for x := range out {
				out[x] = mred(twoQ-in[x]+t[x], cst, q, m.MRed)
			}
		}
	})
	return nil
}

// RescaleNTT is ring.Ring.DivRoundByLastModulusNTT on every polynomial.
func (c *CPU) RescaleNTT(dst, src Buffer) error {
	const op = "RescaleNTT"
	wd, err := c.host(dst)
	if err != nil {
		return fmt.Errorf("cannot %s: %w", op, err)
	}
	ws, err := c.host(src)
	if err != nil {
		return fmt.Errorf("cannot %s: %w", op, err)
	}
	l := src.lay.LevelQ
	if l < 1 || src.lay.LevelP != -1 || dst.Basis() != (Basis{l - 1, -1}) || dst.lay.Count != src.lay.Count {
		return fmt.Errorf("cannot %s: %d x %s to %d x %s", op, src.lay.Count, src.Basis(), dst.lay.Count, dst.Basis())
	}
	p := c.params
	n := p.N()
	last := &p.q[l]
	pHalf := (last.Q - 1) >> 1
	rc := p.RescaleConstants(l)

	// The last limb, back in the coefficient domain and centered.
	top := make([][]uint64, src.lay.Count)
	sps := make([]*[]uint64, src.lay.Count)
	c.parallel(src.lay.Count, func(k int) {
		sps[k] = c.getScratch(n)
		top[k] = *sps[k]
		c.intt1(top[k], limb(ws, src, k, l), last, true)
		for x, a := range top[k] {
			top[k][x] = cred(a+pHalf, last.Q)
		}
	})
	c.parallel(src.lay.Count*l, func(job int) {
		k, i := job/l, job%l
		m := &p.q[i]
		sp := c.getScratch(n)
		defer c.putScratch(sp)
		b := *sp
		q := m.Q
		s := q - bredAdd(pHalf, q, m.BRed)
		for x, a := range top[k] {
			b[x] = a + s
		}
		c.nttLazy1(b, b, m)
		in, out := limb(ws, src, k, i), limb(wd, dst, k, i)
		twoQ := 2 * q
		for x := range out {
			out[x] = mred(twoQ-in[x]+b[x], rc[i], q, m.MRed)
		}
	})
	for _, sp := range sps {
		c.putScratch(sp)
	}
	return nil
}
