//go:build cuda

package cuda

import (
	"embed"
	"fmt"
	"runtime"
	"sync"

	"github.com/cipherprune/cipherprune/kernels"
	"github.com/tuneinsight/lattigo/v5/core/rlwe"
	"github.com/tuneinsight/lattigo/v5/ring"
	"github.com/tuneinsight/lattigo/v5/ring/ringqp"
)

// bin holds the device code: kernels.fatbin (nvcc, sm_90, from build.sh)
// when it has been built, and kernels.ptx (clang or nvcc) which the driver
// compiles at load time otherwise.
//
//go:embed bin
var bin embed.FS

const (
	chunk   = 2048 // CHUNK in kernels.cu
	threads = 256  // block size of the element-wise kernels
)

var kernelNames = []string{
	"ntt_global_stage", "ntt_shared_tail", "intt_shared_head", "intt_global_stage", "vec_op",
	"automorphism_ntt", "decompose_digit", "gadget_inner_product", "moddown_extend", "sub_mul_scalar",
	"rescale_spread",
}

// vec_op codes (kernels.cu).
const (
	opCopy = iota
	opAdd
	opSub
	opReduce
	opMForm
	opMulMont
	opMulMontAdd
	opNInv
	opNInvLazy
)

// Backend is the CUDA kernels.Backend. Operations are queued on the default
// stream in call order; Download and Synchronize wait for them.
type Backend struct {
	dv     *device
	fn     map[string]kernelFunc
	params *kernels.Params
	image  string

	mods, rootsF, rootsB uint64 // constant tables
	digit                map[*kernels.DigitConstants]digitDev
	modDown              []modDownDev
	rescale              []uint64 // by level (index 0 unused)

	mu      sync.Mutex
	scratch map[int][]uint64 // free device scratch blocks by size in words
}

type digitDev struct{ inv, modd, vt, half uint64 }

type modDownDev struct{ inv, modd, vt, halfP, halfQ, pinv uint64 }

// deviceMemory is the kernels.Memory of the CUDA backend.
type deviceMemory struct {
	ptr   uint64
	words int
}

// Words returns the size of the allocation.
func (m *deviceMemory) Words() int { return m.words }

// Open opens GPU 0, loads the embedded device code and uploads the constant
// tables of params. It fails, and never exits, where there is no driver, no
// device or no loadable image.
func Open(params *kernels.Params) (kernels.Backend, error) {
	if params == nil {
		return nil, fmt.Errorf("cannot Open: nil Params")
	}
	image, which, err := deviceImage()
	if err != nil {
		return nil, fmt.Errorf("cannot Open: %w", err)
	}
	drv, err := openDriver()
	if err != nil {
		return nil, fmt.Errorf("cannot Open: %w", err)
	}
	dv, err := drv.openDevice(0, image)
	if err != nil {
		return nil, fmt.Errorf("cannot Open: %w", err)
	}
	b := &Backend{dv: dv, fn: map[string]kernelFunc{}, params: params, image: which,
		digit: map[*kernels.DigitConstants]digitDev{}, scratch: map[int][]uint64{}}
	if err := b.init(); err != nil {
		_ = dv.close()
		return nil, fmt.Errorf("cannot Open: %w", err)
	}
	return b, nil
}

func deviceImage() ([]byte, string, error) {
	for _, name := range []string{"bin/kernels.fatbin", "bin/kernels.ptx"} {
		if data, err := bin.ReadFile(name); err == nil && len(data) > 0 {
			return data, name, nil
		}
	}
	return nil, "", fmt.Errorf("no device image embedded (run cuda/build.sh)")
}

func (b *Backend) enter() func() {
	runtime.LockOSThread()
	if err := b.dv.setCurrent(); err != nil {
		panic(fmt.Errorf("cuda: cannot bind context: %w", err)) // a broken driver invariant
	}
	return runtime.UnlockOSThread
}

func (b *Backend) init() error {
	defer b.enter()()
	for _, name := range kernelNames {
		f, err := b.dv.function(name)
		if err != nil {
			return err
		}
		b.fn[name] = f
	}
	p := b.params
	n := p.N()
	all := append(append([]kernels.Modulus{}, p.Q()...), p.P()...)
	mods := make([]uint64, 0, 5*len(all))
	rf := make([]uint64, 0, n*len(all))
	rb := make([]uint64, 0, n*len(all))
	for _, m := range all {
		mods = append(mods, m.Q, m.MRed, m.BRed[0], m.BRed[1], m.NInv)
		rf = append(rf, m.RootsForward[:n]...)
		rb = append(rb, m.RootsBackward[:n]...)
	}
	var err error
	if b.mods, err = b.upload(mods); err != nil {
		return err
	}
	if b.rootsF, err = b.upload(rf); err != nil {
		return err
	}
	if b.rootsB, err = b.upload(rb); err != nil {
		return err
	}
	nq := len(p.Q())
	for levelP := 0; levelP <= p.MaxLevelP(); levelP++ {
		for levelQ := 0; levelQ <= p.MaxLevelQ(); levelQ++ {
			for i := 0; i < p.DigitCount(levelQ, levelP); i++ {
				d := p.Digit(levelQ, levelP, i)
				if _, ok := b.digit[d]; ok {
					continue
				}
				var dd digitDev
				half := append(append(append([]uint64{}, d.HalfModGroup...), d.HalfModQ...), d.HalfModP...)
				if dd.half, err = b.upload(half); err != nil {
					return err
				}
				if d.ModUp != nil {
					if dd.inv, err = b.upload(d.ModUp.SOverSiInvSi); err != nil {
						return err
					}
					if dd.modd, err = b.upload(flatten(d.ModUp.SOverSiModD)); err != nil {
						return err
					}
					if dd.vt, err = b.upload(flatten(d.ModUp.VTimesSModD)); err != nil {
						return err
					}
				}
				b.digit[d] = dd
			}
		}
		md := p.ModDown(levelP)
		var m modDownDev
		for _, u := range []struct {
			dst *uint64
			src []uint64
		}{
			{&m.inv, md.ModUp.SOverSiInvSi}, {&m.modd, flatten(md.ModUp.SOverSiModD[:nq])},
			{&m.vt, flatten(md.ModUp.VTimesSModD[:nq])}, {&m.halfP, md.HalfModP}, {&m.halfQ, md.HalfModQ},
			{&m.pinv, md.PInvModQ},
		} {
			if *u.dst, err = b.upload(u.src); err != nil {
				return err
			}
		}
		b.modDown = append(b.modDown, m)
	}
	b.rescale = make([]uint64, p.MaxLevelQ()+1)
	for l := 1; l <= p.MaxLevelQ(); l++ {
		if b.rescale[l], err = b.upload(p.RescaleConstants(l)); err != nil {
			return err
		}
	}
	return nil
}

func flatten(rows [][]uint64) []uint64 {
	var out []uint64
	for _, r := range rows {
		out = append(out, r...)
	}
	return out
}

func (b *Backend) upload(words []uint64) (uint64, error) {
	p, err := b.dv.alloc(max(len(words), 1))
	if err != nil {
		return 0, err
	}
	return p, b.dv.htod(p, words)
}

// Name returns "cuda/sm_XY", the device name and the image loaded.
func (b *Backend) Name() string {
	return fmt.Sprintf("cuda/sm_%d (%s, %s)", b.dv.sm, b.dv.name, b.image)
}

// Params returns the constants of the backend.
func (b *Backend) Params() *kernels.Params { return b.params }

// Alloc reserves count zeroed polynomials in basis bs on the device.
func (b *Backend) Alloc(bs kernels.Basis, count int) (kernels.Buffer, error) {
	if err := b.params.CheckLevels(bs.LevelQ, bs.LevelP); err != nil || count < 1 {
		return kernels.Buffer{}, fmt.Errorf("cannot Alloc: %d x %s: %v", count, bs, err)
	}
	defer b.enter()()
	words := bs.Limbs() * b.params.N() * count
	p, err := b.dv.alloc(words)
	if err != nil {
		return kernels.Buffer{}, fmt.Errorf("cannot Alloc: %w", err)
	}
	return kernels.NewBuffer(&deviceMemory{ptr: p, words: words}, b.params.N(), bs, count)
}

// Free releases a buffer returned by Alloc.
func (b *Backend) Free(buf kernels.Buffer) error {
	m, err := b.mem(buf)
	if err != nil {
		return fmt.Errorf("cannot Free: %w", err)
	}
	defer b.enter()()
	if err := b.dv.free(m.ptr); err != nil {
		return fmt.Errorf("cannot Free: %w", err)
	}
	return nil
}

func (b *Backend) mem(buf kernels.Buffer) (*deviceMemory, error) {
	m, ok := buf.Memory().(*deviceMemory)
	if !ok || buf.N() != b.params.N() {
		return nil, fmt.Errorf("buffer does not belong to this CUDA backend")
	}
	return m, nil
}

// Synchronize waits for every queued operation.
func (b *Backend) Synchronize() error {
	defer b.enter()()
	if err := b.dv.sync(); err != nil {
		return fmt.Errorf("cannot Synchronize: %w", err)
	}
	return nil
}

// Close releases the module and the context (not the Buffers and keys).
func (b *Backend) Close() error {
	if err := b.dv.close(); err != nil {
		return fmt.Errorf("cannot Close: %w", err)
	}
	return nil
}

// Upload copies src[k] into polynomial k of dst, limb by limb.
func (b *Backend) Upload(dst kernels.Buffer, src []ringqp.Poly) error {
	m, err := b.mem(dst)
	if err != nil {
		return fmt.Errorf("cannot Upload: %w", err)
	}
	if len(src) != dst.Count() {
		return fmt.Errorf("cannot Upload: %d polynomials for a buffer of %d", len(src), dst.Count())
	}
	defer b.enter()()
	lay := dst.Layout()
	for k := range src {
		for j := 0; j < lay.Limbs(); j++ {
			w, err := polyLimb(src[k], lay, j)
			if err != nil {
				return fmt.Errorf("cannot Upload: polynomial %d: %w", k, err)
			}
			if err := b.dv.htod(m.ptr+8*uint64(lay.LimbOffset(k, j)), w); err != nil {
				return fmt.Errorf("cannot Upload: %w", err)
			}
		}
	}
	return nil
}

// Download copies polynomial k of src into dst[k], after every queued operation.
func (b *Backend) Download(src kernels.Buffer, dst []ringqp.Poly) error {
	m, err := b.mem(src)
	if err != nil {
		return fmt.Errorf("cannot Download: %w", err)
	}
	if len(dst) != src.Count() {
		return fmt.Errorf("cannot Download: %d polynomials for a buffer of %d", len(dst), src.Count())
	}
	defer b.enter()()
	lay := src.Layout()
	for k := range dst {
		for j := 0; j < lay.Limbs(); j++ {
			w, err := polyLimb(dst[k], lay, j)
			if err != nil {
				return fmt.Errorf("cannot Download: polynomial %d: %w", k, err)
			}
			if err := b.dv.dtoh(w, m.ptr+8*uint64(lay.LimbOffset(k, j))); err != nil {
				return fmt.Errorf("cannot Download: %w", err)
			}
		}
	}
	return nil
}

func polyLimb(p ringqp.Poly, lay kernels.Layout, j int) ([]uint64, error) {
	var c [][]uint64
	i := j
	if j <= lay.LevelQ {
		c = p.Q.Coeffs
	} else {
		c, i = p.P.Coeffs, j-lay.LevelQ-1
	}
	if i >= len(c) || len(c[i]) != lay.N {
		return nil, fmt.Errorf("missing limb %d of degree %d", j, lay.N)
	}
	return c[i], nil
}

// view is a buffer as kernel arguments: base pointer and layout words.
type view struct {
	ptr                uint64
	qoff, poff, stride uint64
	lq, lp             int
	count              int
}

func (b *Backend) view(buf kernels.Buffer) (view, error) {
	m, err := b.mem(buf)
	if err != nil {
		return view{}, err
	}
	l := buf.Layout()
	return view{ptr: m.ptr, qoff: uint64(l.QOffset), poff: uint64(l.POffset), stride: uint64(l.Stride),
		lq: l.LevelQ, lp: l.LevelP, count: l.Count}, nil
}

// words returns the view as the six kernel parameters (pointer, layout).
func (v view) words() []uint64 {
	return []uint64{v.ptr, v.qoff, v.poff, v.stride, uint64(int64(v.lq)), uint64(int64(v.lp))}
}

func (v view) limbs() int { return v.lq + 1 + v.lp + 1 }

func (b *Backend) launch(name string, gx, gy, bx int, args ...[]uint64) error {
	var a []uint64
	for _, x := range args {
		a = append(a, x...)
	}
	return b.dv.launch(name, b.fn[name], gx, gy, bx, a)
}

func w(x ...uint64) []uint64 { return x }

func u(x int) uint64 { return uint64(x) }

func blocks(n int) int { return (n + threads - 1) / threads }

// ntt runs the forward transform on limbs j0..j0+nl-1.
func (b *Backend) ntt(dst, src view, j0, nl int, lazy bool) error {
	n, nq := b.params.N(), len(b.params.Q())
	c := min(n, chunk)
	gy := dst.count * nl
	first, m, t := uint64(1), 1, n/2
	for 2*t > c {
		if err := b.launch("ntt_global_stage", blocks(n/2), gy, threads, dst.words(), src.words(),
			w(b.mods, b.rootsF, u(nq), u(n), u(j0), u(nl), u(m), u(t), first)); err != nil {
			return err
		}
		first, m, t = 0, 2*m, t/2
	}
	lz := uint64(0)
	if lazy {
		lz = 1
	}
	return b.launch("ntt_shared_tail", gy*(n/c), 1, c/2, dst.words(), src.words(),
		w(b.mods, b.rootsF, u(nq), u(n), u(j0), u(nl), u(m), u(t), first, lz))
}

// intt runs the inverse transform on limbs j0..j0+nl-1.
func (b *Backend) intt(dst, src view, j0, nl int, lazy bool) error {
	n, nq := b.params.N(), len(b.params.Q())
	c := min(n, chunk)
	gy := dst.count * nl
	whole, lz := uint64(0), uint64(0)
	if n <= c {
		whole = 1
	}
	if lazy {
		lz = 1
	}
	if err := b.launch("intt_shared_head", gy*(n/c), 1, c/2, dst.words(), src.words(),
		w(b.mods, b.rootsB, u(nq), u(n), u(j0), u(nl), whole, lz)); err != nil {
		return err
	}
	if whole == 1 {
		return nil
	}
	for t := c; t < n; t <<= 1 {
		if err := b.launch("intt_global_stage", blocks(n/2), gy, threads, dst.words(),
			w(b.mods, b.rootsB, u(nq), u(n), u(j0), u(nl), u(t))); err != nil {
			return err
		}
	}
	op := opNInv
	if lazy {
		op = opNInvLazy
	}
	return b.vec(op, dst, dst, view{}, j0, nl)
}

// vec runs vec_op on limbs j0..j0+nl-1; y may be the zero view.
func (b *Backend) vec(op int, z, x, y view, j0, nl int) error {
	n, nq := b.params.N(), len(b.params.Q())
	return b.launch("vec_op", blocks(n), z.count*nl, threads, w(u(op)), z.words(), x.words(), y.words(),
		w(b.mods, u(nq), u(n), u(j0), u(nl)))
}

func (b *Backend) unary(op string, dst, src kernels.Buffer, f func(z, x view) error) error {
	if err := kernels.SameShape(op, dst, src); err != nil {
		return err
	}
	z, err := b.view(dst)
	if err != nil {
		return fmt.Errorf("cannot %s: %w", op, err)
	}
	x, err := b.view(src)
	if err != nil {
		return fmt.Errorf("cannot %s: %w", op, err)
	}
	defer b.enter()()
	if err := f(z, x); err != nil {
		return fmt.Errorf("cannot %s: %w", op, err)
	}
	return nil
}

func (b *Backend) binary(name string, op int, dst, a, c kernels.Buffer) error {
	if err := kernels.SameShape(name, dst, a, c); err != nil {
		return err
	}
	z, err := b.view(dst)
	if err != nil {
		return fmt.Errorf("cannot %s: %w", name, err)
	}
	x, err := b.view(a)
	if err != nil {
		return fmt.Errorf("cannot %s: %w", name, err)
	}
	y, err := b.view(c)
	if err != nil {
		return fmt.Errorf("cannot %s: %w", name, err)
	}
	defer b.enter()()
	if err := b.vec(op, z, x, y, 0, z.limbs()); err != nil {
		return fmt.Errorf("cannot %s: %w", name, err)
	}
	return nil
}

// NTT is ring.Ring.NTT on every limb.
func (b *Backend) NTT(dst, src kernels.Buffer) error {
	return b.unary("NTT", dst, src, func(z, x view) error { return b.ntt(z, x, 0, z.limbs(), false) })
}

// NTTLazy is ring.Ring.NTTLazy on every limb.
func (b *Backend) NTTLazy(dst, src kernels.Buffer) error {
	return b.unary("NTTLazy", dst, src, func(z, x view) error { return b.ntt(z, x, 0, z.limbs(), true) })
}

// INTT is ring.Ring.INTT on every limb.
func (b *Backend) INTT(dst, src kernels.Buffer) error {
	return b.unary("INTT", dst, src, func(z, x view) error { return b.intt(z, x, 0, z.limbs(), false) })
}

// INTTLazy is ring.Ring.INTTLazy on every limb.
func (b *Backend) INTTLazy(dst, src kernels.Buffer) error {
	return b.unary("INTTLazy", dst, src, func(z, x view) error { return b.intt(z, x, 0, z.limbs(), true) })
}

// Copy copies src into dst.
func (b *Backend) Copy(dst, src kernels.Buffer) error {
	return b.unary("Copy", dst, src, func(z, x view) error { return b.vec(opCopy, z, x, view{}, 0, z.limbs()) })
}

// Reduce is ring.Ring.Reduce.
func (b *Backend) Reduce(dst, a kernels.Buffer) error {
	return b.unary("Reduce", dst, a, func(z, x view) error { return b.vec(opReduce, z, x, view{}, 0, z.limbs()) })
}

// MForm is ring.Ring.MForm.
func (b *Backend) MForm(dst, a kernels.Buffer) error {
	return b.unary("MForm", dst, a, func(z, x view) error { return b.vec(opMForm, z, x, view{}, 0, z.limbs()) })
}

// Add is ring.Ring.Add.
func (b *Backend) Add(dst, x, y kernels.Buffer) error { return b.binary("Add", opAdd, dst, x, y) }

// Sub is ring.Ring.Sub.
func (b *Backend) Sub(dst, x, y kernels.Buffer) error { return b.binary("Sub", opSub, dst, x, y) }

// MulCoeffsMontgomery is ring.Ring.MulCoeffsMontgomery.
func (b *Backend) MulCoeffsMontgomery(dst, x, y kernels.Buffer) error {
	return b.binary("MulCoeffsMontgomery", opMulMont, dst, x, y)
}

// MulCoeffsMontgomeryThenAdd is ring.Ring.MulCoeffsMontgomeryThenAdd.
func (b *Backend) MulCoeffsMontgomeryThenAdd(dst, x, y kernels.Buffer) error {
	return b.binary("MulCoeffsMontgomeryThenAdd", opMulMontAdd, dst, x, y)
}

// ReduceLazy, MulCoeffsMontgomeryLazyThenAddLazy and MulMatrixMontgomery
// (ckks/polymat's products) have no device kernel yet: they check their
// operands and return kernels.ErrUnsupported, so that a caller can keep
// those products on the CPU reference.

// ReduceLazy is ring.Ring.ReduceLazy; not yet on the device.
func (b *Backend) ReduceLazy(dst, a kernels.Buffer) error {
	if err := kernels.SameShape("ReduceLazy", dst, a); err != nil {
		return err
	}
	return fmt.Errorf("cannot ReduceLazy: %w", kernels.ErrUnsupported)
}

// MulCoeffsMontgomeryLazyThenAddLazy is
// ring.Ring.MulCoeffsMontgomeryLazyThenAddLazy; not yet on the device.
func (b *Backend) MulCoeffsMontgomeryLazyThenAddLazy(dst, x, y kernels.Buffer) error {
	if err := kernels.SameShape("MulCoeffsMontgomeryLazyThenAddLazy", dst, x, y); err != nil {
		return err
	}
	return fmt.Errorf("cannot MulCoeffsMontgomeryLazyThenAddLazy: %w", kernels.ErrUnsupported)
}

// MulMatrixMontgomery is the product of a matrix of ciphertexts by a matrix
// of plaintexts (kernels.Backend); not yet on the device.
func (b *Backend) MulMatrixMontgomery(dst, x, wt kernels.Buffer, shape kernels.MatrixShape) error {
	if err := shape.Check(dst, x, wt); err != nil {
		return fmt.Errorf("cannot MulMatrixMontgomery: %w", err)
	}
	return fmt.Errorf("cannot MulMatrixMontgomery: %w", kernels.ErrUnsupported)
}

// deviceIndex is the AutomorphismIndex of the CUDA backend.
type deviceIndex struct {
	b     *Backend
	galEl uint64
	ptr   uint64
}

// GaloisElement returns the Galois element of the permutation.
func (x *deviceIndex) GaloisElement() uint64 { return x.galEl }

// Release frees the device copy of the permutation.
func (x *deviceIndex) Release() error {
	defer x.b.enter()()
	return x.b.dv.free(x.ptr)
}

// NewAutomorphismIndex uploads ring.AutomorphismNTTIndex for galEl.
func (b *Backend) NewAutomorphismIndex(galEl uint64) (kernels.AutomorphismIndex, error) {
	index, err := ring.AutomorphismNTTIndex(b.params.N(), b.params.NthRoot(), galEl)
	if err != nil {
		return nil, fmt.Errorf("cannot NewAutomorphismIndex: %w", err)
	}
	defer b.enter()()
	p, err := b.upload(index)
	if err != nil {
		return nil, fmt.Errorf("cannot NewAutomorphismIndex: %w", err)
	}
	return &deviceIndex{b: b, galEl: galEl, ptr: p}, nil
}

// AutomorphismNTT is ring.Ring.AutomorphismNTTWithIndex.
func (b *Backend) AutomorphismNTT(dst, src kernels.Buffer, index kernels.AutomorphismIndex) error {
	x, ok := index.(*deviceIndex)
	if !ok || x.b != b {
		return fmt.Errorf("cannot AutomorphismNTT: index does not belong to this backend")
	}
	if dst.Memory() == src.Memory() && dst.Layout().QOffset == src.Layout().QOffset {
		return fmt.Errorf("cannot AutomorphismNTT: dst and src overlap")
	}
	return b.unary("AutomorphismNTT", dst, src, func(z, s view) error {
		return b.launch("automorphism_ntt", blocks(b.params.N()), z.count*z.limbs(), threads, z.words(), s.words(),
			w(x.ptr, u(b.params.N()), u(z.limbs())))
	})
}

// deviceKey is the GadgetKey of the CUDA backend.
type deviceKey struct {
	b              *Backend
	buf            kernels.Buffer
	levelQ, levelP int
	digits         int
}

// LevelQ returns the level of the key's Q moduli.
func (k *deviceKey) LevelQ() int { return k.levelQ }

// LevelP returns the level of the key's P moduli.
func (k *deviceKey) LevelP() int { return k.levelP }

// Digits returns the number of RNS digits.
func (k *deviceKey) Digits() int { return k.digits }

// Release frees the device copy of the key.
func (k *deviceKey) Release() error { return k.b.Free(k.buf) }

// UploadGadgetKey uploads the key, digit-major then component.
func (b *Backend) UploadGadgetKey(key *rlwe.GadgetCiphertext) (kernels.GadgetKey, error) {
	levelQ, levelP, digits, err := kernels.ValidateGadgetKey(b.params, key)
	if err != nil {
		return nil, fmt.Errorf("cannot UploadGadgetKey: %w", err)
	}
	buf, err := b.Alloc(kernels.Basis{LevelQ: levelQ, LevelP: levelP}, 2*digits)
	if err != nil {
		return nil, fmt.Errorf("cannot UploadGadgetKey: %w", err)
	}
	if err := b.Upload(buf, kernels.GadgetKeyPolys(key)); err != nil {
		return nil, fmt.Errorf("cannot UploadGadgetKey: %w", err)
	}
	return &deviceKey{b: b, buf: buf, levelQ: levelQ, levelP: levelP, digits: digits}, nil
}

// getScratch returns a device block of at least words words (caller holds the context).
func (b *Backend) getScratch(words int) (uint64, error) {
	b.mu.Lock()
	if l := b.scratch[words]; len(l) > 0 {
		p := l[len(l)-1]
		b.scratch[words] = l[:len(l)-1]
		b.mu.Unlock()
		return p, nil
	}
	b.mu.Unlock()
	return b.dv.alloc(words)
}

// putScratch returns a block; work queued on it before stays ordered on the
// default stream before any later use.
func (b *Backend) putScratch(words int, p uint64) {
	b.mu.Lock()
	b.scratch[words] = append(b.scratch[words], p)
	b.mu.Unlock()
}

// DecomposeNTT is rlwe.Evaluator.DecomposeNTT (see kernels.Backend).
func (b *Backend) DecomposeNTT(dst, cNTT, cCoeff kernels.Buffer, levelP int) error {
	digits, err := kernels.ValidateDecompose(b.params, dst, cNTT, cCoeff, levelP)
	if err != nil {
		return fmt.Errorf("cannot DecomposeNTT: %w", err)
	}
	z, err1 := b.view(dst)
	xn, err2 := b.view(cNTT)
	xc, err3 := b.view(cCoeff)
	if err1 != nil || err2 != nil || err3 != nil {
		return fmt.Errorf("cannot DecomposeNTT: buffer does not belong to this backend")
	}
	defer b.enter()()
	p := b.params
	n, nq, np := p.N(), len(p.Q()), len(p.P())
	levelQ := xn.lq
	for i := 0; i < digits; i++ {
		d := p.Digit(levelQ, levelP, i)
		dd := b.digit[d]
		if err := b.launch("decompose_digit", blocks(n), xn.count, threads, z.words(), xc.words(),
			w(b.mods, u(nq), u(np), u(n), u(digits), u(i), u(d.Start), u(d.Size), dd.inv, dd.modd, dd.vt, dd.half)); err != nil {
			return fmt.Errorf("cannot DecomposeNTT: %w", err)
		}
	}
	if err := b.ntt(z, z, 0, z.limbs(), false); err != nil {
		return fmt.Errorf("cannot DecomposeNTT: %w", err)
	}
	for i := 0; i < digits; i++ {
		d := p.Digit(levelQ, levelP, i)
		// The digit-i outputs of every input: every digits-th polynomial.
		zi := z
		zi.qoff += uint64(i) * z.stride
		zi.poff += uint64(i) * z.stride
		zi.stride *= uint64(digits)
		zi.count = xn.count
		if err := b.vec(opCopy, zi, xn, view{}, d.Start, d.Size); err != nil {
			return fmt.Errorf("cannot DecomposeNTT: %w", err)
		}
	}
	return nil
}

// GadgetInnerProduct is the fused multiply-accumulate with the key.
func (b *Backend) GadgetInnerProduct(dst, digits kernels.Buffer, key kernels.GadgetKey) error {
	k, ok := key.(*deviceKey)
	if !ok || k.b != b {
		return fmt.Errorf("cannot GadgetInnerProduct: key does not belong to this backend")
	}
	levelQ, levelP, nd, groups, err := kernels.ValidateInnerProduct(b.params, dst, digits, k.levelQ, k.levelP)
	if err != nil {
		return fmt.Errorf("cannot GadgetInnerProduct: %w", err)
	}
	z, err1 := b.view(dst)
	g, err2 := b.view(digits)
	kv, err3 := b.view(k.buf.AtLevel(levelQ, levelP))
	if err1 != nil || err2 != nil || err3 != nil {
		return fmt.Errorf("cannot GadgetInnerProduct: buffer does not belong to this backend")
	}
	defer b.enter()()
	p := b.params
	if err := b.launch("gadget_inner_product", blocks(p.N()), groups*z.limbs(), threads, z.words(), g.words(), kv.words(),
		w(b.mods, u(len(p.Q())), u(p.N()), u(nd), u(p.QiOverflow(levelQ)), u(p.PiOverflow(levelP)))); err != nil {
		return fmt.Errorf("cannot GadgetInnerProduct: %w", err)
	}
	return nil
}

// ModDownNTT is ring.BasisExtender.ModDownQPtoQNTT on every polynomial.
func (b *Backend) ModDownNTT(dst, src kernels.Buffer) error {
	z, err1 := b.view(dst)
	x, err2 := b.view(src)
	if err1 != nil || err2 != nil {
		return fmt.Errorf("cannot ModDownNTT: buffer does not belong to this backend")
	}
	lq, lp := x.lq, x.lp
	if lp < 0 || z.lq != lq || z.lp != -1 || z.count != x.count {
		return fmt.Errorf("cannot ModDownNTT: %d x %s to %d x %s", src.Count(), src.Basis(), dst.Count(), dst.Basis())
	}
	defer b.enter()()
	p := b.params
	n, nq := p.N(), len(p.Q())
	wp, wq := x.count*(lp+1)*n, x.count*(lq+1)*n
	tp, err := b.getScratch(wp)
	if err != nil {
		return fmt.Errorf("cannot ModDownNTT: %w", err)
	}
	defer b.putScratch(wp, tp)
	tq, err := b.getScratch(wq)
	if err != nil {
		return fmt.Errorf("cannot ModDownNTT: %w", err)
	}
	defer b.putScratch(wq, tq)
	// P limbs of src -> contiguous tmpP (same limb numbering as src).
	vp := view{ptr: tp, poff: 0, stride: uint64((lp + 1) * n), lq: lq, lp: lp, count: x.count}
	vq := view{ptr: tq, qoff: 0, stride: uint64((lq + 1) * n), lq: lq, lp: -1, count: x.count}
	md := b.modDown[lp]
	steps := []func() error{
		func() error { return b.intt(vp, x, lq+1, lp+1, true) },
		func() error {
			return b.launch("moddown_extend", blocks(n), x.count, threads,
				w(tq, tp, b.mods, u(nq), u(n), u(lq), u(lp), md.inv, md.modd, md.vt, md.halfP, md.halfQ))
		},
		func() error { return b.ntt(vq, vq, 0, lq+1, true) },
		func() error {
			return b.launch("sub_mul_scalar", blocks(n), x.count*(lq+1), threads, z.words(), x.words(),
				w(tq, md.pinv, 1, b.mods, u(nq), u(n), u(lq+1)))
		},
	}
	for _, s := range steps {
		if err := s(); err != nil {
			return fmt.Errorf("cannot ModDownNTT: %w", err)
		}
	}
	return nil
}

// RescaleNTT is ring.Ring.DivRoundByLastModulusNTT on every polynomial.
func (b *Backend) RescaleNTT(dst, src kernels.Buffer) error {
	z, err1 := b.view(dst)
	x, err2 := b.view(src)
	if err1 != nil || err2 != nil {
		return fmt.Errorf("cannot RescaleNTT: buffer does not belong to this backend")
	}
	l := x.lq
	if l < 1 || x.lp != -1 || z.lq != l-1 || z.lp != -1 || z.count != x.count {
		return fmt.Errorf("cannot RescaleNTT: %d x %s to %d x %s", src.Count(), src.Basis(), dst.Count(), dst.Basis())
	}
	defer b.enter()()
	p := b.params
	n, nq := p.N(), len(p.Q())
	wt, wl := x.count*n, x.count*l*n
	top, err := b.getScratch(wt)
	if err != nil {
		return fmt.Errorf("cannot RescaleNTT: %w", err)
	}
	defer b.putScratch(wt, top)
	t, err := b.getScratch(wl)
	if err != nil {
		return fmt.Errorf("cannot RescaleNTT: %w", err)
	}
	defer b.putScratch(wl, t)
	// top holds limb l of every polynomial: Q offset -l*N so that limb l
	// of polynomial k lands at top + k*N.
	vtop := view{ptr: top, qoff: uint64(-l * n), stride: uint64(n), lq: l, lp: -1, count: x.count}
	vt := view{ptr: t, stride: uint64(l * n), lq: l - 1, lp: -1, count: x.count}
	steps := []func() error{
		func() error { return b.intt(vtop, x, l, 1, true) },
		func() error {
			return b.launch("rescale_spread", blocks(n), x.count, threads, w(t, top, b.mods, u(n), u(l)))
		},
		func() error { return b.ntt(vt, vt, 0, l, true) },
		func() error {
			return b.launch("sub_mul_scalar", blocks(n), x.count*l, threads, z.words(), x.words(),
				w(t, b.rescale[l], 0, b.mods, u(nq), u(n), u(l)))
		},
	}
	for _, s := range steps {
		if err := s(); err != nil {
			return fmt.Errorf("cannot RescaleNTT: %w", err)
		}
	}
	return nil
}

var _ kernels.Backend = (*Backend)(nil)
