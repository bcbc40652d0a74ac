package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/tuneinsight/lattigo/v5/ring"
	"github.com/tuneinsight/lattigo/v5/ring/ringqp"
)

func TestModArith(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, bits := range []int{30, 33, 40, 46, 55, 60, 61} {
		g := ring.NewNTTFriendlyPrimesGenerator(uint64(bits), 1<<12)
		q, err := g.NextAlternatingPrime()
		if err != nil {
			t.Fatal(err)
		}
		qInv, bred := ring.MRedConstant(q), ring.BRedConstant(q)
		u := [2]uint64{bred[0], bred[1]}
		for i := 0; i < 20000; i++ {
			x, y := rng.Uint64N(2*q), rng.Uint64N(q)
			a := rng.Uint64()
			if got, want := mred(x, y, q, qInv), ring.MRed(x, y, q, qInv); got != want {
				t.Fatalf("q=%d MRed(%d,%d) = %d, want %d", q, x, y, got, want)
			}
			if got, want := mredLazy(x, y, q, qInv), ring.MRedLazy(x, y, q, qInv); got != want {
				t.Fatalf("q=%d MRedLazy(%d,%d) = %d, want %d", q, x, y, got, want)
			}
			if got, want := bredAdd(a, q, u), ring.BRedAdd(a, q, bred); got != want {
				t.Fatalf("q=%d BRedAdd(%d) = %d, want %d", q, a, got, want)
			}
			if got, want := mform(y, q, u), ring.MForm(y, q, bred); got != want {
				t.Fatalf("q=%d MForm(%d) = %d, want %d", q, y, got, want)
			}
			if got, want := cred(x, q), ring.CRed(x, q); got != want {
				t.Fatalf("q=%d CRed(%d) = %d, want %d", q, x, got, want)
			}
		}
	}
}

// fullBasis is the whole QP basis of a context.
func (tc *testContext) fullBasis() Basis { return Basis{tc.kp.MaxLevelQ(), tc.kp.MaxLevelP()} }

// lattigoQP applies f to the Q and P parts with Lattigo's rings at the levels of b.
func (tc *testContext) lattigoQP(b Basis, f func(r *ring.Ring, i int)) {
	f(tc.params.RingQ().AtLevel(b.LevelQ), 0)
	if b.LevelP >= 0 {
		f(tc.params.RingP().AtLevel(b.LevelP), 1)
	}
}

func part(p *ringqp.Poly, i int) ring.Poly {
	if i == 0 {
		return p.Q
	}
	return p.P
}

// TestTransforms checks NTT, NTTLazy, INTT and INTTLazy on every limb of Q
// and P, on canonical and on lazy (below 2q) inputs, against Lattigo.
func TestTransforms(t *testing.T) {
	for _, tc := range getContexts(t) {
		b := tc.fullBasis()
		rng := rand.New(rand.NewPCG(3, 4))
		in := tc.randomQP(rng, b)
		lazyIn := tc.newQP(b) // NTTLazy outputs: non-canonical INTT inputs
		tc.lattigoQP(b, func(r *ring.Ring, i int) { r.NTTLazy(part(&in, i), part(&lazyIn, i)) })

		type transform struct {
			name    string
			input   ringqp.Poly
			lattigo func(r ring.Ring, a, b ring.Poly)
			ours    func(be Backend, dst, src Buffer) error
		}
		transforms := []transform{
			{"NTT", in, ring.Ring.NTT, Backend.NTT},
			{"NTTLazy", in, ring.Ring.NTTLazy, Backend.NTTLazy},
			{"INTT", in, ring.Ring.INTT, Backend.INTT},
			{"INTTLazy", in, ring.Ring.INTTLazy, Backend.INTTLazy},
			{"INTT/lazy-input", lazyIn, ring.Ring.INTT, Backend.INTT},
			{"INTTLazy/lazy-input", lazyIn, ring.Ring.INTTLazy, Backend.INTTLazy},
		}
		for _, be := range tc.backends(t) {
			for _, tr := range transforms {
				t.Run(fmt.Sprintf("%s/%s/%s", tr.name, tc.name, be.Name()), func(t *testing.T) {
					want := tc.newQP(b)
					tc.lattigoQP(b, func(r *ring.Ring, i int) { tr.lattigo(*r, part(&tr.input, i), part(&want, i)) })
					src := upload(t, be, b, tr.input)
					dst, _ := be.Alloc(b, 1)
					if err := tr.ours(be, dst, src); err != nil {
						t.Fatal(err)
					}
					if err := equalQP(want, tc.download(t, be, dst)[0], b); err != nil {
						t.Fatal(err)
					}
					// In place as well.
					if err := tr.ours(be, src, src); err != nil {
						t.Fatal(err)
					}
					if err := equalQP(want, tc.download(t, be, src)[0], b); err != nil {
						t.Fatalf("in place: %v", err)
					}
				})
			}
		}
	}
}

// TestPointwise checks the coefficient-wise operations against Lattigo.
func TestPointwise(t *testing.T) {
	for _, tc := range getContexts(t) {
		b := tc.fullBasis()
		rng := rand.New(rand.NewPCG(5, 6))
		x, y, z := tc.randomQP(rng, b), tc.randomQP(rng, b), tc.randomQP(rng, b)
		wide := tc.newQP(b) // arbitrary 64-bit words, for Reduce
		tc.lattigoQP(b, func(r *ring.Ring, i int) {
			for _, c := range part(&wide, i).Coeffs {
				for j := range c {
					c[j] = rng.Uint64()
				}
			}
		})
		type op struct {
			name    string
			a, c    ringqp.Poly
			lattigo func(r ring.Ring, a, b, out ring.Poly)
			ours    func(be Backend, out, a, b Buffer) error
		}
		ops := []op{
			{"Add", x, y, ring.Ring.Add, Backend.Add},
			{"Sub", x, y, ring.Ring.Sub, Backend.Sub},
			{"MulCoeffsMontgomery", x, y, ring.Ring.MulCoeffsMontgomery, Backend.MulCoeffsMontgomery},
			{"MulCoeffsMontgomeryThenAdd", x, y, ring.Ring.MulCoeffsMontgomeryThenAdd, Backend.MulCoeffsMontgomeryThenAdd},
			{"Reduce", wide, y, func(r ring.Ring, a, _, out ring.Poly) { r.Reduce(a, out) },
				func(be Backend, out, a, _ Buffer) error { return be.Reduce(out, a) }},
			{"MForm", x, y, func(r ring.Ring, a, _, out ring.Poly) { r.MForm(a, out) },
				func(be Backend, out, a, _ Buffer) error { return be.MForm(out, a) }},
			{"ReduceLazy", wide, y, func(r ring.Ring, a, _, out ring.Poly) { r.ReduceLazy(a, out) },
				func(be Backend, out, a, _ Buffer) error { return be.ReduceLazy(out, a) }},
			{"MulCoeffsMontgomeryLazyThenAddLazy", x, y, ring.Ring.MulCoeffsMontgomeryLazyThenAddLazy, Backend.MulCoeffsMontgomeryLazyThenAddLazy},
		}
		for _, be := range tc.backends(t) {
			for _, o := range ops {
				t.Run(fmt.Sprintf("%s/%s/%s", o.name, tc.name, be.Name()), func(t *testing.T) {
					want := *z.CopyNew()
					tc.lattigoQP(b, func(r *ring.Ring, i int) { o.lattigo(*r, part(&o.a, i), part(&o.c, i), part(&want, i)) })
					a, c, out := upload(t, be, b, o.a), upload(t, be, b, o.c), upload(t, be, b, z)
					if err := o.ours(be, out, a, c); err != nil {
						t.Fatal(err)
					}
					if err := equalQP(want, tc.download(t, be, out)[0], b); err != nil {
						t.Fatal(err)
					}
				})
			}
		}
	}
}

// TestAutomorphismNTT checks the slot permutation against Lattigo.
func TestAutomorphismNTT(t *testing.T) {
	for _, tc := range getContexts(t) {
		b := tc.fullBasis()
		rng := rand.New(rand.NewPCG(7, 8))
		in := tc.randomQP(rng, b)
		for _, be := range tc.backends(t) {
			for _, gk := range tc.gks {
				galEl := gk.GaloisElement
				t.Run(fmt.Sprintf("galEl=%d/%s/%s", galEl, tc.name, be.Name()), func(t *testing.T) {
					index, err := ring.AutomorphismNTTIndex(tc.params.N(), tc.params.RingQ().NthRoot(), galEl)
					if err != nil {
						t.Fatal(err)
					}
					want := tc.newQP(b)
					tc.lattigoQP(b, func(r *ring.Ring, i int) { r.AutomorphismNTTWithIndex(part(&in, i), index, part(&want, i)) })
					idx, err := be.NewAutomorphismIndex(galEl)
					if err != nil {
						t.Fatal(err)
					}
					src := upload(t, be, b, in)
					dst, _ := be.Alloc(b, 1)
					if err := be.AutomorphismNTT(dst, src, idx); err != nil {
						t.Fatal(err)
					}
					if err := equalQP(want, tc.download(t, be, dst)[0], b); err != nil {
						t.Fatal(err)
					}
					if err := be.AutomorphismNTT(src, src, idx); err == nil {
						t.Fatal("in-place automorphism accepted")
					}
				})
			}
		}
	}
}

// TestVariantsIdentical runs the generic and unrolled kernels on the same
// random inputs, lazy ones included, and requires identical words (CIRCL's
// generic-versus-fast-path test).
func TestVariantsIdentical(t *testing.T) {
	for _, tc := range getContexts(t) {
		rng := rand.New(rand.NewPCG(9, 10))
		n := tc.params.N()
		for _, mod := range append(append([]Modulus{}, tc.kp.Q()...), tc.kp.P()...) {
			in := make([]uint64, n)
			for i := range in {
				in[i] = rng.Uint64N(2 * mod.Q)
			}
			cases := []struct {
				name     string
				gen, unr func(dst, src []uint64, m *Modulus)
			}{
				{"NTTLazy", nttLazyGeneric, nttLazyUnrolled},
				{"INTTLazyCore", inttLazyCoreGeneric, inttLazyCoreUnrolled},
				{"Reduce", reduceGeneric, reduceUnrolled},
				{"ReduceLazy", reduceLazyGeneric, reduceLazyUnrolled},
				{"MACLazy", func(d, s []uint64, m *Modulus) {
					macLazyGeneric(d, s, s, m)
				}, func(d, s []uint64, m *Modulus) {
					macLazyUnrolled(d, s, s, m)
				}},
				{"MulScalarMontgomeryLazy",
					func(d, s []uint64, m *Modulus) { mulScalarMontgomeryGeneric(d, s, m.NInv, m, true) },
					func(d, s []uint64, m *Modulus) { mulScalarMontgomeryUnrolled(d, s, m.NInv, m, true) }},
				{"MAC", func(d, s []uint64, m *Modulus) {
					z1 := make([]uint64, n)
					macGeneric(d, z1, s, s, s, m, true)
					macGeneric(d, z1, s, s, s, m, false)
				}, func(d, s []uint64, m *Modulus) {
					z1 := make([]uint64, n)
					macUnrolled(d, z1, s, s, s, m, true)
					macUnrolled(d, z1, s, s, s, m, false)
				}},
			}
			for _, c := range cases {
				a, b := make([]uint64, n), make([]uint64, n)
				c.gen(a, in, &mod)
				c.unr(b, in, &mod)
				for i := range a {
					if a[i] != b[i] {
						t.Fatalf("%s/%s q=%d: word %d generic %d, unrolled %d", c.name, tc.name, mod.Q, i, a[i], b[i])
					}
				}
			}
		}
	}
}

func TestBufferViews(t *testing.T) {
	tc := getContexts(t)[0]
	be, err := NewCPU(tc.kp, CPUOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b := tc.fullBasis()
	buf, err := be.Alloc(b, 3)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(11, 12))
	polys := []ringqp.Poly{tc.randomQP(rng, b), tc.randomQP(rng, b), tc.randomQP(rng, b)}
	if err := be.Upload(buf, polys); err != nil {
		t.Fatal(err)
	}
	// A lower-level view of the middle polynomial reads the right limbs.
	v := buf.Poly(1).AtLevel(1, 0)
	got := tc.newQP(v.Basis())
	if err := be.Download(v, []ringqp.Poly{got}); err != nil {
		t.Fatal(err)
	}
	if err := equalQP(polys[1], got, v.Basis()); err != nil {
		t.Fatal(err)
	}
	for name, f := range map[string]func() error{
		"count mismatch":  func() error { return be.Upload(buf, polys[:2]) },
		"shape mismatch":  func() error { return be.Add(buf.Poly(0), buf.Poly(1), buf.Slice(1, 3)) },
		"bad level alloc": func() error { _, err := be.Alloc(Basis{b.LevelQ + 1, 0}, 1); return err },
		"foreign buffer":  func() error { return be.NTT(Buffer{}, buf) },
	} {
		if f() == nil {
			t.Errorf("%s: no error", name)
		}
	}
	for name, f := range map[string]func(){
		"AtLevel": func() { buf.AtLevel(b.LevelQ+1, 0) },
		"Slice":   func() { buf.Slice(2, 4) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s out of range did not panic", name)
				}
			}()
			f()
		}()
	}
}
