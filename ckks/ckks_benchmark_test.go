package ckks

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"
	"github.com/tuneinsight/lattigo/v5/he/hefloat"

	"github.com/cipherprune/cipherprune/models"
	"github.com/cipherprune/cipherprune/models/approx"
)

// The benchmarks run on the secure default preset with BERT-base's shape
// (hidden 768, 12 heads, FFN 3072) and random weights:
//
//	go test ./ckks -run '^$' -bench . -benchtime 1x -timeout 2h
//
// Refreshes inside a layer are the secret-key test helper with the timer
// stopped, so the figures exclude the bridge's round trips. Each benchmark
// runs with 1 and 2 workers so the speed-up reads off one run.

// benchPreset is the preset every benchmark uses.
const benchPreset = Interactive14

// bertBase is BERT-base's public shape at n tokens.
func bertBase(n int) Shape {
	return Shape{Rows: n, Hidden: 768, Heads: 12, Intermediate: 3072, Labels: 2}
}

// benchEnv is a keyed context for one shape, built once per benchmark
// binary (key generation for BERT-base takes tens of seconds).
type benchEnv struct {
	tc    *testContext
	shape Shape
	lay   Layout
	evk   rlwe.EvaluationKeySet
}

var (
	benchMu   sync.Mutex
	benchEnvs = map[Shape]*benchEnv{}
)

func getBenchEnv(b *testing.B, s Shape) *benchEnv {
	b.Helper()
	benchMu.Lock()
	defer benchMu.Unlock()
	if e, ok := benchEnvs[s]; ok {
		return e
	}
	tc := newTestContext(b, benchPreset)
	slots := tc.params.MaxSlots()
	rots, err := Rotations(s, slots)
	if err != nil {
		b.Fatal(err)
	}
	gks := tc.kgen.GenGaloisKeysNew(tc.galEls(rots), tc.sk)
	lay, err := LayoutFor(slots, s.Rows, s.Hidden, s.Hidden/s.Heads, s.Heads)
	if err != nil {
		b.Fatal(err)
	}
	e := &benchEnv{tc: tc, shape: s, lay: lay, evk: rlwe.NewMemEvaluationKeySet(tc.rlk, gks...)}
	benchEnvs[s] = e
	return e
}

func (e *benchEnv) evaluator(b *testing.B, workers int) *Evaluator {
	b.Helper()
	ev, err := NewEvaluator(e.tc.params, e.evk, nil, workers)
	if err != nil {
		b.Fatal(err)
	}
	return ev
}

func (e *benchEnv) encrypt(b *testing.B, lay Layout, seed uint64) *CtMatrix {
	b.Helper()
	r := rand.New(rand.NewPCG(seed, 1))
	x, err := e.tc.client.EncryptMatrix(randMatrix(r, lay.Rows, lay.Cols, 1), lay, e.tc.params.MaxLevel())
	if err != nil {
		b.Fatal(err)
	}
	return x
}

// benchBridge is the secret-key refresh with the benchmark timer stopped.
type benchBridge struct {
	b     *testing.B
	tc    *testContext
	masks *AttentionMasks
}

func (br *benchBridge) Refresh(_ context.Context, cts []*rlwe.Ciphertext) ([]*rlwe.Ciphertext, error) {
	br.b.StopTimer()
	defer br.b.StartTimer()
	return br.tc.refresh(cts)
}

func (br *benchBridge) AfterAttention(ctx context.Context, out *AttentionOutput) (*BridgeResult, error) {
	cts, err := br.Refresh(ctx, out.Hidden.Cts)
	if err != nil {
		return nil, err
	}
	return &BridgeResult{Hidden: &CtMatrix{Layout: out.Hidden.Layout, Cts: cts}, Masks: br.masks}, nil
}

func forWorkers(b *testing.B, f func(b *testing.B, workers int)) {
	for _, w := range []int{1, 2} {
		b.Run(fmt.Sprintf("workers=%d", w), func(b *testing.B) { f(b, w) })
	}
}

// BenchmarkMulRelin measures one ciphertext product with relinearization
// and rescale at the top level.
func BenchmarkMulRelin(b *testing.B) {
	e := getBenchEnv(b, bertBase(128))
	ev := hefloat.NewEvaluator(e.tc.params, e.evk)
	x := e.encrypt(b, e.lay, 1).Cts[0]
	y := e.encrypt(b, e.lay, 2).Cts[0]
	out := hefloat.NewCiphertext(e.tc.params, 1, x.Level())
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := ev.MulRelin(x, y, out); err != nil {
			b.Fatal(err)
		}
		if err := ev.Rescale(out, out); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRotate measures one rotation (key switch) at the top level.
func BenchmarkRotate(b *testing.B) {
	e := getBenchEnv(b, bertBase(128))
	ev := hefloat.NewEvaluator(e.tc.params, e.evk)
	x := e.encrypt(b, e.lay, 1).Cts[0]
	out := hefloat.NewCiphertext(e.tc.params, 1, x.Level())
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := ev.Rotate(x, e.lay.Block, out); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRotateHoisted measures 8 rotations of one ciphertext sharing one
// decomposition (hoisting), reported per rotation.
func BenchmarkRotateHoisted(b *testing.B) {
	e := getBenchEnv(b, bertBase(128))
	ev := hefloat.NewEvaluator(e.tc.params, e.evk)
	x := e.encrypt(b, e.lay, 1).Cts[0]
	rots := make([]int, 8)
	for i := range rots {
		rots[i] = (i + 1) * e.lay.Block
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := ev.RotateHoistedNew(x, rots); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(rots)), "ns/rotation")
}

// BenchmarkLinear measures X·W + b at n=128 for BERT-base's two shapes.
func BenchmarkLinear(b *testing.B) {
	for _, dims := range [][2]int{{768, 768}, {768, 3072}} {
		b.Run(fmt.Sprintf("%dx%d/n=128", dims[0], dims[1]), func(b *testing.B) {
			e := getBenchEnv(b, bertBase(128))
			r := rand.New(rand.NewPCG(5, 6))
			l := &models.Linear{Weight: randMatrix(r, dims[1], dims[0], 0.03), Bias: make([]float64, dims[1])}
			el, err := NewEncodedLinear(l, e.lay.Block, e.lay.Slots, 1, 0)
			if err != nil {
				b.Fatal(err)
			}
			x := e.encrypt(b, e.lay.WithCols(dims[0]), 3)
			forWorkers(b, func(b *testing.B, workers int) {
				// Diagonals are encoded on the fly: caching them (Precompute)
				// takes 1.44 MB per plaintext, 13 GB for 768x768 at n=128.
				ev := e.evaluator(b, workers)
				baby, giant := el.RotationCount()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if _, err := ev.Linear(bg(), x, el); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(baby), "baby-rotations")
				b.ReportMetric(float64(giant), "giant-rotations")
			})
			// The same product at the lowest level the bridge allows
			// (WithLinearLevel: the input dropped to reserve + 1 = 3).
			b.Run("level=3/workers=2", func(b *testing.B) {
				ev, err := NewEvaluator(e.tc.params, e.evk, nil, 2, WithReserve(2), WithLinearLevel(3))
				if err != nil {
					b.Fatal(err)
				}
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if _, err := ev.Linear(bg(), x, el); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

func benchLayer(b *testing.B, e *benchEnv) (*EncodedLayer, *models.Model) {
	return benchLayerWith(b, e, nil)
}

func benchLayerWith(b *testing.B, e *benchEnv, reg *approx.Registry) (*EncodedLayer, *models.Model) {
	b.Helper()
	m := tinyModel(b, 1, e.shape.Hidden, e.shape.Heads, e.shape.Intermediate)
	el, err := NewEncodedLayer(&m.Server.Layers[0], AttentionConfig{Heads: e.shape.Heads}, e.lay.Block, e.lay.Slots, reg)
	if err != nil {
		b.Fatal(err)
	}
	return el, m
}

// engineRegistry is the registry of the engine benchmarks: the shipped
// sentiment-tiny's, calibrated within the levels the bridge leaves between
// refreshes (the default registry's reciprocal is one level deeper).
func engineRegistry(b *testing.B) *approx.Registry {
	b.Helper()
	return trainedApprox(b).Registry()
}

// engineEvaluator returns an evaluator with the engine's settings: the
// bridge's reserve of 2 levels (every refresh and conversion at level >= 2)
// and reg, so that the level plan is the one a private inference runs.
func (e *benchEnv) engineEvaluator(b *testing.B, workers int, reg *approx.Registry, opts ...EvaluatorOption) *Evaluator {
	b.Helper()
	ev, err := NewEvaluator(e.tc.params, e.evk, reg, workers, append([]EvaluatorOption{WithReserve(bridgeReserve)}, opts...)...)
	if err != nil {
		b.Fatal(err)
	}
	return ev
}

func allValid(n int) []bool {
	v := make([]bool, n)
	for i := range v {
		v[i] = true
	}
	return v
}

// BenchmarkAttentionBlock measures LayerNorm(X + MHA(X)): QKV projections,
// QKᵀ, softmax and AV per head, the output projection, the residual and
// LayerNorm, with the engine's reserve and a registry within its level
// budget; for BERT-base at n = 128 (one head per ciphertext) and for
// sentiment-tiny's width at n = 256 and 512 (blocks 256 and 512: a head
// spans two and four ciphertexts, whose products are regrouped by giant
// step).
func BenchmarkAttentionBlock(b *testing.B) {
	for _, c := range []struct {
		name  string
		shape Shape
	}{
		{"bert-base/n=128", bertBase(128)},
		{"hidden=128/n=256", Shape{Rows: 256, Hidden: 128, Heads: 2, Intermediate: 512, Labels: 2}},
		{"hidden=128/n=512", Shape{Rows: 512, Hidden: 128, Heads: 2, Intermediate: 512, Labels: 2}},
	} {
		b.Run(c.name, func(b *testing.B) {
			e := getBenchEnv(b, c.shape)
			reg := engineRegistry(b)
			el, _ := benchLayerWith(b, e, reg)
			masks, err := e.tc.client.EncryptAttentionMasks(allValid(e.lay.Rows), e.lay)
			if err != nil {
				b.Fatal(err)
			}
			x := e.encrypt(b, e.lay, 7)
			forWorkers(b, func(b *testing.B, workers int) {
				ev := e.engineEvaluator(b, workers, reg)
				br := &benchBridge{b: b, tc: e.tc, masks: masks}
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if _, err := ev.AttentionBlock(bg(), x, el, masks, nil, br, nil); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

// BenchmarkGELU measures the GELU polynomial on n=128 x 3072, every token
// at the high and at the low degree.
func BenchmarkGELU(b *testing.B) {
	benchFunc(b, approx.GELU, 3072)
}

// BenchmarkLayerNorm measures LayerNorm (variance, 1/√x polynomial, scale)
// on n=128 x 768.
func BenchmarkLayerNorm(b *testing.B) {
	e := getBenchEnv(b, bertBase(128))
	el, _ := benchLayer(b, e)
	x := e.encrypt(b, e.lay, 8)
	for _, deg := range []approx.Degree{approx.High, approx.Low} {
		degs := uniformDegrees(e.lay.Rows, deg)
		b.Run(deg.String(), func(b *testing.B) {
			forWorkers(b, func(b *testing.B, workers int) {
				ev := e.evaluator(b, workers)
				br := &benchBridge{b: b, tc: e.tc}
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if _, err := ev.LayerNorm(bg(), x, &el.AttnNorm, degs, br, nil); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

func uniformDegrees(n int, d approx.Degree) DegreeSet {
	degs := make(DegreeSet, n)
	for i := range degs {
		degs[i] = d
	}
	return degs
}

func benchFunc(b *testing.B, fn approx.Func, cols int) {
	e := getBenchEnv(b, bertBase(128))
	x := e.encrypt(b, e.lay.WithCols(cols), 9)
	for _, deg := range []approx.Degree{approx.High, approx.Low} {
		degs := uniformDegrees(e.lay.Rows, deg)
		b.Run(deg.String(), func(b *testing.B) {
			forWorkers(b, func(b *testing.B, workers int) {
				ev := e.evaluator(b, workers)
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if _, err := ev.ApplyFunc(bg(), fn, x, degs); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(ev.FuncDepth(fn, degs, false)), "levels")
			})
		})
	}
}

// BenchmarkLayer measures one whole BERT-base-shaped encoder layer (random
// weights, every token kept at the high degree) at n = 128, 64 and 32
// (blocks 128, 64 and 32: one, two and four heads per ciphertext), with
// the engine's reserve and a registry within its level budget.
func BenchmarkLayer(b *testing.B) {
	for _, n := range []int{128, 64, 32} {
		b.Run(fmt.Sprintf("bert-base/n=%d", n), func(b *testing.B) {
			e := getBenchEnv(b, bertBase(n))
			reg := engineRegistry(b)
			el, _ := benchLayerWith(b, e, reg)
			masks, err := e.tc.client.EncryptAttentionMasks(allValid(n), e.lay)
			if err != nil {
				b.Fatal(err)
			}
			x := e.encrypt(b, e.lay, 10)
			run := func(b *testing.B, ev *Evaluator) {
				br := &benchBridge{b: b, tc: e.tc, masks: masks}
				tr := &Trace{}
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if _, _, err := ev.Layer(bg(), 0, x, el, masks, nil, br, tr); err != nil {
						b.Fatal(err)
					}
				}
				calls, cts := tr.Refreshes()
				b.ReportMetric(float64(calls)/float64(b.N), "refreshes/op")
				b.ReportMetric(float64(cts)/float64(b.N), "refreshed-cts/op")
			}
			forWorkers(b, func(b *testing.B, workers int) { run(b, e.engineEvaluator(b, workers, reg)) })
			// Every matmul at level 3 (WithLinearLevel), its outputs
			// refreshed where the next stage needs more.
			b.Run("linear-level=3/workers=2", func(b *testing.B) {
				run(b, e.engineEvaluator(b, 2, reg, WithLinearLevel(3)))
			})
		})
	}
}
