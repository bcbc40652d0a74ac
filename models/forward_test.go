package models

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// naiveLogits is a reference forward written from the BERT definition with
// plain slices and loops, sharing no code with forward.go: embeddings,
// post-LN layers with -∞ on padded keys, exact GELU, tanh pooler, classifier.
func naiveLogits(m *Model, ids, mask []int) []float64 {
	cfg := m.Config()
	d, heads := cfg.HiddenSize(), cfg.NumHeads()
	dh := d / heads
	n := len(ids)
	vecLinear := func(l *Linear, x []float64) []float64 {
		y := make([]float64, l.Weight.Rows)
		for o := range y {
			s := l.Bias[o]
			for i, v := range x {
				s += l.Weight.Data[o*l.Weight.Cols+i] * v
			}
			y[o] = s
		}
		return y
	}
	layerNorm := func(ln *LayerNorm, x []float64) []float64 {
		mean, variance := 0.0, 0.0
		for _, v := range x {
			mean += v / float64(len(x))
		}
		for _, v := range x {
			variance += (v - mean) * (v - mean) / float64(len(x))
		}
		y := make([]float64, len(x))
		for i, v := range x {
			y[i] = (v-mean)/math.Sqrt(variance+ln.Eps)*ln.Gamma[i] + ln.Beta[i]
		}
		return y
	}
	e := &m.Client.Embeddings
	h := make([][]float64, n)
	for i, id := range ids {
		x := make([]float64, d)
		for j := range x {
			x[j] = e.Word.At(id, j) + e.Position.At(i, j) + e.TokenType.At(0, j)
		}
		h[i] = layerNorm(&e.LayerNorm, x)
	}
	for l := range m.Server.Layers {
		ly := &m.Server.Layers[l]
		q, k, v := make([][]float64, n), make([][]float64, n), make([][]float64, n)
		for i := range h {
			q[i], k[i], v[i] = vecLinear(&ly.Query, h[i]), vecLinear(&ly.Key, h[i]), vecLinear(&ly.Value, h[i])
		}
		next := make([][]float64, n)
		for i := 0; i < n; i++ {
			ctx := make([]float64, d)
			for hd := 0; hd < heads; hd++ {
				scores := make([]float64, n)
				maxScore := math.Inf(-1)
				for j := 0; j < n; j++ {
					scores[j] = math.Inf(-1)
					if mask[j] == 1 {
						s := 0.0
						for c := hd * dh; c < (hd+1)*dh; c++ {
							s += q[i][c] * k[j][c]
						}
						scores[j] = s / math.Sqrt(float64(dh))
						maxScore = math.Max(maxScore, scores[j])
					}
				}
				sum := 0.0
				for j := range scores {
					scores[j] = math.Exp(scores[j] - maxScore)
					sum += scores[j]
				}
				for j := 0; j < n; j++ {
					for c := hd * dh; c < (hd+1)*dh; c++ {
						ctx[c] += scores[j] / sum * v[j][c]
					}
				}
			}
			a := vecLinear(&ly.AttnOutput, ctx)
			for c := range a {
				a[c] += h[i][c]
			}
			a = layerNorm(&ly.AttnNorm, a)
			inter := vecLinear(&ly.Intermediate, a)
			for c, x := range inter {
				inter[c] = x * 0.5 * (1 + math.Erf(x/math.Sqrt2))
			}
			o := vecLinear(&ly.Output, inter)
			for c := range o {
				o[c] += a[c]
			}
			next[i] = layerNorm(&ly.OutputNorm, o)
		}
		h = next
	}
	pooled := vecLinear(&m.Server.Pooler, h[0])
	for i, x := range pooled {
		pooled[i] = math.Tanh(x)
	}
	return vecLinear(&m.Server.Classifier, pooled)
}

// maxAbsDiff returns max |a_i - b_i|, or +Inf if the lengths differ.
func maxAbsDiff(a, b []float64) float64 {
	if len(a) != len(b) {
		return math.Inf(1)
	}
	worst := 0.0
	for i := range a {
		worst = math.Max(worst, math.Abs(a[i]-b[i]))
	}
	return worst
}

// testInput returns ids of length n with real tokens in the first `real`
// positions ([CLS] first), padding after, and the matching mask.
func testInput(rng *rand.Rand, tok *Tokenizer, n, real int) ([]int, []int) {
	ids, mask := make([]int, n), make([]int, n)
	for i := range ids {
		switch {
		case i == 0:
			ids[i], mask[i] = tok.CLSID(), 1
		case i < real:
			ids[i], mask[i] = 5+rng.IntN(tok.VocabSize()-5), 1
		default:
			ids[i] = tok.PadID()
		}
	}
	return ids, mask
}

func TestForwardMatchesNaive(t *testing.T) {
	tests := []struct{ layers, hidden, heads, inter, n, real int }{
		{1, 8, 1, 16, 5, 5},
		{1, 8, 2, 16, 7, 4},
		{2, 12, 3, 20, 9, 9},
		{3, 16, 4, 32, 12, 6},
		{2, 16, 2, 24, 1, 1},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("L=%d,d=%d,H=%d,n=%d,real=%d", tt.layers, tt.hidden, tt.heads, tt.n, tt.real), func(t *testing.T) {
			m := tinyModel(t, tinyConfig(t, tt.layers, tt.hidden, tt.heads, tt.inter), uint64(tt.n))
			ids, mask := testInput(rand.New(rand.NewPCG(9, uint64(tt.n))), m.Client.Tokenizer, tt.n, tt.real)
			got, err := m.Logits(ids, mask)
			if err != nil {
				t.Fatal(err)
			}
			want := naiveLogits(m, ids, mask)
			if d := maxAbsDiff(got, want); !(d < 1e-12) {
				t.Fatalf("logits %v, naive %v (diff %.2e)", got, want, d)
			}
		})
	}
}

func TestForwardPaddingInvariance(t *testing.T) {
	m := tinyModel(t, tinyConfig(t, 2, 16, 4, 32), 11)
	rng := rand.New(rand.NewPCG(10, 11))
	ids, mask := testInput(rng, m.Client.Tokenizer, 6, 6)
	want, err := m.Logits(ids, mask)
	if err != nil {
		t.Fatal(err)
	}
	for _, extra := range []int{1, 5, 20} {
		t.Run(fmt.Sprintf("pad=%d", extra), func(t *testing.T) {
			pids, pmask := slices.Clone(ids), slices.Clone(mask)
			for i := 0; i < extra; i++ {
				pids, pmask = append(pids, m.Client.Tokenizer.PadID()), append(pmask, 0)
			}
			got, err := m.Logits(pids, pmask)
			if err != nil {
				t.Fatal(err)
			}
			// Padded keys get probability exactly 0, so nothing changes.
			if !slices.Equal(got, want) {
				t.Fatalf("logits %v with padding, %v without", got, want)
			}
		})
	}
}

// runEncoder runs every layer through the exported block functions.
func runEncoder(t *testing.T, s *ServerModel, x Matrix, valid []bool) Matrix {
	t.Helper()
	for l := range s.Layers {
		h, _, err := s.AttentionBlock(l, x, valid, nil, Exact{})
		if err != nil {
			t.Fatal(err)
		}
		if x, err = s.FeedForwardBlock(l, h, nil, Exact{}); err != nil {
			t.Fatal(err)
		}
	}
	return x
}

func TestEncoderPermutationEquivariance(t *testing.T) {
	m := tinyModel(t, tinyConfig(t, 2, 16, 2, 32), 12)
	rng := rand.New(rand.NewPCG(12, 13))
	const n = 10
	ids, mask := testInput(rng, m.Client.Tokenizer, n, 7)
	x0, err := m.Client.Embed(ids, nil)
	if err != nil {
		t.Fatal(err)
	}
	valid := make([]bool, n)
	for i := range valid {
		valid[i] = mask[i] == 1
	}
	out := runEncoder(t, m.Server, x0, valid)
	want, err := m.Server.Forward(x0, mask, nil)
	if err != nil {
		t.Fatal(err)
	}
	for trial := 0; trial < 3; trial++ {
		// perm fixes the CLS row and shuffles the others, padding included.
		perm := append([]int{0}, rng.Perm(n-1)...)
		for i := 1; i < n; i++ {
			perm[i]++
		}
		xp, _ := x0.SelectRowsNew(perm)
		vp, mp := make([]bool, n), make([]int, n)
		for i, p := range perm {
			vp[i], mp[i] = valid[p], mask[p]
		}
		outp := runEncoder(t, m.Server, xp, vp)
		for i, p := range perm {
			if d := maxAbsDiff(outp.Row(i), out.Row(p)); d > 1e-12 {
				t.Fatalf("perm %v: row %d differs from original row %d by %.2e", perm, i, p, d)
			}
		}
		got, err := m.Server.Forward(xp, mp, nil)
		if err != nil {
			t.Fatal(err)
		}
		if d := maxAbsDiff(got, want); d > 1e-12 {
			t.Fatalf("perm %v: logits differ by %.2e", perm, d)
		}
	}
}

// recordingNL wraps Exact and counts the calls of each function by degree.
type recordingNL struct {
	Exact
	calls map[string]int
}

func (r *recordingNL) note(fn string, d Degree) { r.calls[fn+"/"+d.String()]++ }

func (r *recordingNL) SoftmaxRow(dst, s []float64, v []bool, d Degree) {
	r.note("softmax", d)
	r.Exact.SoftmaxRow(dst, s, v, d)
}
func (r *recordingNL) GELU(x float64, d Degree) float64 { r.note("gelu", d); return r.Exact.GELU(x, d) }
func (r *recordingNL) InvSqrt(x float64, d Degree) float64 {
	r.note("invsqrt", d)
	return r.Exact.InvSqrt(x, d)
}
func (r *recordingNL) Tanh(x float64, d Degree) float64 { r.note("tanh", d); return r.Exact.Tanh(x, d) }

func TestScheduleDegrees(t *testing.T) {
	cfg := tinyConfig(t, 2, 8, 2, 12)
	m := tinyModel(t, cfg, 13)
	ids, mask := testInput(rand.New(rand.NewPCG(1, 1)), m.Client.Tokenizer, 6, 6)
	enc := Encoding{IDs: ids, AttentionMask: mask}
	want, _ := m.Logits(ids, mask)
	var seen [][]Degree
	nl := &recordingNL{calls: map[string]int{}}
	opts := &ForwardOptions{Nonlinear: nl, Schedule: ScheduleFunc(func(a *LayerAttention) (Decision, error) {
		seen = append(seen, a.Degrees)
		if a.Layer == 0 {
			return Decision{Degrees: []Degree{DegreeHigh, DegreeLow, DegreeHigh, DegreeLow, DegreeHigh, DegreeHigh}}, nil
		}
		return Decision{Degrees: a.Degrees}, nil // keep the degrees
	})}
	got, err := m.Forward(enc, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Errorf("exact nonlinearities with degrees changed the logits: %v vs %v", got, want)
	}
	if !slices.Equal(seen[0], make([]Degree, 6)) || seen[1][1] != DegreeLow || seen[1][3] != DegreeLow {
		t.Errorf("degrees seen by the schedule: %v", seen)
	}
	heads, inter, n := cfg.NumHeads(), cfg.IntermediateSize(), 6
	wantCalls := map[string]int{
		// Layer 0 attention all high; layer 1 attention two low rows.
		"softmax/high": heads*n + heads*(n-2),
		"softmax/low":  heads * 2,
		// Both feed-forward blocks run after the first decision.
		"gelu/high": 2 * inter * (n - 2),
		"gelu/low":  2 * inter * 2,
		// LayerNorms: layer 0 attention (all high), then three with two low rows.
		"invsqrt/high": n + 3*(n-2),
		"invsqrt/low":  3 * 2,
		"tanh/high":    cfg.HiddenSize(),
	}
	for k, v := range wantCalls {
		if nl.calls[k] != v {
			t.Errorf("%s: %d calls, want %d (all: %v)", k, nl.calls[k], v, nl.calls)
		}
	}
	if len(nl.calls) != len(wantCalls) {
		t.Errorf("unexpected calls %v", nl.calls)
	}
}

func TestSchedulePruning(t *testing.T) {
	cfg := tinyConfig(t, 3, 16, 2, 24)
	m := tinyModel(t, cfg, 14)
	const n = 9
	ids, mask := testInput(rand.New(rand.NewPCG(2, 2)), m.Client.Tokenizer, n, 7)
	x0, err := m.Client.Embed(ids, nil)
	if err != nil {
		t.Fatal(err)
	}
	exact, _ := m.Server.Forward(x0, mask, nil)

	t.Run("keep all", func(t *testing.T) {
		got, err := m.Server.Forward(x0, mask, &ForwardOptions{Schedule: ScheduleFunc(func(*LayerAttention) (Decision, error) {
			return Decision{}, nil
		})})
		if err != nil || !slices.Equal(got, exact) {
			t.Fatalf("logits %v, %v; want %v", got, err, exact)
		}
	})

	t.Run("drop padding", func(t *testing.T) {
		// Padding is never attended to, so dropping it changes nothing.
		var counts []int
		got, err := m.Server.Forward(x0, mask, &ForwardOptions{Schedule: ScheduleFunc(func(a *LayerAttention) (Decision, error) {
			counts = append(counts, len(a.Tokens))
			return Decision{Keep: slices.Clone(a.Valid)}, nil
		})})
		if err != nil || !slices.Equal(got, exact) {
			t.Fatalf("logits %v, %v; want %v", got, err, exact)
		}
		if !slices.Equal(counts, []int{9, 7, 7}) {
			t.Errorf("rows per layer %v", counts)
		}
	})

	t.Run("drop tokens", func(t *testing.T) {
		// Drop original tokens 2 and 5 after layer 0's attention and token 3
		// after layer 1's, and compare with the blocks run by hand.
		var tokensSeen [][]int
		sched := ScheduleFunc(func(a *LayerAttention) (Decision, error) {
			tokensSeen = append(tokensSeen, a.Tokens)
			keep := make([]bool, len(a.Tokens))
			for i, tok := range a.Tokens {
				keep[i] = !(a.Layer == 0 && (tok == 2 || tok == 5)) && !(a.Layer == 1 && tok == 3)
			}
			return Decision{Keep: keep}, nil
		})
		got, err := m.Server.Forward(x0, mask, &ForwardOptions{Schedule: sched})
		if err != nil {
			t.Fatal(err)
		}
		valid := make([]bool, n)
		for i := range valid {
			valid[i] = mask[i] == 1
		}
		x := x0
		rows := []int{0, 1, 2, 3, 4, 5, 6, 7, 8}
		for l, drop := range [][]int{{2, 5}, {3}, {}} {
			h, _, err := m.Server.AttentionBlock(l, x, valid, nil, Exact{})
			if err != nil {
				t.Fatal(err)
			}
			var keepIdx, keptRows []int
			var keptValid []bool
			for i, r := range rows {
				if !slices.Contains(drop, r) {
					keepIdx, keptRows, keptValid = append(keepIdx, i), append(keptRows, r), append(keptValid, valid[i])
				}
			}
			h, _ = h.SelectRowsNew(keepIdx)
			rows, valid = keptRows, keptValid
			if x, err = m.Server.FeedForwardBlock(l, h, nil, Exact{}); err != nil {
				t.Fatal(err)
			}
		}
		want, err := m.Server.Head(x.Row(0), Exact{})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("pruned logits %v, by hand %v", got, want)
		}
		if slices.Equal(got, exact) {
			t.Error("dropping real tokens left the logits unchanged")
		}
		wantSeen := [][]int{{0, 1, 2, 3, 4, 5, 6, 7, 8}, {0, 1, 3, 4, 6, 7, 8}, {0, 1, 4, 6, 7, 8}}
		for l := range wantSeen {
			if !slices.Equal(tokensSeen[l], wantSeen[l]) {
				t.Errorf("layer %d saw tokens %v, want %v", l, tokensSeen[l], wantSeen[l])
			}
		}
	})
}

func TestScheduleErrors(t *testing.T) {
	m := tinyModel(t, tinyConfig(t, 2, 8, 2, 12), 15)
	ids, mask := testInput(rand.New(rand.NewPCG(3, 3)), m.Client.Tokenizer, 5, 5)
	tests := []struct {
		name    string
		dec     Decision
		err     error
		wantErr string
	}{
		{"drops CLS", Decision{Keep: []bool{false, true, true, true, true}}, nil, "drops the CLS token"},
		{"short keep", Decision{Keep: []bool{true}}, nil, "Keep has 1 entries for 5 rows"},
		{"low CLS", Decision{Degrees: []Degree{DegreeLow, 0, 0, 0, 0}}, nil, "low degree"},
		{"long degrees", Decision{Degrees: make([]Degree, 6)}, nil, "Degrees has 6 entries"},
		{"bad degree", Decision{Degrees: []Degree{0, 0, 7, 0, 0}}, nil, "Degrees[2] is Degree(7)"},
		{"schedule error", Decision{}, errors.New("threshold unavailable"), "threshold unavailable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := &ForwardOptions{Schedule: ScheduleFunc(func(*LayerAttention) (Decision, error) { return tt.dec, tt.err })}
			_, err := m.Forward(Encoding{IDs: ids, AttentionMask: mask}, opts)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), "layer 0") {
				t.Fatalf("error = %v, want one mentioning %q", err, tt.wantErr)
			}
		})
	}
}

func TestLayerAttention(t *testing.T) {
	cfg := tinyConfig(t, 2, 16, 4, 24)
	m := tinyModel(t, cfg, 16)
	const n, real = 8, 5
	ids, mask := testInput(rand.New(rand.NewPCG(4, 4)), m.Client.Tokenizer, n, real)
	var atts []*LayerAttention
	_, err := m.Forward(Encoding{IDs: ids, AttentionMask: mask}, &ForwardOptions{Schedule: ScheduleFunc(func(a *LayerAttention) (Decision, error) {
		atts = append(atts, a)
		return Decision{}, nil
	})})
	if err != nil {
		t.Fatal(err)
	}
	if len(atts) != cfg.NumLayers() {
		t.Fatalf("schedule called %d times", len(atts))
	}
	for _, a := range atts {
		if len(a.Probs) != cfg.NumHeads() {
			t.Fatalf("%d heads of probabilities", len(a.Probs))
		}
		for h, p := range a.Probs {
			for i := 0; i < n; i++ {
				sum := 0.0
				for j, v := range p.Row(i) {
					if j >= real && v != 0 {
						t.Fatalf("layer %d head %d: padding key %d has probability %v", a.Layer, h, j, v)
					}
					sum += v
				}
				if math.Abs(sum-1) > 1e-12 {
					t.Fatalf("layer %d head %d row %d sums to %v", a.Layer, h, i, sum)
				}
			}
		}
		scores := a.Importance()
		total := 0.0
		for j, s := range scores {
			want := 0.0
			for _, p := range a.Probs {
				for i := 0; i < real; i++ {
					want += p.At(i, j)
				}
			}
			want /= float64(cfg.NumHeads() * real)
			if math.Abs(s-want) > 1e-15 || (j >= real && s != 0) {
				t.Fatalf("layer %d: score %d = %v, want %v", a.Layer, j, s, want)
			}
			total += s
		}
		// Each valid query row distributes probability 1.
		if math.Abs(total-1) > 1e-12 {
			t.Errorf("layer %d: scores sum to %v", a.Layer, total)
		}
	}
	empty := &LayerAttention{Tokens: []int{0, 1}, Valid: []bool{false, false}}
	if s := empty.Importance(); !slices.Equal(s, []float64{0, 0}) {
		t.Errorf("Importance with no valid rows = %v", s)
	}
}

func TestForwardInputErrors(t *testing.T) {
	cfg := tinyConfig(t, 1, 8, 2, 12)
	m := tinyModel(t, cfg, 17)
	x0, err := m.Client.Embed([]int{2, 20, 3}, nil)
	if err != nil {
		t.Fatal(err)
	}
	nanX := x0.Clone()
	nanX.Data[5] = math.NaN()
	tests := []struct {
		name    string
		err     error
		wantErr string
	}{
		{"embed empty", errOf(m.Client.Embed(nil, nil)), "0 ids"},
		{"embed too long", errOf(m.Client.Embed(make([]int, 41), nil)), "41 ids"},
		{"embed id range", errOf(m.Client.Embed([]int{2, 64}, nil)), "ids[1] = 64"},
		{"embed negative id", errOf(m.Client.Embed([]int{-1}, nil)), "ids[0] = -1"},
		{"embed type range", errOf(m.Client.Embed([]int{2, 3}, []int{0, 2})), "typeIDs[1] = 2"},
		{"embed type length", errOf(m.Client.Embed([]int{2, 3}, []int{0})), "1 type ids for 2 ids"},
		{"mask length", errOf(m.Server.Forward(x0, []int{1, 1}, nil)), "2 entries for 3 rows"},
		{"mask value", errOf(m.Server.Forward(x0, []int{1, 2, 1}, nil)), "mask[1] is 2"},
		{"mask CLS", errOf(m.Server.Forward(x0, []int{0, 1, 1}, nil)), "CLS"},
		{"x0 width", errOf(m.Server.Forward(NewMatrix(3, 7), []int{1, 1, 1}, nil)), "3x7"},
		{"x0 empty", errOf(m.Server.Forward(NewMatrix(0, 8), nil, nil)), "n >= 1"},
		{"x0 broken", errOf(m.Server.Forward(Matrix{Rows: 3, Cols: 8}, []int{1, 1, 1}, nil)), "0 values"},
		{"x0 NaN", errOf(m.Server.Forward(nanX, []int{1, 1, 1}, nil)), "NaN at row 0, column 5"},
		{"logits lengths", errOf(m.Logits([]int{2, 3}, []int{1})), "2 ids but 1"},
		{"block layer", errOf(m.Server.FeedForwardBlock(1, x0, nil, Exact{})), "layer 1 is outside"},
		{"block degrees", errOf(m.Server.FeedForwardBlock(0, x0, []Degree{0}, Exact{})), "degrees has 1 entries"},
		{"block nil nonlinearities", errOf(m.Server.FeedForwardBlock(0, x0, nil, nil)), "nil Nonlinearities"},
		{"attention valid", errOf3(m.Server.AttentionBlock(0, x0, []bool{true}, nil, Exact{})), "valid has 1 entries"},
		{"attention CLS", errOf3(m.Server.AttentionBlock(0, x0, []bool{false, true, true}, nil, Exact{})), "valid[0]"},
		{"head width", errOf(m.Server.Head(make([]float64, 3), Exact{})), "3 entries, want 8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.err == nil || !strings.Contains(tt.err.Error(), tt.wantErr) || !strings.HasPrefix(tt.err.Error(), "cannot ") {
				t.Fatalf("error = %v, want one mentioning %q", tt.err, tt.wantErr)
			}
		})
	}
}

// errOf3 drops two results and keeps the error.
func errOf3[A, B any](_ A, _ B, err error) error { return err }

func TestMaskedSoftmax(t *testing.T) {
	scores := []float64{1, 1000, 2, -3}
	valid := []bool{true, false, true, true}
	got := make([]float64, 4)
	Exact{}.SoftmaxRow(got, scores, valid, DegreeLow)
	z := math.Exp(1) + math.Exp(2) + math.Exp(-3)
	want := []float64{math.Exp(1) / z, 0, math.Exp(2) / z, math.Exp(-3) / z}
	if d := maxAbsDiff(got, want); d > 1e-15 || got[1] != 0 {
		t.Errorf("SoftmaxRow = %v, want %v", got, want)
	}
	// MaskedSoftmax with a crude exp still zeroes invalid entries.
	MaskedSoftmax(got, scores, valid, func(x float64) float64 { return 1 + x*x }, func(x float64) float64 { return 1 / x })
	if got[1] != 0 || math.Abs(got[0]+got[2]+got[3]-1) > 1e-15 {
		t.Errorf("MaskedSoftmax = %v", got)
	}
	if DegreeHigh.String() != "high" || DegreeLow.String() != "low" {
		t.Error("Degree names")
	}
}
