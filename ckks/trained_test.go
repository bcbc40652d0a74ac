package ckks

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"

	"github.com/cipherprune/cipherprune/models"
	"github.com/cipherprune/cipherprune/models/approx"
	"github.com/cipherprune/cipherprune/prune"
)

// trainedModelDir is the shipped sentiment model (models/trained).
var trainedModelDir = filepath.Join("..", "models", "trained", "sentiment-tiny")

// goldenInputs reads the token ids and attention masks of the model's
// golden file (the training code's first test inputs), so the test needs no
// data set.
func goldenInputs(t *testing.T, dir string, count int) [][]int {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "golden.json"))
	if err != nil {
		t.Fatalf("trained model required (train it with the training code): %v", err)
	}
	var g struct {
		Examples []struct {
			InputIDs      []int `json:"input_ids"`
			AttentionMask []int `json:"attention_mask"`
		} `json:"examples"`
	}
	if err := json.Unmarshal(data, &g); err != nil {
		t.Fatal(err)
	}
	if len(g.Examples) < count {
		t.Fatalf("golden file has %d examples, want %d", len(g.Examples), count)
	}
	out := make([][]int, count)
	for i, ex := range g.Examples[:count] {
		// Padding receives no attention and is never pruned into the kept
		// set's results, so the encrypted run uses the real tokens only; the
		// plaintext reference sees the same rows.
		n := 0
		for _, m := range ex.AttentionMask {
			n += m
		}
		out[i] = ex.InputIDs[:n]
	}
	return out
}

// fixedSchedule is a given keep mask and degree choice per layer, in the
// terms of the rows alive at that layer, applied by the encrypted run's
// test bridge.
type fixedSchedule struct {
	decide func(layer, rows int) models.Decision
}

// learnedWithDegrees replays the model's learned thresholds (prune.json,
// the schedule the engine runs) for the keep decisions and gives every
// other kept row but CLS the low degree, so both degrees are exercised. It
// records each layer's decision, so the encrypted run's bridge applies
// exactly the decisions the plaintext run made.
type learnedWithDegrees struct {
	sched     *prune.Schedule
	decisions []models.Decision
}

func (s *learnedWithDegrees) AfterAttention(att *models.LayerAttention) (models.Decision, error) {
	d, err := s.sched.AfterAttention(att)
	if err != nil {
		return d, err
	}
	rows := len(att.Tokens)
	if d.Keep == nil {
		d.Keep = make([]bool, rows)
		for i := range d.Keep {
			d.Keep[i] = true
		}
	}
	d.Degrees = make([]models.Degree, rows)
	for i, r := 1, 0; i < rows; i++ {
		if d.Keep[i] {
			if r%2 == 1 {
				d.Degrees[i] = models.DegreeLow
			}
			r++
		}
	}
	s.decisions = append(s.decisions, d)
	return d, nil
}

// replay returns the recorded decision of a layer.
func (s *learnedWithDegrees) replay(t *testing.T) func(layer, rows int) models.Decision {
	return func(layer, rows int) models.Decision {
		if layer >= len(s.decisions) || len(s.decisions[layer].Keep) != rows {
			t.Fatalf("layer %d: no recorded decision for %d rows", layer, rows)
		}
		return s.decisions[layer]
	}
}

// pruneBridge is the test bridge with pruning: after each attention block
// it decrypts with the secret key, keeps the rows of the schedule's
// decision, re-encrypts them at the top level in the same block size, and
// sends fresh attention masks. It stands in for mpcbridge's two-party
// pruning step. Never exported.
type pruneBridge struct {
	tc    *testContext
	sched fixedSchedule
}

func (b *pruneBridge) Refresh(_ context.Context, cts []*rlwe.Ciphertext) ([]*rlwe.Ciphertext, error) {
	return b.tc.refresh(cts)
}

func (b *pruneBridge) AfterAttention(_ context.Context, out *AttentionOutput) (*BridgeResult, error) {
	h, err := b.tc.client.DecryptMatrix(out.Hidden)
	if err != nil {
		return nil, err
	}
	d := b.sched.decide(out.Layer, h.Rows)
	var kept []int
	for i, k := range d.Keep {
		if k {
			kept = append(kept, i)
		}
	}
	x := models.NewMatrix(len(kept), h.Cols)
	degs := make(DegreeSet, len(kept))
	for r, i := range kept {
		copy(x.Data[r*h.Cols:(r+1)*h.Cols], h.Data[i*h.Cols:(i+1)*h.Cols])
		if d.Degrees != nil && d.Degrees[i] == models.DegreeLow {
			degs[r] = approx.Low
		}
	}
	lay := out.Hidden.Layout.WithRows(len(kept))
	ct, err := b.tc.client.EncryptMatrix(x, lay, b.tc.params.MaxLevel())
	if err != nil {
		return nil, err
	}
	masks, err := b.tc.client.EncryptAttentionMasks(allValid(len(kept)), lay)
	if err != nil {
		return nil, err
	}
	return &BridgeResult{Hidden: ct, Degrees: degs, Masks: masks}, nil
}

// bridgeReserve is the number of bottom levels the two-party refresh
// needs (mpcbridge/share masks at level >= 2 on the interactive presets).
const bridgeReserve = 2

// reserveBridge fails any refresh or bridge call that hands it a
// ciphertext below bridgeReserve, as the two-party bridge would.
type reserveBridge struct{ Bridge }

func checkLevels(cts []*rlwe.Ciphertext) error {
	for i, ct := range cts {
		if ct.Level() < bridgeReserve {
			return fmt.Errorf("ciphertext %d reached the bridge at level %d < %d", i, ct.Level(), bridgeReserve)
		}
	}
	return nil
}

func (b reserveBridge) Refresh(ctx context.Context, cts []*rlwe.Ciphertext) ([]*rlwe.Ciphertext, error) {
	if err := checkLevels(cts); err != nil {
		return nil, err
	}
	return b.Bridge.Refresh(ctx, cts)
}

func (b reserveBridge) AfterAttention(ctx context.Context, out *AttentionOutput) (*BridgeResult, error) {
	if err := checkLevels(append([]*rlwe.Ciphertext{out.Scores}, out.Hidden.Cts...)); err != nil {
		return nil, err
	}
	return b.Bridge.AfterAttention(ctx, out)
}

// TestTrainedModelEncrypted runs the shipped sentiment-tiny encoder under
// encryption (InsecureTest11, every layer, pooler and classifier) on 16
// golden test inputs, without pruning and with given keep masks and degree
// choices between layers (the decisions of the model's learned thresholds in
// the plaintext run, with every other kept row at the low degree), and
// compares the logits with the plaintext approximate forward of the same
// decisions: within 1e-2, same argmax. Every refresh and bridge call must
// see level >= 2, as the two-party bridge requires.
// trainedApprox returns the shipped model's approximate forward (its
// registry is calibrated within the bridge's level budget).
func trainedApprox(tb testing.TB) *models.Approximate {
	tb.Helper()
	lit, err := models.LoadApproxSettings(trainedModelDir)
	if err != nil {
		tb.Fatal(err)
	}
	ap, err := models.NewApproximate(lit)
	if err != nil {
		tb.Fatal(err)
	}
	return ap
}

func TestTrainedModelEncrypted(t *testing.T) {
	if testing.Short() {
		t.Skip("encrypts 32 whole-model runs")
	}
	m, err := models.Load(trainedModelDir)
	if err != nil {
		t.Fatalf("trained model required: %v", err)
	}
	ap := trainedApprox(t)
	reg := ap.Registry()
	cfg := m.Config()
	inputs := goldenInputs(t, trainedModelDir, 16)
	tc := newTestContext(t, InsecureTest11)
	slots := tc.params.MaxSlots()
	// One key set for the longest input's shape covers every shorter one
	// with the same block size; inputs are grouped by block.
	type keyed struct {
		ev    *Evaluator
		block int
		lays  []*EncodedLayer
		head  *EncodedHead
	}
	evs := map[int]*keyed{}
	evFor := func(n int) *keyed {
		block, err := BlockFor(slots, n, cfg.HeadDim(), cfg.NumHeads())
		if err != nil {
			t.Fatal(err)
		}
		if k, ok := evs[block]; ok {
			return k
		}
		rots, err := Rotations(ShapeOf(cfg, block), slots)
		if err != nil {
			t.Fatal(err)
		}
		ev, err := NewEvaluator(tc.params, rlwe.NewMemEvaluationKeySet(tc.rlk, tc.kgen.GenGaloisKeysNew(tc.galEls(rots), tc.sk)...),
			reg, 2, WithReserve(bridgeReserve))
		if err != nil {
			t.Fatal(err)
		}
		k := &keyed{ev: ev, block: block}
		attCfg := AttentionConfig{Heads: cfg.NumHeads(), ExpShift: ap.SoftmaxShift()}
		for l := range m.Server.Layers {
			el, err := NewEncodedLayer(&m.Server.Layers[l], attCfg, block, slots, reg)
			if err != nil {
				t.Fatal(err)
			}
			k.lays = append(k.lays, el)
		}
		if k.head, err = NewEncodedHead(m.Server, block, slots, reg); err != nil {
			t.Fatal(err)
		}
		evs[block] = k
		return k
	}
	th, err := prune.LoadThresholds(trainedModelDir, cfg.NumLayers())
	if err != nil {
		t.Fatal(err)
	}
	for _, pruned := range []bool{false, true} {
		name := "no-pruning"
		if pruned {
			name = "learned-thresholds+low-degree"
		}
		t.Run(name, func(t *testing.T) {
			var worst float64
			for i, ids := range inputs {
				mask := make([]int, len(ids))
				for j := range mask {
					mask[j] = 1
				}
				x0, err := m.Client.Embed(ids, nil)
				if err != nil {
					t.Fatal(err)
				}
				nl := ap.Clone()
				opts := &models.ForwardOptions{Nonlinear: nl}
				var rec *learnedWithDegrees
				if pruned {
					rec = &learnedWithDegrees{sched: prune.NewSchedule(th, prune.Options{})}
					opts.Schedule = rec
				}
				want, err := m.Server.Forward(x0, mask, opts)
				if err != nil {
					t.Fatal(err)
				}
				// The encrypted path cannot clamp: the plaintext run must have
				// stayed inside every interval for the comparison to mean
				// anything (a failure here is a calibration gap, not HE error).
				for fn, r := range nl.Ranges() {
					if r.Below > 0 || r.Above > 0 {
						t.Fatalf("input %d: %s inputs outside the calibrated interval (seen [%g, %g])", i, fn, r.Min, r.Max)
					}
				}
				k := evFor(len(ids))
				lay, err := NewLayout(slots, len(ids), cfg.HiddenSize(), k.block)
				if err != nil {
					t.Fatal(err)
				}
				lay = lay.WithHeadDim(cfg.HeadDim())
				masks, err := tc.client.EncryptAttentionMasks(allValid(len(ids)), lay)
				if err != nil {
					t.Fatal(err)
				}
				x, err := tc.client.EncryptMatrix(x0, lay, tc.params.MaxLevel())
				if err != nil {
					t.Fatal(err)
				}
				var br Bridge = reserveBridge{&testBridge{tc: tc, masks: masks}}
				if pruned {
					br = reserveBridge{&pruneBridge{tc: tc, sched: fixedSchedule{decide: rec.replay(t)}}}
				}
				var degs DegreeSet
				tr := &Trace{}
				for l, el := range k.lays {
					res := (*BridgeResult)(nil)
					if x, res, err = k.ev.Layer(bg(), l, x, el, masks, degs, br, tr); err != nil {
						t.Fatal(err)
					}
					masks, degs = res.Masks, res.Degrees
				}
				lct, err := k.ev.Head(bg(), x, k.head, br, tr)
				if err != nil {
					t.Fatal(err)
				}
				got, err := tc.client.DecryptLogits(lct, x.Layout, cfg.NumLabels())
				if err != nil {
					t.Fatal(err)
				}
				for c := range want {
					d := math.Abs(got[c] - want[c])
					worst = math.Max(worst, d)
					if d > 1e-2 {
						t.Errorf("input %d (n=%d) logit %d: encrypted %.5f, approximate %.5f", i, len(ids), c, got[c], want[c])
					}
				}
				if argmax(got) != argmax(want) {
					t.Errorf("input %d: encrypted argmax %d, approximate %d", i, argmax(got), argmax(want))
				}
				if i == 0 {
					calls, cts := tr.Refreshes()
					t.Logf("input 0 (n=%d): %d refreshes, %d ciphertexts", len(ids), calls, cts)
					for _, s := range tr.Stages {
						t.Logf("  refresh %-18s %2d ciphertexts from level %d to %d", s.Stage, s.Cts, s.Level, s.Target)
					}
				}
			}
			t.Logf("%s: %d inputs, max |logit error| vs approximate forward %.2e", name, len(inputs), worst)
		})
	}
}

func argmax(v []float64) int {
	best := 0
	for i := range v {
		if v[i] > v[best] {
			best = i
		}
	}
	return best
}
