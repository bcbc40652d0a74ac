package prunestep

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"

	"github.com/cipherprune/cipherprune/ckks"
	"github.com/cipherprune/cipherprune/models"
	"github.com/cipherprune/cipherprune/models/approx"
	"github.com/cipherprune/cipherprune/mpcbridge/internal/nettest"
)

// tinyModel is ckks/layer_test.go's helper: a random BERT of the given
// shape over a 12-word vocabulary.
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

// shallowRegistry is the default registry with the reciprocal and 1/√x
// one degree step lower, so that every recipe fits the 8 levels that
// Interactive14's chain leaves above the bridge's reserve of 2.
func shallowRegistry(t testing.TB) *approx.Registry {
	t.Helper()
	lit := approx.DefaultLiteral()
	lit.Reciprocal.High.Degree = 127
	lit.InvSqrt.High.Degree = 127
	reg, err := approx.NewRegistry(lit)
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

// pickRule chooses θ and β in the widest gaps of the real tokens' scores
// (CLS excluded): θ in the lower half, so that real tokens are pruned too,
// β among the kept ones, so that both degree groups occur. It returns the
// rule and the distance from any score to a threshold.
func pickRule(scores []float64) (LayerRule, float64) {
	var vals []float64
	for _, s := range scores[1:] {
		if s > 2*MinTheta {
			vals = append(vals, s)
		}
	}
	slices.Sort(vals)
	widest := func(lo, hi int) int { // the k in [lo, hi) maximizing vals[k+1]-vals[k]
		best := lo
		for k := lo; k < hi; k++ {
			if vals[k+1]-vals[k] > vals[best+1]-vals[best] {
				best = k
			}
		}
		return best
	}
	rule := LayerRule{Prune: true}
	if len(vals) < 3 {
		rule.Theta, rule.Beta = 1.5*MinTheta, 10
	} else {
		k := widest(0, len(vals)/2)
		rule.Theta = (vals[k] + vals[k+1]) / 2
		if k+2 < len(vals) {
			j := widest(k+1, len(vals)-1)
			rule.Beta = (vals[j] + vals[j+1]) / 2
		} else {
			rule.Beta = 10
		}
	}
	margin := math.Inf(1)
	for _, s := range scores[1:] {
		margin = math.Min(margin, math.Min(math.Abs(s-rule.Theta), math.Abs(s-rule.Beta)))
	}
	return rule, margin
}

// TestBridgeLayers runs ckks.Evaluator.Layer on a small random model with
// the two-party bridge over net.Pipe (pruning after every layer) and
// compares the logits and counts with the plaintext approximate forward
// under the same pruning rule.
//
// With HeadDim set, the kept rows are re-packed into a smaller block (40
// rows: block 64 at 1024 slots, then 32 once at most 32 rows are kept), so
// the layers after a pruning step run on the compacted layout with that
// block's keys. With Heads set too, the 13 short rows start in block 16 with
// both heads in each ciphertext.
func TestBridgeLayers(t *testing.T) {
	short := []int{2, 8, 7, 9, 10, 5, 6, 11, 7, 3, 0, 0, 0}
	long := make([]int, 40)
	for i := range long {
		switch {
		case i == 0:
			long[i] = 2
		case i < 30:
			long[i] = 5 + i%7
		case i == 30:
			long[i] = 3
		}
	}
	for _, c := range []struct {
		name   string
		lit    ParametersLiteral
		ids    []int
		newton bool
	}{
		{"same block", defaultLiteral, short, false},
		{"compacted", ParametersLiteral{Share: defaultLiteral.Share, HeadDim: 32}, long, false},
		{"stacked heads", ParametersLiteral{Share: defaultLiteral.Share, HeadDim: 32, Heads: 2}, short, false},
		// The reciprocal and 1/√x with a Newton step each: deeper than a
		// refresh segment, evaluated in two with a bridge refresh between.
		{"Newton segments", defaultLiteral, short, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			reg := shallowRegistry(t)
			if c.newton {
				lit := reg.Literal()
				lit.Reciprocal.High.Newton = 1
				lit.InvSqrt.High.Newton = 1
				var err error
				if reg, err = approx.NewRegistry(lit); err != nil {
					t.Fatal(err)
				}
				for _, fn := range []approx.Func{approx.Reciprocal, approx.InvSqrt} {
					if d := reg.Recipe(fn, approx.High).Cost().Depth; d <= 8 {
						t.Fatalf("%s: depth %d fits one segment", fn, d)
					}
				}
			}
			testBridgeLayers(t, c.lit, c.ids, reg)
		})
	}
}

func testBridgeLayers(t *testing.T, lit ParametersLiteral, ids []int, reg *approx.Registry) {
	defer noLeaks(t)()
	tc := newTestContext(t, ckks.InsecureTest11, lit)
	m := tinyModel(t, 2, 64, 2, 128)
	cfg := m.Config()
	mask := make([]int, len(ids))
	for i, id := range ids {
		if id != 0 {
			mask[i] = 1
		}
	}
	n := len(ids)
	x0, err := m.Client.Embed(ids, nil)
	if err != nil {
		t.Fatal(err)
	}

	// The plaintext reference picks the rules and applies them.
	var rules []LayerRule
	var wantCounts []Counts
	sched := models.ScheduleFunc(func(att *models.LayerAttention) (models.Decision, error) {
		s := att.Importance()
		rule, margin := pickRule(s)
		t.Logf("layer %d: scores %.4f; θ = %.4f, β = %.4f, margin %.2g", att.Layer, s, rule.Theta, rule.Beta, margin)
		if margin < 5e-4 { // 30x the scores' HE and fixed-point error
			t.Fatalf("layer %d: scores within %g of a threshold", att.Layer, margin)
		}
		rules = append(rules, rule)
		dec := models.Decision{Keep: make([]bool, len(s)), Degrees: make([]models.Degree, len(s))}
		c := Counts{Layer: att.Layer, In: len(s)}
		for i, v := range s {
			dec.Keep[i] = i == 0 || v > rule.Theta
			dec.Degrees[i] = models.DegreeLow
			if i == 0 || v > rule.Beta {
				dec.Degrees[i] = models.DegreeHigh
			}
			if dec.Keep[i] {
				c.Kept++
				if dec.Degrees[i] == models.DegreeHigh {
					c.High++
				}
			}
		}
		wantCounts = append(wantCounts, c)
		return dec, nil
	})
	want, err := m.Server.Forward(x0, mask, &models.ForwardOptions{Nonlinear: models.NewApproximateFromRegistry(reg, 0), Schedule: sched})
	if err != nil {
		t.Fatal(err)
	}

	// The encrypted run.
	slots := tc.params.MaxSlots()
	block, err := ckks.BlockFor(slots, n, cfg.HeadDim(), lit.Heads)
	if err != nil {
		t.Fatal(err)
	}
	// The keys of every block the rows may be re-packed into.
	var rots []int
	for b := block; b >= 1; b /= 2 {
		r, err := ckks.Rotations(ckks.ShapeOf(cfg, b), slots)
		if err != nil {
			break // below the smallest block for this head dimension
		}
		rots = append(rots, r...)
		if lit.HeadDim == 0 {
			break
		}
	}
	gks := tc.kgen.GenGaloisKeysNew(tc.params.GaloisElements(rots), tc.sk)
	evk := rlwe.NewMemEvaluationKeySet(tc.kgen.GenRelinearizationKeyNew(tc.sk), gks...)
	ev, err := ckks.NewEvaluator(tc.params, evk, reg, 2, ckks.WithReserve(tc.server.MinLevel()))
	if err != nil {
		t.Fatal(err)
	}
	lay, err := ckks.NewLayout(slots, n, cfg.HiddenSize(), block)
	if err != nil {
		t.Fatal(err)
	}
	lay = lay.WithHeadDim(lit.HeadDim)
	valid := make([]bool, n)
	for i, v := range mask {
		valid[i] = v == 1
	}
	masks, err := tc.he.EncryptAttentionMasks(valid, lay)
	if err != nil {
		t.Fatal(err)
	}
	x, err := tc.he.EncryptMatrix(x0, lay, tc.params.MaxLevel())
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	srv, cli := connPair(t, "pipe")
	br, err := NewBridge(tc.server, srv, rules, nil)
	if err != nil {
		t.Fatal(err)
	}
	attCfg := ckks.AttentionConfig{Heads: cfg.NumHeads()}
	tr := &ckks.Trace{}
	var blocks []int // the block of each layer's output
	var logits *rlwe.Ciphertext
	var gotCounts []Counts
	serr, cerr := nettest.Both(func() error {
		defer func() {
			if logits == nil {
				srv.Close() // unblock the client
			}
		}()
		var degs ckks.DegreeSet
		for l := range m.Server.Layers {
			enc := ckks.LayerEncodingFunc(func(b int) (*ckks.EncodedLayer, error) {
				return ckks.NewEncodedLayer(&m.Server.Layers[l], attCfg, b, slots, reg)
			})
			var res *ckks.BridgeResult
			var err error
			if x, res, err = ev.Layer(ctx, l, x, enc, masks, degs, br, tr); err != nil {
				return err
			}
			masks, degs = res.Masks, res.Degrees
			blocks = append(blocks, x.Layout.Block)
		}
		eh, err := ckks.NewEncodedHead(m.Server, x.Layout.Block, slots, reg)
		if err != nil {
			return err
		}
		lg, err := ev.Head(ctx, x, eh, br, tr)
		if err != nil {
			return err
		}
		logits = lg
		return br.Done(ctx)
	}, func() error {
		var err error
		gotCounts, err = tc.client.ServeBridge(ctx, cli)
		return err
	})
	if serr != nil || cerr != nil {
		t.Fatalf("server: %v; client: %v", serr, cerr)
	}
	if !slices.Equal(gotCounts, wantCounts) || !slices.Equal(br.Counts(), wantCounts) {
		t.Errorf("counts: client %v, server %v, want %v", gotCounts, br.Counts(), wantCounts)
	}
	for l, b := range blocks {
		want, err := lay.Compact(gotCounts[l].Kept, lit.HeadDim, lit.Heads)
		if err != nil {
			t.Fatal(err)
		}
		if b != want.Block {
			t.Errorf("layer %d: block %d after keeping %d rows, want %d", l, b, gotCounts[l].Kept, want.Block)
		}
	}
	switch {
	case lit.Heads > 1 && lay.HeadsPerCt() < 2:
		t.Errorf("layout %+v: one head per ciphertext, want the heads stacked", lay)
	case lit.HeadDim != 0 && lit.Heads <= 1 && blocks[len(blocks)-1] >= block:
		t.Errorf("blocks %v: the rows were never re-packed into a smaller block than %d", blocks, block)
	}
	got, err := tc.he.DecryptLogits(logits, x.Layout, cfg.NumLabels())
	if err != nil {
		t.Fatal(err)
	}
	calls, cts := tr.Refreshes()
	t.Logf("logits: encrypted %v, approximate %v; counts %v; blocks %d then %v; %d refreshes (%d ciphertexts)", got, want, gotCounts, block, blocks, calls, cts)
	for k := range want {
		if d := math.Abs(got[k] - want[k]); d > 1e-2 {
			t.Errorf("logit %d: encrypted %g, approximate %g, error %g > 1e-2", k, got[k], want[k], d)
		}
	}
}

// TestBridgeRules checks the Bridge's handling of its rule table without
// running a step: a layer that does not prune passes the hidden state on
// with the current masks, a layer without a rule is an error.
func TestBridgeRules(t *testing.T) {
	defer noLeaks(t)()
	tc := newTestContext(t, ckks.InsecureTest11, defaultLiteral)
	srv, _ := connPair(t, "pipe")
	r := rand.New(rand.NewPCG(6, 6))
	in := tc.newInput(t, 0, randomRows(r, 4, 64, 1), []float64{0, 0.5, 0.5, 0.5}, 3)
	rules := []LayerRule{{Prune: false}}
	ctx := testCtx(t)

	br, err := NewBridge(tc.server, srv, rules, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := br.AfterAttention(ctx, in.out); err == nil {
		t.Error("a non-pruning layer without masks was accepted")
	}
	masks, err := tc.he.EncryptAttentionMasks([]bool{true, true, false, true}, in.lay)
	if err != nil {
		t.Fatal(err)
	}
	br, err = NewBridge(tc.server, srv, rules, masks)
	if err != nil {
		t.Fatal(err)
	}
	res, err := br.AfterAttention(ctx, in.out)
	if err != nil {
		t.Fatal(err)
	}
	if res.Hidden != in.out.Hidden || res.Masks != masks || res.Degrees != nil {
		t.Errorf("non-pruning layer: got %+v", res)
	}
	out1 := *in.out
	out1.Layer = 1
	if _, err := br.AfterAttention(ctx, &out1); err == nil {
		t.Error("a layer without a rule was accepted")
	}
	if s := srv.Stats(); s.BytesSent != 0 {
		t.Errorf("the bridge sent %d bytes", s.BytesSent)
	}
	if br.MinLevel() != tc.server.MinLevel() || len(br.Counts()) != 0 {
		t.Errorf("MinLevel %d, counts %v", br.MinLevel(), br.Counts())
	}
}
