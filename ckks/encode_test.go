package ckks

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"
	"github.com/tuneinsight/lattigo/v5/he/hefloat"
)

// TestEncoderMatchesLattigo checks that the allocation-free encoder writes
// the same plaintext, word for word, as hefloat.Encoder.Encode: dense,
// sparse, negative, tiny and huge values (the big-integer path), at every
// level, at the level's prime and at the default scale.
func TestEncoderMatchesLattigo(t *testing.T) {
	tc := newTestContext(t, InsecureTest11)
	params := tc.params
	ref := hefloat.NewEncoder(params)
	fast := newEncoder(params)
	r := rand.New(rand.NewPCG(3, 4))
	slots := params.MaxSlots()
	vectors := map[string][]float64{
		"zeros": make([]float64, slots),
		"short": {0.5, -0.25, 3},
	}
	dense, sparse, wide := make([]float64, slots), make([]float64, slots), make([]float64, slots)
	for i := range dense {
		dense[i] = r.NormFloat64()
		if i%5 == 0 {
			sparse[i] = -r.Float64() * 1e-9
		}
		wide[i] = math.Ldexp(r.Float64()-0.5, r.IntN(60)) // some beyond 2^64 after scaling
	}
	vectors["dense"], vectors["sparse"], vectors["wide"] = dense, sparse, wide
	for name, v := range vectors {
		for level := 0; level <= params.MaxLevel(); level++ {
			for _, scale := range []rlwe.Scale{params.DefaultScale(), rlwe.NewScale(params.Q()[level])} {
				t.Run(fmt.Sprintf("%s/level=%d/scale=2^%.1f", name, level, math.Log2(scale.Float64())), func(t *testing.T) {
					want := hefloat.NewPlaintext(params, level)
					want.Scale = scale
					if err := ref.Encode(v, want); err != nil {
						t.Fatal(err)
					}
					got := hefloat.NewPlaintext(params, level)
					got.Scale = scale
					// A used buffer: the encoder must overwrite every word.
					for j := range got.Value.Coeffs {
						for k := range got.Value.Coeffs[j] {
							got.Value.Coeffs[j][k] = r.Uint64()
						}
					}
					if err := fast.Encode(v, got); err != nil {
						t.Fatal(err)
					}
					for j := range want.Value.Coeffs {
						if !slices.Equal(got.Value.Coeffs[j], want.Value.Coeffs[j]) {
							t.Fatalf("limb %d differs from Lattigo's encoding", j)
						}
					}
					if got.MetaData.IsNTT != want.MetaData.IsNTT || got.MetaData.IsMontgomery != want.MetaData.IsMontgomery {
						t.Fatal("metadata differs")
					}
				})
			}
		}
	}
	if err := fast.Encode(make([]float64, slots+1), hefloat.NewPlaintext(params, 0)); err == nil {
		t.Fatal("too many values accepted")
	}
}

// BenchmarkEncode compares Lattigo's encoder with the allocation-free one on
// a dense vector at the top level of the default preset.
func BenchmarkEncode(b *testing.B) {
	tc := newTestContext(b, benchPreset)
	params := tc.params
	v := make([]float64, params.MaxSlots())
	for i := range v {
		v[i] = float64(i%7) * 0.01
	}
	pt := hefloat.NewPlaintext(params, params.MaxLevel())
	pt.Scale = rlwe.NewScale(params.Q()[params.MaxLevel()])
	b.Run("lattigo", func(b *testing.B) {
		enc := hefloat.NewEncoder(params)
		for i := 0; i < b.N; i++ {
			if err := enc.Encode(v, pt); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ckks", func(b *testing.B) {
		enc := newEncoder(params)
		for i := 0; i < b.N; i++ {
			if err := enc.Encode(v, pt); err != nil {
				b.Fatal(err)
			}
		}
	})
}
