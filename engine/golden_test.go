package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
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
// within 1e-2, the same label, and the same kept counts but for tokens
// whose importance lies within tieBand of θ (checkKept). It logs the
// difference from the forward on the float weights too. By default it
// runs the first 3 texts of sentiment-tiny; CIPHERPRUNE_GOLDEN=all runs
// 16 of each model
// (CIPHERPRUNE_GOLDEN=k the first k, CIPHERPRUNE_GOLDEN=i:j texts i to
// j-1), spam-mini on the secure Elementwise15 (the acceptance run,
// an hour or more).
func TestGolden(t *testing.T) {
	if testing.Short() {
		t.Skip("whole private inferences")
	}
	env := os.Getenv("CIPHERPRUNE_GOLDEN")
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
			lo, hi, err := goldenRange(env, mc.quick)
			if err != nil {
				t.Fatal(err)
			}
			if hi == lo {
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
			texts := goldenTexts(t, dir)[lo:hi]
			worst := 0.0
			for k, text := range texts {
				i := lo + k
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
					ref := referenceKept(t, qm, res.Encoding, red)
					want, kept := ref.logits, ref.kept
					fref := referenceKept(t, m, res.Encoding, red)
					float, floatKept := fref.logits, fref.kept
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
					if err := checkKept(got, ref); err != nil {
						t.Errorf("text %d (%+v): %v", i, red, err)
					}
				}
			}
			t.Logf("%d texts, with and without the reductions: largest logit difference %.2e", len(texts), worst)
		})
	}
}

// goldenRange returns the texts [lo, hi) that CIPHERPRUNE_GOLDEN asks
// for: "" the first quick, "all" 16, "k" the first k, "i:j" texts i to
// j-1 (at most 16 golden texts).
func goldenRange(env string, quick int) (lo, hi int, err error) {
	const texts = 16
	switch i, j, found := strings.Cut(env, ":"); {
	case env == "":
		return 0, quick, nil
	case env == "all":
		return 0, texts, nil
	case found:
		a, err1 := strconv.Atoi(i)
		b, err2 := strconv.Atoi(j)
		if err1 != nil || err2 != nil || a < 0 || a > b || b > texts {
			return 0, 0, fmt.Errorf("CIPHERPRUNE_GOLDEN=%q: want i:j with 0 <= i <= j <= %d", env, texts)
		}
		return a, b, nil
	default:
		k, err := strconv.Atoi(env)
		if err != nil || k < 0 {
			return 0, 0, fmt.Errorf("CIPHERPRUNE_GOLDEN=%q: want all, k or i:j", env)
		}
		return 0, min(k, texts), nil
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

// tieBand is how close to θ a token's plaintext importance may be for the
// private run to decide it the other way: the private scores' error against
// the approximate forward on the quantized weights is the probabilities'
// rounding to 2^-16, averaged over the queries and heads, and the
// importance product's (1.8e-6 at most on spam-mini at n = 512, measured
// against the opened probabilities' average); a token farther from θ that
// falls the other way is a bug.
const tieBand = 1e-5

// referenceRun is the plaintext reference of one private inference: its
// logits, the rows each layer kept, and how many tokens of each layer that
// prunes lie within tieBand of its θ.
type referenceRun struct {
	logits     []float64
	kept, ties []int
}

// referenceKept runs reference with the decisions of r and records what
// each layer kept: a private run that keeps other rows (scores within the
// noise of θ) shows there.
func referenceKept(t testing.TB, m *Model, enc models.Encoding, r Reductions) referenceRun {
	t.Helper()
	x0, err := m.Client.Embed(enc.IDs, enc.TypeIDs)
	if err != nil {
		t.Fatal(err)
	}
	rules := Rules(m.Thresholds, m.Config().NumLayers(), r)
	sched := ReferenceSchedule(rules)
	var run referenceRun
	rec := models.ScheduleFunc(func(att *models.LayerAttention) (models.Decision, error) {
		d, err := sched.AfterAttention(att)
		k, ties := len(att.Tokens), 0
		if d.Keep != nil {
			k = 0
			for _, v := range d.Keep {
				if v {
					k++
				}
			}
		}
		if rules[att.Layer].Prune {
			for j, v := range att.Importance() {
				if j > 0 && math.Abs(v-rules[att.Layer].Theta) < tieBand {
					ties++
				}
			}
		}
		run.kept, run.ties = append(run.kept, k), append(run.ties, ties)
		return d, err
	})
	if run.logits, err = m.Server.Forward(x0, enc.AttentionMask, &models.ForwardOptions{Nonlinear: m.Approx.Clone(), Schedule: rec}); err != nil {
		t.Fatal(err)
	}
	return run
}

// checkKept checks the private run's kept counts got against the
// reference's: equal up to the first layer where they differ, and there by
// at most the tokens within tieBand of θ (after it the two runs' rows
// differ, and only the logits are compared).
func checkKept(got []int, ref referenceRun) error {
	for l := range got {
		if got[l] == ref.kept[l] {
			continue
		}
		if d := got[l] - ref.kept[l]; d > ref.ties[l] || -d > ref.ties[l] {
			return fmt.Errorf("layer %d kept %d rows, the reference %d, with %d scores within %g of θ", l, got[l], ref.kept[l], ref.ties[l], tieBand)
		}
		return nil
	}
	return nil
}

// TestCheckKept: counts may differ only by the tokens near θ, at the first
// layer where they differ.
func TestCheckKept(t *testing.T) {
	for _, c := range []struct {
		got, kept, ties []int
		ok              bool
	}{
		{[]int{355, 88}, []int{355, 88}, []int{0, 0}, true},
		{[]int{356, 88}, []int{355, 88}, []int{3, 0}, true},
		{[]int{356, 90}, []int{355, 88}, []int{1, 0}, true}, // after the first difference only the logits count
		{[]int{357, 88}, []int{355, 88}, []int{1, 0}, false},
		{[]int{355, 87}, []int{355, 88}, []int{0, 0}, false},
		{[]int{342, 73}, []int{344, 72}, []int{2, 1}, true},
	} {
		err := checkKept(c.got, referenceRun{kept: c.kept, ties: c.ties})
		if (err == nil) != c.ok {
			t.Errorf("got %v, reference %v, ties %v: error %v, want ok=%v", c.got, c.kept, c.ties, err, c.ok)
		}
	}
}
