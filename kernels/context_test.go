package kernels

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"
	"github.com/tuneinsight/lattigo/v5/ring"
	"github.com/tuneinsight/lattigo/v5/ring/ringqp"
	"github.com/tuneinsight/lattigo/v5/schemes/ckks"
)

var flagFull = flag.Bool("kernels.full", false, "also test the secure presets at their real ring degrees (N=2^14, 2^15; slow)")

func chain(first, size, count int) []int {
	q := []int{first}
	for i := 0; i < count; i++ {
		q = append(q, size)
	}
	return q
}

// The project's preset chains (ckks.Presets, which kernels may not import):
// Interactive14 is 46 + 10x33 bits with one 60-bit P, Interactive15 is
// 55 + 16x40 bits with three 60-bit P.
var (
	litSmall = ckks.ParametersLiteral{LogN: 12, LogQ: []int{55, 45, 45, 45}, LogP: []int{61, 61}, LogDefaultScale: 45}
	lit14    = ckks.ParametersLiteral{LogN: 14, LogQ: chain(46, 33, 10), LogP: []int{60}, LogDefaultScale: 33}
	lit15    = ckks.ParametersLiteral{LogN: 15, LogQ: chain(55, 40, 16), LogP: []int{60, 60, 60}, LogDefaultScale: 40}
)

func withLogN(l ckks.ParametersLiteral, logN int) ckks.ParametersLiteral {
	l.LogN = logN
	return l
}

type testLiteral struct {
	name string
	lit  ckks.ParametersLiteral
	full bool // only with -kernels.full
}

var testLiterals = []testLiteral{
	{"N12-Q4-P2", litSmall, false},
	{"Interactive14-chain@N11", withLogN(lit14, 11), false},
	{"Interactive15-chain@N12", withLogN(lit15, 12), false},
	{"Interactive14", lit14, true},
	{"Interactive15", lit15, true},
}

// rotations tested (and keyed) in every context.
var testRotations = []int{1, -3, 17}

// testContext is one parameter set with its keys and Lattigo evaluator.
type testContext struct {
	name    string
	params  ckks.Parameters
	kp      *Params
	sk      *rlwe.SecretKey
	rlk     *rlwe.RelinearizationKey
	gks     []*rlwe.GaloisKey
	lattigo *ckks.Evaluator
	enc     *rlwe.Encryptor
	ecd     *ckks.Encoder
}

var (
	contextsMu sync.Mutex
	contexts   = map[string]*testContext{}
)

// getContexts returns the contexts to test, building them once per process.
func getContexts(tb testing.TB) []*testContext {
	tb.Helper()
	contextsMu.Lock()
	defer contextsMu.Unlock()
	var out []*testContext
	for _, tl := range testLiterals {
		if tl.full && !*flagFull {
			continue
		}
		if tc, ok := contexts[tl.name]; ok {
			out = append(out, tc)
			continue
		}
		tc, err := newTestContext(tl.name, tl.lit, testRotations, true)
		if err != nil {
			tb.Fatal(err)
		}
		contexts[tl.name] = tc
		out = append(out, tc)
	}
	return out
}

func newTestContext(name string, lit ckks.ParametersLiteral, rotations []int, conjugate bool) (*testContext, error) {
	params, err := ckks.NewParametersFromLiteral(lit)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	kp, err := NewParams(params.Parameters)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	kgen := rlwe.NewKeyGenerator(params)
	sk := kgen.GenSecretKeyNew()
	rlk := kgen.GenRelinearizationKeyNew(sk)
	galEls := params.GaloisElements(rotations)
	if conjugate {
		galEls = append(galEls, params.GaloisElementOrderTwoOrthogonalSubgroup())
	}
	gks := kgen.GenGaloisKeysNew(galEls, sk)
	return &testContext{
		name: name, params: params, kp: kp, sk: sk, rlk: rlk, gks: gks,
		lattigo: ckks.NewEvaluator(params, rlwe.NewMemEvaluationKeySet(rlk, gks...)),
		enc:     rlwe.NewEncryptor(params, sk),
		ecd:     ckks.NewEncoder(params),
	}, nil
}

// backends returns the CPU backends under test: each variant, sequential,
// and the unrolled one on two goroutines.
func (tc *testContext) backends(tb testing.TB) []*CPU {
	tb.Helper()
	var out []*CPU
	for _, o := range []CPUOptions{{Variant: VariantGeneric}, {Variant: VariantUnrolled}, {Variant: VariantUnrolled, Workers: 2}} {
		c, err := NewCPU(tc.kp, o)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, c)
	}
	return out
}

// randomCiphertext encrypts random slots at level.
func (tc *testContext) randomCiphertext(tb testing.TB, r *rand.Rand, level int) *rlwe.Ciphertext {
	tb.Helper()
	values := make([]complex128, tc.params.MaxSlots())
	for i := range values {
		values[i] = complex(r.Float64()*2-1, r.Float64()*2-1)
	}
	pt := ckks.NewPlaintext(tc.params, level)
	if err := tc.ecd.Encode(values, pt); err != nil {
		tb.Fatal(err)
	}
	ct, err := tc.enc.EncryptNew(pt)
	if err != nil {
		tb.Fatal(err)
	}
	return ct
}

// randomPoly fills a polynomial of r with uniform residues.
func randomPoly(rng *rand.Rand, r *ring.Ring, level int) ring.Poly {
	p := ring.NewPoly(r.N(), level)
	for i, s := range r.SubRings[:level+1] {
		for j := range p.Coeffs[i] {
			p.Coeffs[i][j] = rng.Uint64N(s.Modulus)
		}
	}
	return p
}

// randomQP returns a uniform polynomial in basis b.
func (tc *testContext) randomQP(rng *rand.Rand, b Basis) ringqp.Poly {
	p := ringqp.Poly{Q: randomPoly(rng, tc.params.RingQ(), b.LevelQ)}
	if b.LevelP >= 0 {
		p.P = randomPoly(rng, tc.params.RingP(), b.LevelP)
	}
	return p
}

// newQP allocates a zero polynomial in basis b.
func (tc *testContext) newQP(b Basis) ringqp.Poly {
	p := ringqp.Poly{Q: ring.NewPoly(tc.params.N(), b.LevelQ)}
	if b.LevelP >= 0 {
		p.P = ring.NewPoly(tc.params.N(), b.LevelP)
	}
	return p
}

// upload allocates a buffer and uploads polys.
func upload(tb testing.TB, be Backend, b Basis, polys ...ringqp.Poly) Buffer {
	tb.Helper()
	buf, err := be.Alloc(b, len(polys))
	if err != nil {
		tb.Fatal(err)
	}
	if err := be.Upload(buf, polys); err != nil {
		tb.Fatal(err)
	}
	return buf
}

// download reads every polynomial of buf.
func (tc *testContext) download(tb testing.TB, be Backend, buf Buffer) []ringqp.Poly {
	tb.Helper()
	out := make([]ringqp.Poly, buf.Count())
	for i := range out {
		out[i] = tc.newQP(buf.Basis())
	}
	if err := be.Download(buf, out); err != nil {
		tb.Fatal(err)
	}
	return out
}

// equalPoly reports the first differing word of two polynomials' first limbs.
func equalPoly(want, got ring.Poly, limbs int) error {
	for i := 0; i < limbs; i++ {
		for j := range want.Coeffs[i] {
			if want.Coeffs[i][j] != got.Coeffs[i][j] {
				return fmt.Errorf("limb %d coefficient %d: got %d, want %d", i, j, got.Coeffs[i][j], want.Coeffs[i][j])
			}
		}
	}
	return nil
}

func equalQP(want, got ringqp.Poly, b Basis) error {
	if err := equalPoly(want.Q, got.Q, b.LevelQ+1); err != nil {
		return fmt.Errorf("Q: %w", err)
	}
	if b.LevelP >= 0 {
		if err := equalPoly(want.P, got.P, b.LevelP+1); err != nil {
			return fmt.Errorf("P: %w", err)
		}
	}
	return nil
}

// equalCiphertext compares values word for word and the metadata.
func equalCiphertext(want, got *rlwe.Ciphertext) error {
	if want.Level() != got.Level() || want.Degree() != got.Degree() {
		return fmt.Errorf("level/degree %d/%d, want %d/%d", got.Level(), got.Degree(), want.Level(), want.Degree())
	}
	for i := range want.Value {
		if err := equalPoly(want.Value[i], got.Value[i], want.Level()+1); err != nil {
			return fmt.Errorf("polynomial %d: %w", i, err)
		}
	}
	if want.Scale.Cmp(got.Scale) != 0 || want.IsNTT != got.IsNTT || want.LogDimensions != got.LogDimensions || want.IsBatched != got.IsBatched {
		return fmt.Errorf("metadata %+v, want %+v", *got.MetaData, *want.MetaData)
	}
	return nil
}
