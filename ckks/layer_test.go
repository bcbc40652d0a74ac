package ckks

import (
	"context"
	"fmt"
	"math"
	"testing"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"

	"github.com/cipherprune/cipherprune/models"
	"github.com/cipherprune/cipherprune/models/approx"
)

// approxNL is the plaintext approximate forward's nonlinearities, built
// here from the registry (models does not expose one yet): every function
// is the registry's recipe of the token's degree, softmax is exp of the
// logits minus the public shift, masked, then the reciprocal of the row sum.
type approxNL struct {
	reg   *approx.Registry
	shift float64
}

func toApprox(d models.Degree) approx.Degree {
	if d == models.DegreeLow {
		return approx.Low
	}
	return approx.High
}

func (a approxNL) SoftmaxRow(dst, scores []float64, valid []bool, deg models.Degree) {
	d := toApprox(deg)
	models.MaskedSoftmax(dst, scores, valid,
		func(x float64) float64 { return a.reg.Eval(approx.Exp, d, x-a.shift) },
		func(x float64) float64 { return a.reg.Eval(approx.Reciprocal, d, x) })
}
func (a approxNL) GELU(x float64, deg models.Degree) float64 {
	return a.reg.Eval(approx.GELU, toApprox(deg), x)
}
func (a approxNL) InvSqrt(x float64, deg models.Degree) float64 {
	return a.reg.Eval(approx.InvSqrt, toApprox(deg), x)
}
func (a approxNL) Tanh(x float64, _ models.Degree) float64 {
	return a.reg.Eval(approx.Tanh, approx.High, x)
}

// testBridge refreshes with the secret key and keeps every token.
type testBridge struct {
	tc    *testContext
	masks *AttentionMasks
}

func (b *testBridge) Refresh(_ context.Context, cts []*rlwe.Ciphertext) ([]*rlwe.Ciphertext, error) {
	return b.tc.refresh(cts)
}

func (b *testBridge) AfterAttention(_ context.Context, out *AttentionOutput) (*BridgeResult, error) {
	cts, err := b.tc.refresh(out.Hidden.Cts)
	if err != nil {
		return nil, err
	}
	return &BridgeResult{Hidden: &CtMatrix{Layout: out.Hidden.Layout, Cts: cts}, Masks: b.masks}, nil
}

func tinyModel(t testing.TB, layers, hidden, heads, ffn int) *models.Model {
	t.Helper()
	vocab := []string{"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "good", "bad", "movie", "the", "was", "very", "not"}
	tok, err := models.NewTokenizer(vocab)
	if err != nil {
		t.Fatal(err)
	}
	lit := models.DefaultConfigLiteral()
	lit.ModelType = "bert"
	lit.VocabSize = len(vocab)
	lit.HiddenSize = hidden
	lit.NumHiddenLayers = layers
	lit.NumAttentionHeads = heads
	lit.IntermediateSize = ffn
	lit.MaxPositionEmbeddings = 64
	cfg, err := models.NewConfig(lit)
	if err != nil {
		t.Fatal(err)
	}
	m, err := models.NewRandomModel(cfg, tok, 7)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestEncryptedModel runs a random sentiment-tiny-shaped model (2 layers,
// hidden 128, 2 heads, FFN 512) under encryption on InsecureTest11 with no
// pruning, and compares the logits with the plaintext approximate forward:
// 10 rows in blocks of 16 (one head per ciphertext) and 6 rows in blocks of
// 8 (both heads in each ciphertext, stacked).
func TestEncryptedModel(t *testing.T) {
	m := tinyModel(t, 2, 128, 2, 512)
	tc := newTestContext(t, InsecureTest11)
	for _, in := range []struct {
		name       string
		ids, mask  []int
		headsPerCt int
	}{
		{"one head per ciphertext", []int{2, 8, 7, 9, 10, 5, 3, 0, 0, 0}, []int{1, 1, 1, 1, 1, 1, 1, 0, 0, 0}, 1},
		{"stacked heads", []int{2, 8, 7, 11, 3, 0}, []int{1, 1, 1, 1, 1, 0}, 2},
	} {
		t.Run(in.name, func(t *testing.T) {
			testEncryptedModel(t, tc, m, in.ids, in.mask, in.headsPerCt)
		})
	}
}

func testEncryptedModel(t *testing.T, tc *testContext, m *models.Model, ids, mask []int, headsPerCt int) {
	cfg := m.Config()
	x0, err := m.Client.Embed(ids, nil)
	if err != nil {
		t.Fatal(err)
	}
	const shift = 0
	reg := approx.Default()
	want, err := m.Server.Forward(x0, mask, &models.ForwardOptions{Nonlinear: approxNL{reg: reg, shift: shift}})
	if err != nil {
		t.Fatal(err)
	}
	exact, _ := m.Server.Forward(x0, mask, nil)
	slots := tc.params.MaxSlots()
	shape := ShapeOf(cfg, len(ids))
	rots, err := Rotations(shape, slots)
	if err != nil {
		t.Fatal(err)
	}
	ev := tc.evaluator(t, tc.galEls(rots), 2)
	lay, err := LayoutFor(slots, len(ids), cfg.HiddenSize(), cfg.HeadDim(), cfg.NumHeads())
	if err != nil {
		t.Fatal(err)
	}
	block := lay.Block
	if hp := lay.HeadsPerCt(); hp != headsPerCt {
		t.Fatalf("layout %+v holds %d heads per ciphertext, want %d", lay, hp, headsPerCt)
	}
	valid := make([]bool, len(ids))
	for i, v := range mask {
		valid[i] = v == 1
	}
	masks, err := tc.client.EncryptAttentionMasks(valid, lay)
	if err != nil {
		t.Fatal(err)
	}
	x, err := tc.client.EncryptMatrix(x0, lay, tc.params.MaxLevel())
	if err != nil {
		t.Fatal(err)
	}
	br := &testBridge{tc: tc, masks: masks}
	tr := &Trace{}
	attCfg := AttentionConfig{Heads: cfg.NumHeads(), ExpShift: shift}
	for l := range m.Server.Layers {
		el, err := NewEncodedLayer(&m.Server.Layers[l], attCfg, block, slots, reg)
		if err != nil {
			t.Fatal(err)
		}
		var res *BridgeResult
		if x, res, err = ev.Layer(bg(), l, x, el, masks, nil, br, tr); err != nil {
			t.Fatal(err)
		}
		masks = res.Masks
	}
	eh, err := NewEncodedHead(m.Server, block, slots, reg)
	if err != nil {
		t.Fatal(err)
	}
	lct, err := ev.Head(bg(), x, eh, br, tr)
	if err != nil {
		t.Fatal(err)
	}
	got, err := tc.client.DecryptLogits(lct, lay, cfg.NumLabels())
	if err != nil {
		t.Fatal(err)
	}
	calls, cts := tr.Refreshes()
	t.Logf("logits: encrypted %v, approximate %v, exact %v; %d refreshes (%d ciphertexts) + 1 bridge per layer", got, want, exact, calls, cts)
	for _, s := range tr.Stages {
		t.Logf("refresh %-18s %2d ciphertexts from level %d to %d", s.Stage, s.Cts, s.Level, s.Target)
	}
	for k := range want {
		if d := math.Abs(got[k] - want[k]); d > 1e-2 {
			t.Errorf("logit %d: encrypted %g, approximate %g, error %g > 1e-2", k, got[k], want[k], d)
		}
	}
}

// TestAttentionBlock checks the attention block's hidden output and the
// importance scores against the plaintext approximate attention block.
func TestAttentionBlock(t *testing.T) {
	m := tinyModel(t, 1, 128, 2, 512)
	cfg := m.Config()
	ids := []int{2, 5, 7, 9, 6, 3, 0}
	valid := []bool{true, true, true, true, true, true, false}
	x0, err := m.Client.Embed(ids, nil)
	if err != nil {
		t.Fatal(err)
	}
	reg := approx.Default()
	nl := approxNL{reg: reg}
	wantH, probs, err := m.Server.AttentionBlock(0, x0, valid, nil, nl)
	if err != nil {
		t.Fatal(err)
	}
	la := &models.LayerAttention{Tokens: []int{0, 1, 2, 3, 4, 5, 6}, Valid: valid, Probs: probs}
	wantScores := la.Importance()

	tc := newTestContext(t, InsecureTest11)
	slots := tc.params.MaxSlots()
	minBlock, _ := BlockFor(slots, len(ids), cfg.HeadDim(), cfg.NumHeads())
	if hp := (Layout{Rows: len(ids), Cols: cfg.HiddenSize(), Block: minBlock, Slots: slots}).WithHeadDim(cfg.HeadDim()).HeadsPerCt(); hp != 2 {
		t.Fatalf("the smallest block %d holds %d heads per ciphertext, want 2", minBlock, hp)
	}
	// The rows in the smallest block (two heads per ciphertext, stacked),
	// the smallest with one head per ciphertext, and a block 8x larger,
	// where the 13 needed shifts of 64 fill one dense score ciphertext.
	for _, block := range []int{minBlock, 2 * minBlock, 8 * minBlock} {
		t.Run(fmt.Sprintf("block=%d", block), func(t *testing.T) {
			testAttentionBlock(t, tc, m, ids, valid, x0, block, wantH, wantScores, reg)
		})
	}
}

func testAttentionBlock(t *testing.T, tc *testContext, m *models.Model, ids []int, valid []bool, x0 models.Matrix, block int, wantH models.Matrix, wantScores []float64, reg *approx.Registry) {
	cfg := m.Config()
	slots := tc.params.MaxSlots()
	rots, err := Rotations(ShapeOf(cfg, block), slots)
	if err != nil {
		t.Fatal(err)
	}
	ev := tc.evaluator(t, tc.galEls(rots), 2)
	lay, err := NewLayout(slots, len(ids), cfg.HiddenSize(), block)
	if err != nil {
		t.Fatal(err)
	}
	lay = lay.WithHeadDim(cfg.HeadDim())
	if c := scoreLayout(lay).ColsPerCt(); numDense(lay) != (2*len(ids)-1+c-1)/c {
		t.Errorf("%d dense score ciphertexts, want %d", numDense(lay), (2*len(ids)-1+c-1)/c)
	}
	masks, err := tc.client.EncryptAttentionMasks(valid, lay)
	if err != nil {
		t.Fatal(err)
	}
	x, err := tc.client.EncryptMatrix(x0, lay, tc.params.MaxLevel())
	if err != nil {
		t.Fatal(err)
	}
	el, err := NewEncodedLayer(&m.Server.Layers[0], AttentionConfig{Heads: cfg.NumHeads()}, block, slots, reg)
	if err != nil {
		t.Fatal(err)
	}
	out, err := ev.AttentionBlock(bg(), x, el, masks, nil, &testBridge{tc: tc}, nil)
	if err != nil {
		t.Fatal(err)
	}
	gotH, err := tc.client.DecryptMatrix(out.Hidden)
	if err != nil {
		t.Fatal(err)
	}
	if d := maxAbsDiff(gotH, wantH); d > 2e-3 {
		t.Errorf("hidden: max error %g > 2e-3", d)
	}
	sv, err := tc.client.DecryptVector(out.Scores)
	if err != nil {
		t.Fatal(err)
	}
	for j, w := range wantScores {
		if d := math.Abs(sv[j] - w); d > 1e-4 {
			t.Errorf("importance of token %d: %g, want %g", j, sv[j], w)
		}
	}
}
