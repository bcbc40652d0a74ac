package ckks

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"

	"github.com/cipherprune/cipherprune/cuda"
	"github.com/cipherprune/cipherprune/kernels"
	"github.com/cipherprune/cipherprune/models"
)

// TestBackendMatchesLattigo runs the key switches and rescales through
// kernels' CPU reference (WithBackend) and compares with Lattigo's path: a
// rotation, a product and a rescale give the same ciphertexts word for
// word, and a whole encoder layer decrypts to the same values up to the
// noise (hoisted rotations, run separately on the backend, have other
// noise).
//
// With -tags cuda on a GPU host the same runs on the CUDA backend too.
func TestBackendMatchesLattigo(t *testing.T) {
	tc := newTestContext(t, InsecureTest11)
	kp, err := kernels.NewParams(tc.params.Parameters.Parameters)
	if err != nil {
		t.Fatal(err)
	}
	cpu, err := kernels.NewCPU(kp, kernels.CPUOptions{})
	if err != nil {
		t.Fatal(err)
	}
	backends := []kernels.Backend{cpu}
	if gpu, err := cuda.Open(kp); err == nil {
		backends = append(backends, gpu)
	} else {
		t.Logf("no GPU backend: %v", err)
	}
	for _, be := range backends {
		t.Run(be.Name(), func(t *testing.T) { testBackend(t, tc, be) })
	}
}

func testBackend(t *testing.T, tc *testContext, be kernels.Backend) {
	m := tinyModel(t, 1, 64, 2, 128)
	cfg := m.Config()
	ids := []int{2, 5, 8, 7, 9, 10, 6, 3}
	n := len(ids)
	slots := tc.params.MaxSlots()
	rots, err := Rotations(ShapeOf(cfg, n), slots)
	if err != nil {
		t.Fatal(err)
	}
	lattigo := tc.evaluator(t, tc.galEls(rots), 2)
	dev, err := NewEvaluator(tc.params, lattigo.workers[0].eval.EvaluationKeySet, nil, 2, WithBackend(be))
	if err != nil {
		t.Fatal(err)
	}
	if lattigo.Backend() != "lattigo" || dev.Backend() != be.Name() {
		t.Errorf("backends %q and %q", lattigo.Backend(), dev.Backend())
	}

	// Single operations: the same words.
	r := rand.New(rand.NewPCG(9, 9))
	lay, err := NewLayout(slots, n, cfg.HiddenSize(), 16)
	if err != nil {
		t.Fatal(err)
	}
	x, err := tc.client.EncryptMatrix(randMatrix(r, n, cfg.HiddenSize(), 1), lay, tc.params.MaxLevel())
	if err != nil {
		t.Fatal(err)
	}
	x2, err := tc.client.EncryptMatrix(randMatrix(r, n, cfg.HiddenSize(), 1), lay, tc.params.MaxLevel())
	if err != nil {
		t.Fatal(err)
	}
	a, b := x.Cts[0], x2.Cts[0]
	wl, wd := lattigo.workers[0], dev.workers[0]
	same := func(what string, p, q *rlwe.Ciphertext) {
		t.Helper()
		if p.Level() != q.Level() || !p.Scale.Equal(q.Scale) {
			t.Fatalf("%s: level/scale %d %v vs %d %v", what, p.Level(), p.Scale.Value.String(), q.Level(), q.Scale.Value.String())
		}
		for i := range p.Value {
			for j := range p.Value[i].Coeffs {
				if !slices.Equal(p.Value[i].Coeffs[j], q.Value[i].Coeffs[j]) {
					t.Fatalf("%s: polynomial %d limb %d differs", what, i, j)
				}
			}
		}
	}
	rl, err := wl.rotateNew(a, lay.Block)
	if err != nil {
		t.Fatal(err)
	}
	rd, err := wd.rotateNew(a, lay.Block)
	if err != nil {
		t.Fatal(err)
	}
	same("rotate", rl, rd)
	pl, err := wl.mulRelinNew(a, b)
	if err != nil {
		t.Fatal(err)
	}
	pd, err := wd.mulRelinNew(a, b)
	if err != nil {
		t.Fatal(err)
	}
	same("product and rescale", pl, pd)

	// A whole layer.
	x0, err := m.Client.Embed(ids, nil)
	if err != nil {
		t.Fatal(err)
	}
	lay, err = LayoutFor(slots, n, cfg.HiddenSize(), cfg.HeadDim(), cfg.NumHeads())
	if err != nil {
		t.Fatal(err)
	}
	block := lay.Block
	masks, err := tc.client.EncryptAttentionMasks(slices.Repeat([]bool{true}, n), lay)
	if err != nil {
		t.Fatal(err)
	}
	xin, err := tc.client.EncryptMatrix(x0, lay, tc.params.MaxLevel())
	if err != nil {
		t.Fatal(err)
	}
	el, err := NewEncodedLayer(&m.Server.Layers[0], AttentionConfig{Heads: cfg.NumHeads()}, block, slots, nil)
	if err != nil {
		t.Fatal(err)
	}
	var outs []models.Matrix
	for _, ev := range []*Evaluator{lattigo, dev} {
		y, _, err := ev.Layer(bg(), 0, xin, el, masks, nil, &testBridge{tc: tc, masks: masks}, nil)
		if err != nil {
			t.Fatal(err)
		}
		got, err := tc.client.DecryptMatrix(y)
		if err != nil {
			t.Fatal(err)
		}
		outs = append(outs, got)
	}
	// Lattigo's path is checked against the plaintext forward elsewhere
	// (TestEncryptedModel); the two runs differ by their noise, which the
	// layer's LayerNorms amplify (about 1e-4 here).
	if d := maxAbsDiff(outs[0], outs[1]); d > 1e-3 {
		t.Errorf("layer on the backend differs from Lattigo's by %g > 1e-3", d)
	} else {
		t.Logf("layer: max difference %.2e between Lattigo and %s", d, be.Name())
	}
}
