package ckks

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"
	"github.com/tuneinsight/lattigo/v5/he/hefloat"

	"github.com/cipherprune/cipherprune/models"
)

// testContext holds keys and both parties' tools for one insecure preset.
type testContext struct {
	preset Preset
	params hefloat.Parameters
	sk     *rlwe.SecretKey
	client *Client
	kgen   *rlwe.KeyGenerator
	rlk    *rlwe.RelinearizationKey
}

func newTestContext(t testing.TB, name string) *testContext {
	t.Helper()
	p, err := PresetByName(name, true)
	if err != nil {
		t.Fatal(err)
	}
	params, err := p.Params()
	if err != nil {
		t.Fatal(err)
	}
	kgen := rlwe.NewKeyGenerator(params)
	sk := kgen.GenSecretKeyNew()
	client, err := NewClient(params, sk, sk)
	if err != nil {
		t.Fatal(err)
	}
	return &testContext{preset: p, params: params, sk: sk, client: client, kgen: kgen, rlk: kgen.GenRelinearizationKeyNew(sk)}
}

// evaluator returns a server evaluator with Galois keys for galEls.
func (tc *testContext) evaluator(t testing.TB, galEls []uint64, workers int, opts ...EvaluatorOption) *Evaluator {
	t.Helper()
	gks := tc.kgen.GenGaloisKeysNew(galEls, tc.sk)
	ev, err := NewEvaluator(tc.params, rlwe.NewMemEvaluationKeySet(tc.rlk, gks...), nil, workers, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func (tc *testContext) galEls(rots []int) []uint64 {
	return tc.params.GaloisElements(rots)
}

// refresh is the test stand-in for the bridge: decrypt and re-encrypt at the
// top level with the secret key. Never exported.
func (tc *testContext) refresh(cts []*rlwe.Ciphertext) ([]*rlwe.Ciphertext, error) {
	out := make([]*rlwe.Ciphertext, len(cts))
	for i, ct := range cts {
		v, err := tc.client.DecryptVector(ct)
		if err != nil {
			return nil, err
		}
		if out[i], err = tc.client.EncryptVector(v, tc.params.MaxLevel()); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func randMatrix(r *rand.Rand, rows, cols int, sigma float64) models.Matrix {
	m := models.NewMatrix(rows, cols)
	for i := range m.Data {
		m.Data[i] = sigma * r.NormFloat64()
	}
	return m
}

func maxAbsDiff(a, b models.Matrix) float64 {
	var d float64
	for i := range a.Data {
		d = math.Max(d, math.Abs(a.Data[i]-b.Data[i]))
	}
	return d
}

func bg() context.Context { return context.Background() }
