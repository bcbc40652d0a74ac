package kernels

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"
	"github.com/tuneinsight/lattigo/v5/ring"
	"github.com/tuneinsight/lattigo/v5/ring/ringqp"
)

// CPUOptions configure a CPU backend. The zero value asks for
// DefaultVariant() on one goroutine, which is how Lattigo itself runs.
type CPUOptions struct {
	// Variant selects the kernels; VariantAuto means DefaultVariant().
	Variant Variant
	// Workers is the number of goroutines an operation may use (limbs and
	// polynomials are independent); 0 means 1, a negative value means
	// runtime.GOMAXPROCS(0).
	Workers int
}

// CPU is the pure-Go reference Backend. Its buffers are host memory and its
// operations complete before they return.
type CPU struct {
	params  *Params
	variant Variant
	workers int
	scratch sync.Pool // *[]uint64
}

// hostMemory is the Memory of the CPU backend.
type hostMemory struct{ w []uint64 }

// Words returns the size of the allocation.
func (m *hostMemory) Words() int { return len(m.w) }

// NewCPU returns a CPU backend for params.
func NewCPU(params *Params, opts CPUOptions) (*CPU, error) {
	if params == nil {
		return nil, fmt.Errorf("cannot NewCPU: nil Params")
	}
	v := opts.Variant
	if v == VariantAuto {
		v = defaultVariant
	}
	if v != VariantGeneric && v != VariantUnrolled {
		return nil, fmt.Errorf("cannot NewCPU: unknown variant %s", v)
	}
	w := opts.Workers
	switch {
	case w == 0:
		w = 1
	case w < 0:
		w = runtime.GOMAXPROCS(0)
	}
	return &CPU{params: params, variant: v, workers: w}, nil
}

// Name returns "cpu/<variant>" with "xW" appended for W > 1 workers.
func (c *CPU) Name() string {
	if c.workers > 1 {
		return fmt.Sprintf("cpu/%s-x%d", c.variant, c.workers)
	}
	return "cpu/" + c.variant.String()
}

// Variant returns the kernel variant in use.
func (c *CPU) Variant() Variant { return c.variant }

// Params returns the constants of the backend.
func (c *CPU) Params() *Params { return c.params }

// Alloc reserves count zeroed polynomials in basis b.
func (c *CPU) Alloc(b Basis, count int) (Buffer, error) {
	if err := c.params.checkLevels(b.LevelQ, b.LevelP); err != nil {
		return Buffer{}, fmt.Errorf("cannot Alloc: %w", err)
	}
	if count < 1 {
		return Buffer{}, fmt.Errorf("cannot Alloc: count %d < 1", count)
	}
	n := c.params.N()
	return NewBuffer(&hostMemory{w: make([]uint64, b.Limbs()*n*count)}, n, b, count)
}

// Free drops the buffer (the garbage collector reclaims it).
func (c *CPU) Free(b Buffer) error {
	if _, err := c.host(b); err != nil {
		return fmt.Errorf("cannot Free: %w", err)
	}
	return nil
}

// Synchronize returns at once: CPU operations are synchronous.
func (c *CPU) Synchronize() error { return nil }

// Close does nothing.
func (c *CPU) Close() error { return nil }

func (c *CPU) host(b Buffer) ([]uint64, error) {
	m, ok := b.mem.(*hostMemory)
	if !ok {
		return nil, fmt.Errorf("buffer does not belong to a CPU backend")
	}
	if b.lay.N != c.params.N() {
		return nil, fmt.Errorf("buffer has degree %d, backend %d", b.lay.N, c.params.N())
	}
	return m.w, nil
}

// limb returns limb j of polynomial k of b.
func limb(w []uint64, b Buffer, k, j int) []uint64 {
	o := b.lay.LimbOffset(k, j)
	return w[o : o+b.lay.N : o+b.lay.N]
}

// getScratch returns at least words words of scratch memory.
func (c *CPU) getScratch(words int) *[]uint64 {
	if p, ok := c.scratch.Get().(*[]uint64); ok && cap(*p) >= words {
		*p = (*p)[:words]
		return p
	}
	s := make([]uint64, words)
	return &s
}

func (c *CPU) putScratch(p *[]uint64) { c.scratch.Put(p) }

// parallel runs f(0..n-1) on up to c.workers goroutines.
func (c *CPU) parallel(n int, f func(i int)) {
	w := min(c.workers, n)
	if w <= 1 {
		for i := 0; i < n; i++ {
			f(i)
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	wg.Add(w)
	for g := 0; g < w; g++ {
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				f(i)
			}
		}()
	}
	wg.Wait()
}

// limbJobs runs f on every (polynomial, limb) of b, in parallel.
func (c *CPU) limbJobs(b Buffer, f func(k, j int, mod *Modulus)) {
	limbs := b.lay.Limbs()
	basis := b.Basis()
	c.parallel(b.lay.Count*limbs, func(i int) {
		k, j := i/limbs, i%limbs
		f(k, j, c.params.Modulus(basis, j))
	})
}

// Upload copies src[k] into polynomial k of dst.
func (c *CPU) Upload(dst Buffer, src []ringqp.Poly) error {
	w, err := c.host(dst)
	if err != nil {
		return fmt.Errorf("cannot Upload: %w", err)
	}
	if len(src) != dst.lay.Count {
		return fmt.Errorf("cannot Upload: %d polynomials for a buffer of %d", len(src), dst.lay.Count)
	}
	for k := range src {
		if err := checkPolyLimbs(src[k], dst.Basis(), dst.lay.N); err != nil {
			return fmt.Errorf("cannot Upload: polynomial %d: %w", k, err)
		}
		for j := 0; j <= dst.lay.LevelQ; j++ {
			copy(limb(w, dst, k, j), src[k].Q.Coeffs[j])
		}
		for j := 0; j <= dst.lay.LevelP; j++ {
			copy(limb(w, dst, k, dst.lay.LevelQ+1+j), src[k].P.Coeffs[j])
		}
	}
	return nil
}

// Download copies polynomial k of src into dst[k].
func (c *CPU) Download(src Buffer, dst []ringqp.Poly) error {
	w, err := c.host(src)
	if err != nil {
		return fmt.Errorf("cannot Download: %w", err)
	}
	if len(dst) != src.lay.Count {
		return fmt.Errorf("cannot Download: %d polynomials for a buffer of %d", len(dst), src.lay.Count)
	}
	for k := range dst {
		if err := checkPolyLimbs(dst[k], src.Basis(), src.lay.N); err != nil {
			return fmt.Errorf("cannot Download: polynomial %d: %w", k, err)
		}
		for j := 0; j <= src.lay.LevelQ; j++ {
			copy(dst[k].Q.Coeffs[j], limb(w, src, k, j))
		}
		for j := 0; j <= src.lay.LevelP; j++ {
			copy(dst[k].P.Coeffs[j], limb(w, src, k, src.lay.LevelQ+1+j))
		}
	}
	return nil
}

// checkPolyLimbs reports an error unless p has the limbs of basis b.
func checkPolyLimbs(p ringqp.Poly, b Basis, n int) error {
	if len(p.Q.Coeffs) < b.LevelQ+1 || (b.LevelP >= 0 && len(p.P.Coeffs) < b.LevelP+1) {
		return fmt.Errorf("has %d Q and %d P limbs, %s needs more", len(p.Q.Coeffs), len(p.P.Coeffs), b)
	}
	if b.LevelQ >= 0 && len(p.Q.Coeffs[0]) != n {
		return fmt.Errorf("has degree %d, want %d", len(p.Q.Coeffs[0]), n)
	}
	return nil
}

// Copy copies src into dst.
func (c *CPU) Copy(dst, src Buffer) error {
	return c.unary("Copy", dst, src, func(z, x []uint64, _ *Modulus) { copy(z, x) })
}

// unary applies f to every limb pair of dst and src.
func (c *CPU) unary(op string, dst, src Buffer, f func(z, x []uint64, mod *Modulus)) error {
	wd, err := c.host(dst)
	if err != nil {
		return fmt.Errorf("cannot %s: %w", op, err)
	}
	ws, err := c.host(src)
	if err != nil {
		return fmt.Errorf("cannot %s: %w", op, err)
	}
	if err := sameShape(op, dst, src); err != nil {
		return err
	}
	c.limbJobs(dst, func(k, j int, mod *Modulus) {
		f(limb(wd, dst, k, j), limb(ws, src, k, j), mod)
	})
	return nil
}

// binary applies f to every limb triple of dst, a and b.
func (c *CPU) binary(op string, dst, a, b Buffer, f func(z, x, y []uint64, mod *Modulus)) error {
	wd, err := c.host(dst)
	if err != nil {
		return fmt.Errorf("cannot %s: %w", op, err)
	}
	wa, err := c.host(a)
	if err != nil {
		return fmt.Errorf("cannot %s: %w", op, err)
	}
	wb, err := c.host(b)
	if err != nil {
		return fmt.Errorf("cannot %s: %w", op, err)
	}
	if err := sameShape(op, dst, a, b); err != nil {
		return err
	}
	c.limbJobs(dst, func(k, j int, mod *Modulus) {
		f(limb(wd, dst, k, j), limb(wa, a, k, j), limb(wb, b, k, j), mod)
	})
	return nil
}

// nttLazy1 and inttLazy1 dispatch one limb to the selected variant.
func (c *CPU) nttLazy1(z, x []uint64, mod *Modulus) {
	if c.variant == VariantUnrolled {
		nttLazyUnrolled(z, x, mod)
	} else {
		nttLazyGeneric(z, x, mod)
	}
}

func (c *CPU) ntt1(z, x []uint64, mod *Modulus) {
	c.nttLazy1(z, x, mod)
	if c.variant == VariantUnrolled {
		reduceUnrolled(z, z, mod)
	} else {
		reduceGeneric(z, z, mod)
	}
}

func (c *CPU) intt1(z, x []uint64, mod *Modulus, lazy bool) {
	if c.variant == VariantUnrolled {
		inttLazyCoreUnrolled(z, x, mod)
		mulScalarMontgomeryUnrolled(z, z, mod.NInv, mod, lazy)
	} else {
		inttLazyCoreGeneric(z, x, mod)
		mulScalarMontgomeryGeneric(z, z, mod.NInv, mod, lazy)
	}
}

// NTT is ring.Ring.NTT on every limb.
func (c *CPU) NTT(dst, src Buffer) error { return c.unary("NTT", dst, src, c.ntt1) }

// NTTLazy is ring.Ring.NTTLazy on every limb.
func (c *CPU) NTTLazy(dst, src Buffer) error { return c.unary("NTTLazy", dst, src, c.nttLazy1) }

// INTT is ring.Ring.INTT on every limb.
func (c *CPU) INTT(dst, src Buffer) error {
	return c.unary("INTT", dst, src, func(z, x []uint64, mod *Modulus) { c.intt1(z, x, mod, false) })
}

// INTTLazy is ring.Ring.INTTLazy on every limb.
func (c *CPU) INTTLazy(dst, src Buffer) error {
	return c.unary("INTTLazy", dst, src, func(z, x []uint64, mod *Modulus) { c.intt1(z, x, mod, true) })
}

// Add is ring.Ring.Add.
func (c *CPU) Add(dst, a, b Buffer) error {
	return c.binary("Add", dst, a, b, func(z, x, y []uint64, mod *Modulus) {
		q := mod.Q
		x, y = x[:len(z)], y[:len(z)]
		for i := range z {
			z[i] = cred(x[i]+y[i], q)
		}
	})
}

// Sub is ring.Ring.Sub.
func (c *CPU) Sub(dst, a, b Buffer) error {
	return c.binary("Sub", dst, a, b, func(z, x, y []uint64, mod *Modulus) {
		q := mod.Q
		x, y = x[:len(z)], y[:len(z)]
		for i := range z {
			z[i] = cred(x[i]+q-y[i], q)
		}
	})
}

// Reduce is ring.Ring.Reduce.
func (c *CPU) Reduce(dst, a Buffer) error {
	return c.unary("Reduce", dst, a, func(z, x []uint64, mod *Modulus) {
		if c.variant == VariantUnrolled {
			reduceUnrolled(z, x, mod)
		} else {
			reduceGeneric(z, x, mod)
		}
	})
}

// MForm is ring.Ring.MForm.
func (c *CPU) MForm(dst, a Buffer) error {
	return c.unary("MForm", dst, a, func(z, x []uint64, mod *Modulus) {
		x = x[:len(z)]
		for i := range z {
			z[i] = mform(x[i], mod.Q, mod.BRed)
		}
	})
}

// MulCoeffsMontgomery is ring.Ring.MulCoeffsMontgomery.
func (c *CPU) MulCoeffsMontgomery(dst, a, b Buffer) error {
	return c.binary("MulCoeffsMontgomery", dst, a, b, func(z, x, y []uint64, mod *Modulus) {
		x, y = x[:len(z)], y[:len(z)]
		for i := range z {
			z[i] = mred(x[i], y[i], mod.Q, mod.MRed)
		}
	})
}

// MulCoeffsMontgomeryThenAdd is ring.Ring.MulCoeffsMontgomeryThenAdd.
func (c *CPU) MulCoeffsMontgomeryThenAdd(dst, a, b Buffer) error {
	return c.binary("MulCoeffsMontgomeryThenAdd", dst, a, b, func(z, x, y []uint64, mod *Modulus) {
		x, y = x[:len(z)], y[:len(z)]
		for i := range z {
			z[i] = cred(z[i]+mred(x[i], y[i], mod.Q, mod.MRed), mod.Q)
		}
	})
}

// cpuIndex is the AutomorphismIndex of the CPU backend.
type cpuIndex struct {
	galEl uint64
	index []uint64
}

// GaloisElement returns the Galois element of the permutation.
func (x *cpuIndex) GaloisElement() uint64 { return x.galEl }

// Release does nothing: the garbage collector frees host memory.
func (x *cpuIndex) Release() error { return nil }

// NewAutomorphismIndex computes ring.AutomorphismNTTIndex for galEl.
func (c *CPU) NewAutomorphismIndex(galEl uint64) (AutomorphismIndex, error) {
	index, err := ring.AutomorphismNTTIndex(c.params.N(), c.params.NthRoot(), galEl)
	if err != nil {
		return nil, fmt.Errorf("cannot NewAutomorphismIndex: %w", err)
	}
	return &cpuIndex{galEl: galEl, index: index}, nil
}

// AutomorphismNTT is ring.Ring.AutomorphismNTTWithIndex.
func (c *CPU) AutomorphismNTT(dst, src Buffer, index AutomorphismIndex) error {
	x, ok := index.(*cpuIndex)
	if !ok {
		return fmt.Errorf("cannot AutomorphismNTT: index does not belong to a CPU backend")
	}
	if dst.mem == src.mem && dst.lay.QOffset == src.lay.QOffset {
		return fmt.Errorf("cannot AutomorphismNTT: dst and src overlap")
	}
	idx := x.index
	return c.unary("AutomorphismNTT", dst, src, func(z, y []uint64, _ *Modulus) {
		for i := range z {
			z[i] = y[idx[i]]
		}
	})
}

// cpuKey is the GadgetKey of the CPU backend: Digits x 2 polynomials.
type cpuKey struct {
	buf            Buffer
	levelQ, levelP int
	digits         int
}

// LevelQ returns the level of the key's Q moduli.
func (k *cpuKey) LevelQ() int { return k.levelQ }

// LevelP returns the level of the key's P moduli.
func (k *cpuKey) LevelP() int { return k.levelP }

// Digits returns the number of RNS digits.
func (k *cpuKey) Digits() int { return k.digits }

// Release does nothing: the garbage collector frees host memory.
func (k *cpuKey) Release() error { return nil }

// UploadGadgetKey copies the key into host memory in the backend's layout.
func (c *CPU) UploadGadgetKey(key *rlwe.GadgetCiphertext) (GadgetKey, error) {
	levelQ, levelP, digits, err := checkGadgetKey(c.params, key)
	if err != nil {
		return nil, fmt.Errorf("cannot UploadGadgetKey: %w", err)
	}
	buf, err := c.Alloc(Basis{levelQ, levelP}, 2*digits)
	if err != nil {
		return nil, fmt.Errorf("cannot UploadGadgetKey: %w", err)
	}
	if err := c.Upload(buf, gadgetPolys(key)); err != nil {
		return nil, fmt.Errorf("cannot UploadGadgetKey: %w", err)
	}
	return &cpuKey{buf: buf, levelQ: levelQ, levelP: levelP, digits: digits}, nil
}

// checkGadgetKey validates a gadget ciphertext for the backends.
func checkGadgetKey(p *Params, key *rlwe.GadgetCiphertext) (levelQ, levelP, digits int, err error) {
	if key == nil || len(key.Value) == 0 {
		return 0, 0, 0, fmt.Errorf("empty gadget ciphertext")
	}
	if key.BaseTwoDecomposition != 0 {
		return 0, 0, 0, fmt.Errorf("BaseTwoDecomposition %d is not supported", key.BaseTwoDecomposition)
	}
	levelQ, levelP = key.LevelQ(), key.LevelP()
	if levelP < 0 {
		return 0, 0, 0, fmt.Errorf("keys without P moduli are not supported")
	}
	if err = p.checkLevels(levelQ, levelP); err != nil {
		return 0, 0, 0, err
	}
	digits = len(key.Value)
	if digits != p.DigitCount(levelQ, levelP) {
		return 0, 0, 0, fmt.Errorf("%d digits, want %d", digits, p.DigitCount(levelQ, levelP))
	}
	for i := range key.Value {
		if len(key.Value[i]) != 1 || len(key.Value[i][0]) != 2 {
			return 0, 0, 0, fmt.Errorf("digit %d is not one degree-1 ciphertext", i)
		}
	}
	return levelQ, levelP, digits, nil
}

// gadgetPolys lists the key polynomials as digit-major, component-minor.
func gadgetPolys(key *rlwe.GadgetCiphertext) []ringqp.Poly {
	polys := make([]ringqp.Poly, 0, 2*len(key.Value))
	for i := range key.Value {
		polys = append(polys, key.Value[i][0][0], key.Value[i][0][1])
	}
	return polys
}
