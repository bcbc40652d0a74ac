package kernels

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"
	"github.com/tuneinsight/lattigo/v5/ring"
	"github.com/tuneinsight/lattigo/v5/ring/ringqp"
	"go.uber.org/goleak"
)

// TestMain prints the CPU kernel choice as benchmark configuration lines
// ("key: value", which benchstat keeps with the results), and fails the
// package's tests if any goroutine outlives them.
func TestMain(m *testing.M) {
	flag.Parse()
	if f := flag.Lookup("test.bench"); f != nil && f.Value.String() != "" {
		fmt.Printf("kernels-default-variant: %s\n", DefaultVariant())
		fmt.Printf("kernels-cpu-features: %s\n", CPUFeatures())
	}
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// Benchmark shapes: the presets' chains at N=2^14 (Interactive14 itself)
// and N=2^16 (Interactive15's 17 Q and 3 P limbs).
var benchLiterals = []testLiteral{
	{"N=16384/Interactive14", lit14, false},
	{"N=65536/Interactive15-chain", withLogN(lit15, 16), false},
}

var (
	benchMu       sync.Mutex
	benchContexts = map[string]*testContext{}
)

func getBenchContext(b *testing.B, tl testLiteral) *testContext {
	benchMu.Lock()
	defer benchMu.Unlock()
	if tc, ok := benchContexts[tl.name]; ok {
		return tc
	}
	tc, err := newTestContext(tl.name, tl.lit, []int{1}, false)
	if err != nil {
		b.Fatal(err)
	}
	benchContexts[tl.name] = tc
	return tc
}

// benchBackends are the CPU configurations compared with Lattigo.
func benchBackends(b *testing.B, tc *testContext) []*CPU {
	var out []*CPU
	for _, o := range []CPUOptions{{Variant: VariantGeneric}, {Variant: VariantUnrolled}, {Variant: VariantUnrolled, Workers: -1}} {
		c, err := NewCPU(tc.kp, o)
		if err != nil {
			b.Fatal(err)
		}
		out = append(out, c)
	}
	return out
}

// versus times Lattigo and ours alternately in every iteration and
// reports both and their ratio (same run, same machine state).
func versus(b *testing.B, lattigo, ours func() error) {
	b.Helper()
	var tl, to time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		if err := lattigo(); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if err := ours(); err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		tl += t1.Sub(t0)
		to += t2.Sub(t1)
	}
	b.StopTimer()
	b.ReportMetric(float64(tl.Nanoseconds())/float64(b.N), "lattigo-ns/op")
	b.ReportMetric(float64(to.Nanoseconds())/float64(b.N), "ours-ns/op")
	b.ReportMetric(float64(tl)/float64(to), "speedup")
}

// BenchmarkNTT measures the forward and inverse NTT of one limb and of a
// whole ciphertext (two polynomials, every Q limb), ours against Lattigo.
func BenchmarkNTT(b *testing.B) {
	for _, tl := range benchLiterals {
		tc := getBenchContext(b, tl)
		rng := rand.New(rand.NewPCG(1, 1))
		level := tc.params.MaxLevelQ()
		rq := tc.params.RingQ()
		for _, be := range benchBackends(b, tc) {
			one := Basis{0, -1}
			p := tc.randomQP(rng, Basis{level, -1})
			limbBuf := upload(b, be, one, p)
			ctBuf := upload(b, be, Basis{level, -1}, p, p)
			lp, lct := ring.NewPoly(tc.params.N(), level), []ring.Poly{*p.Q.CopyNew(), *p.Q.CopyNew()}
			s := rq.SubRings[0]
			cases := []struct {
				name    string
				lattigo func() error
				ours    func() error
			}{
				{"NTT/limb", func() error { s.NTT(p.Q.Coeffs[0], lp.Coeffs[0]); return nil },
					func() error { return be.NTT(limbBuf, limbBuf) }},
				{"INTT/limb", func() error { s.INTT(p.Q.Coeffs[0], lp.Coeffs[0]); return nil },
					func() error { return be.INTT(limbBuf, limbBuf) }},
				{"NTT/ciphertext", func() error { rq.NTT(lct[0], lct[0]); rq.NTT(lct[1], lct[1]); return nil },
					func() error { return be.NTT(ctBuf, ctBuf) }},
				{"INTT/ciphertext", func() error { rq.INTT(lct[0], lct[0]); rq.INTT(lct[1], lct[1]); return nil },
					func() error { return be.INTT(ctBuf, ctBuf) }},
			}
			for _, c := range cases {
				b.Run(fmt.Sprintf("%s/%s/L=%d/%s", c.name, tl.name, level+1, be.Name()), func(b *testing.B) {
					versus(b, c.lattigo, c.ours)
				})
			}
		}
	}
}

// BenchmarkKeySwitch measures the gadget product (decomposition, inner
// product with the relinearization key, mod-down) of one polynomial.
func BenchmarkKeySwitch(b *testing.B) {
	for _, tl := range benchLiterals {
		tc := getBenchContext(b, tl)
		rng := rand.New(rand.NewPCG(2, 2))
		level := tc.params.MaxLevelQ()
		c := randomPoly(rng, tc.params.RingQ(), level)
		want := rlwe.NewCiphertext(tc.params, 1, level)
		for _, be := range benchBackends(b, tc) {
			keys, err := UploadEvaluationKeySet(be, tc.rlk)
			if err != nil {
				b.Fatal(err)
			}
			ev := NewEvaluator(be, keys)
			cx := upload(b, be, Basis{level, -1}, ringqp.Poly{Q: c})
			out, _ := be.Alloc(Basis{level, -1}, 2)
			b.Run(fmt.Sprintf("GadgetProduct/%s/L=%d/%s", tl.name, level+1, be.Name()), func(b *testing.B) {
				versus(b,
					func() error { tc.lattigo.GadgetProduct(level, c, &tc.rlk.GadgetCiphertext, want); return nil },
					func() error { return ev.GadgetProduct(level, cx, keys.Relin.Key, out) })
			})
		}
	}
}

// BenchmarkCiphertext measures Rotate, MulRelin and Rescale of CKKS
// ciphertexts at the top level, ours against ckks.Evaluator.
func BenchmarkCiphertext(b *testing.B) {
	for _, tl := range benchLiterals {
		tc := getBenchContext(b, tl)
		rng := rand.New(rand.NewPCG(3, 3))
		level := tc.params.MaxLevelQ()
		a, c := tc.randomCiphertext(b, rng, level), tc.randomCiphertext(b, rng, level)
		lout := rlwe.NewCiphertext(tc.params, 1, level)
		for _, be := range benchBackends(b, tc) {
			keys, err := UploadEvaluationKeySet(be, tc.rlk, tc.gks...)
			if err != nil {
				b.Fatal(err)
			}
			ev := NewEvaluator(be, keys)
			da, _ := ev.UploadCiphertext(a)
			dc, _ := ev.UploadCiphertext(c)
			out, _ := ev.NewCiphertext(level)
			cases := []struct {
				name          string
				lattigo, ours func() error
			}{
				{"Rotate", func() error { return tc.lattigo.Rotate(a, 1, lout) },
					func() error { return ev.Rotate(da, 1, out) }},
				{"MulRelin", func() error { return tc.lattigo.MulRelin(a, c, lout) },
					func() error { return ev.MulRelin(da, dc, out) }},
				{"Rescale", func() error { return tc.lattigo.Rescale(a, lout) },
					func() error { return ev.Rescale(da, out) }},
			}
			for _, cs := range cases {
				b.Run(fmt.Sprintf("%s/%s/L=%d/%s", cs.name, tl.name, level+1, be.Name()), func(b *testing.B) {
					versus(b, cs.lattigo, cs.ours)
				})
			}
		}
	}
}
