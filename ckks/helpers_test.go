package ckks

import (
	"context"
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

// evaluator returns a server evaluator with the relinearization key.
func (tc *testContext) evaluator(t testing.TB, workers int) *Evaluator {
	t.Helper()
	ev, err := NewEvaluator(tc.params, rlwe.NewMemEvaluationKeySet(tc.rlk), nil, workers)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func randMatrix(r *rand.Rand, rows, cols int, sigma float64) models.Matrix {
	m := models.NewMatrix(rows, cols)
	for i := range m.Data {
		m.Data[i] = sigma * r.NormFloat64()
	}
	return m
}

func bg() context.Context { return context.Background() }
