package engine

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/cipherprune/cipherprune/models"
	"github.com/cipherprune/cipherprune/mpcbridge/elementwise"
)

// goldenTexts returns the texts of a model directory's golden.json.
func goldenTexts(t *testing.T, dir string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "golden.json"))
	if err != nil {
		t.Fatal(err)
	}
	var g struct {
		Examples []struct {
			Text string `json:"text"`
		} `json:"examples"`
	}
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	out := make([]string, len(g.Examples))
	for i, e := range g.Examples {
		out[i] = e.Text
	}
	return out
}

// TestGolden runs private inferences of the shipped models on their golden
// texts, with the learned pruning and degrees and without, and compares
// the opened logits with the plaintext approximate forward making the same
// decisions, on the weights as the server holds them (quantizedModel):
// within 1e-2, the same label. It logs the difference from the forward on
// the float weights too. By default it runs the first 3
// texts of sentiment-tiny; CIPHERPRUNE_GOLDEN=all runs 16 of each model
// (CIPHERPRUNE_GOLDEN=k the first k),
// spam-mini on the secure Elementwise15 (the acceptance run, an
// hour or more).
func TestGolden(t *testing.T) {
	if testing.Short() {
		t.Skip("whole private inferences")
	}
	env := os.Getenv("CIPHERPRUNE_GOLDEN")
	all := env == "all"
	some, _ := strconv.Atoi(env) // CIPHERPRUNE_GOLDEN=k: the first k texts of each model
	for _, mc := range []struct {
		name, preset string
		quick        int
	}{
		{"sentiment-tiny", elementwise.InsecureElementwise11, 3},
		// spam-mini's reciprocal (degree 127 and a Newton step) needs the
		// deep chain of Elementwise15; its long e-mails (n up to 512) make
		// every inference minutes, so only the full run takes it.
		{"spam-mini", elementwise.Elementwise15, 0},
	} {
		t.Run(mc.name, func(t *testing.T) {
			count := mc.quick
			switch {
			case all:
				count = 16
			case some > 0:
				count = min(some, 16)
			}
			if count == 0 {
				t.Skip("CIPHERPRUNE_GOLDEN=all runs it")
			}
			dir := filepath.Join("..", "models", "trained", mc.name)
			m, err := LoadModel(dir)
			if err != nil {
				t.Fatal(err)
			}
			insecure := mc.preset != elementwise.Elementwise15
			cfg := ServerConfig{Preset: mc.preset, AllowInsecure: insecure, Workers: 2, AllowOpenLogits: true}
			addr, logs := startServer(t, m, cfg)
			srv, err := NewServer(m, cfg)
			if err != nil {
				t.Fatal(err)
			}
			qm := quantizedModel(m, srv.Params().MatMul().WeightFracBits(), srv.Params().FracBits())
			texts := goldenTexts(t, dir)[:count]
			worst := 0.0
			for i, text := range texts {
				for _, red := range []Reductions{{Prune: true, Reduce: true}, {}} {
					c := testClient(t, m, ClientConfig{Preset: mc.preset, AllowInsecure: insecure, OpenLogits: true, Truncate: true,
						NoPruning: !red.Prune, NoDegreeReduction: !red.Reduce})
					// An inference of spam-mini at n = 512 takes minutes, more
					// than testCtx's 10 on a loaded machine.
					ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
					res, err := c.Infer(ctx, dial(t, addr), text)
					cancel()
					if err != nil {
						t.Fatalf("text %d: %v\nserver: %q", i, err, logs())
					}
					want, kept := referenceKept(t, qm, res.Encoding, red)
					float, floatKept := referenceKept(t, m, res.Encoding, red)
					d, df := 0.0, 0.0
					for k := range want {
						d = math.Max(d, math.Abs(res.Logits[k]-want[k]))
						df = math.Max(df, math.Abs(res.Logits[k]-float[k]))
					}
					worst = math.Max(worst, d)
					var got []int
					for _, lr := range res.Report.Layers {
						got = append(got, lr.Kept)
					}
					t.Logf("text %d (%+v): n = %d, max logit difference %.2e (float weights: %.2e), kept %v (reference %v, float weights %v), %.1f s",
						i, red, res.Report.Length, d, df, got, kept, floatKept, res.Report.Seconds)
					if d > 1e-2 || argmax(want) != res.Label {
						t.Errorf("text %d (%+v): logits %.4f, approximate forward %.4f", i, red, res.Logits, want)
					}
				}
			}
			t.Logf("%d texts, with and without the reductions: largest logit difference %.2e", len(texts), worst)
		})
	}
}

// quantizedModel returns a copy of m whose encoder and head weights are
// those the server's products use: every weight rounded to fw fraction
// bits (the queries' after their division by √dh, as layers folds it into
// them) and every bias to f (matmul's quantization).
func quantizedModel(m *Model, fw, f int) *Model {
	q, mm, sm := *m, *m.Model, *m.Server
	mm.Server = &sm
	q.Model = &mm
	dh := float64(m.Config().HeadDim())
	quant := func(l *models.Linear, scale float64) {
		w := l.Weight.Clone()
		for i, v := range w.Data {
			w.Data[i] = math.Ldexp(math.Round(math.Ldexp(v*scale, fw)), -fw) / scale
		}
		b := append([]float64(nil), l.Bias...)
		for i, v := range b {
			b[i] = math.Ldexp(math.Round(math.Ldexp(v*scale, f)), -f) / scale
		}
		*l = models.Linear{Weight: w, Bias: b}
	}
	sm.Layers = append([]models.EncoderLayer(nil), m.Server.Layers...)
	for l := range sm.Layers {
		ly := &sm.Layers[l]
		quant(&ly.Query, 1/math.Sqrt(dh))
		for _, lin := range []*models.Linear{&ly.Key, &ly.Value, &ly.AttnOutput, &ly.Intermediate, &ly.Output} {
			quant(lin, 1)
		}
	}
	quant(&sm.Pooler, 1)
	quant(&sm.Classifier, 1)
	return &q
}

// referenceKept is reference with the rows each layer of the plaintext
// run kept: a private run that keeps other rows (a score within the noise
// of θ) shows there.
func referenceKept(t testing.TB, m *Model, enc models.Encoding, r Reductions) ([]float64, []int) {
	t.Helper()
	x0, err := m.Client.Embed(enc.IDs, enc.TypeIDs)
	if err != nil {
		t.Fatal(err)
	}
	sched := ReferenceSchedule(Rules(m.Thresholds, m.Config().NumLayers(), r))
	var kept []int
	rec := models.ScheduleFunc(func(att *models.LayerAttention) (models.Decision, error) {
		d, err := sched.AfterAttention(att)
		k := len(att.Tokens)
		if d.Keep != nil {
			k = 0
			for _, v := range d.Keep {
				if v {
					k++
				}
			}
		}
		kept = append(kept, k)
		return d, err
	})
	want, err := m.Server.Forward(x0, enc.AttentionMask, &models.ForwardOptions{Nonlinear: m.Approx.Clone(), Schedule: rec})
	if err != nil {
		t.Fatal(err)
	}
	return want, kept
}
