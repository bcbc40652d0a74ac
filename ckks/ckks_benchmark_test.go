package ckks

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/tuneinsight/lattigo/v5/he/hefloat"

	"github.com/cipherprune/cipherprune/models/approx"
)

// The benchmarks run on the secure default preset at BERT-base's widths
// (n = 128 tokens, the FFN's 3072 columns):
//
//	go test ./ckks -run '^$' -bench . -benchtime 1x
//
// Each benchmark runs with 1 and 2 workers so the speed-up reads off one
// run.

// benchPreset is the preset every benchmark uses.
const benchPreset = Interactive14

// benchLayout is the layout of an n = 128 x cols matrix at the preset:
// one column per block of 128 slots.
func benchLayout(tc *testContext, cols int) Layout {
	return Layout{Rows: 128, Cols: cols, Block: 128, Slots: tc.params.MaxSlots()}
}

func encryptRandom(b *testing.B, tc *testContext, lay Layout, seed uint64) *CtMatrix {
	b.Helper()
	r := rand.New(rand.NewPCG(seed, 1))
	x, err := tc.client.EncryptMatrix(randMatrix(r, lay.Rows, lay.Cols, 1), lay, tc.params.MaxLevel())
	if err != nil {
		b.Fatal(err)
	}
	return x
}

func forWorkers(b *testing.B, f func(b *testing.B, workers int)) {
	for _, w := range []int{1, 2} {
		b.Run(fmt.Sprintf("workers=%d", w), func(b *testing.B) { f(b, w) })
	}
}

// BenchmarkMulRelin measures one ciphertext product with relinearization
// and rescale at the top level.
func BenchmarkMulRelin(b *testing.B) {
	tc := newTestContext(b, benchPreset)
	ev := hefloat.NewEvaluator(tc.params, tc.evaluator(b, 1).workers[0].eval.EvaluationKeySet)
	lay := benchLayout(tc, 1)
	x := encryptRandom(b, tc, lay, 1).Cts[0]
	y := encryptRandom(b, tc, lay, 2).Cts[0]
	out := hefloat.NewCiphertext(tc.params, 1, x.Level())
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

// BenchmarkGELU measures the GELU polynomial on n=128 x 3072, every token
// at the high and at the low degree.
func BenchmarkGELU(b *testing.B) {
	tc := newTestContext(b, benchPreset)
	x := encryptRandom(b, tc, benchLayout(tc, 3072), 9)
	for _, deg := range []approx.Degree{approx.High, approx.Low} {
		degs := make(DegreeSet, x.Layout.Rows)
		for i := range degs {
			degs[i] = deg
		}
		b.Run(deg.String(), func(b *testing.B) {
			forWorkers(b, func(b *testing.B, workers int) {
				ev := tc.evaluator(b, workers)
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if _, err := ev.ApplyFunc(bg(), approx.GELU, x, degs); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(ev.FuncDepth(approx.GELU, degs, false)), "levels")
			})
		})
	}
}
