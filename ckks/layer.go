package ckks

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"

	"github.com/cipherprune/cipherprune/models"
	"github.com/cipherprune/cipherprune/models/approx"
)

// EncodedLayer is one encoder layer prepared for the homomorphic
// evaluator: its dense layers as EncodedLinear (the GELU change of basis
// folded into the intermediate layer) and its LayerNorm parameters.
type EncodedLayer struct {
	Query, Key, Value, AttnOutput *EncodedLinear
	Intermediate, Output          *EncodedLinear
	AttnNorm, OutputNorm          models.LayerNorm
	Config                        AttentionConfig
}

// NewEncodedLayer prepares l for the block size and slot count of a layout.
func NewEncodedLayer(l *models.EncoderLayer, cfg AttentionConfig, block, slots int, reg *approx.Registry) (*EncodedLayer, error) {
	if l == nil {
		return nil, errors.New("cannot NewEncodedLayer: nil layer")
	}
	if reg == nil {
		reg = approx.Default()
	}
	if cfg.Heads < 1 {
		return nil, fmt.Errorf("cannot NewEncodedLayer: %d heads", cfg.Heads)
	}
	el := &EncodedLayer{AttnNorm: l.AttnNorm, OutputNorm: l.OutputNorm, Config: cfg}
	gs, gc := reg.Recipe(approx.GELU, approx.High).ChangeOfBasis()
	// With several heads per ciphertext the attention works in the stacked
	// column order (StackedColumn): the projections write Q, K and V in it
	// and the output projection reads the context in it.
	hidden := l.Query.Weight.Cols
	if hidden%cfg.Heads != 0 || block < 1 || slots%block != 0 {
		return nil, fmt.Errorf("cannot NewEncodedLayer: %d columns for %d heads, block %d of %d slots", hidden, cfg.Heads, block, slots)
	}
	dh := hidden / cfg.Heads
	hp := Layout{Rows: 1, Cols: hidden, Block: block, Slots: slots}.WithHeadDim(dh).HeadsPerCt()
	q, k, v, o := &l.Query, &l.Key, &l.Value, &l.AttnOutput
	if hp > 1 {
		if cfg.Heads%hp != 0 || (slots/block)%dh != 0 {
			return nil, fmt.Errorf("cannot NewEncodedLayer: %d columns per ciphertext for %d heads of %d", slots/block, cfg.Heads, dh)
		}
		perm := func(p int) int { return StackedColumn(p, dh, hp) }
		var err error
		if q, err = permuteOutputs(q, perm); err == nil {
			if k, err = permuteOutputs(k, perm); err == nil {
				if v, err = permuteOutputs(v, perm); err == nil {
					o, err = permuteInputs(o, perm)
				}
			}
		}
		if err != nil {
			return nil, fmt.Errorf("cannot NewEncodedLayer: %w", err)
		}
	}
	var err error
	for _, x := range []struct {
		dst          **EncodedLinear
		src          *models.Linear
		scale, shift float64
	}{
		{&el.Query, q, 1, 0}, {&el.Key, k, 1, 0}, {&el.Value, v, 1, 0},
		{&el.AttnOutput, o, 1, 0}, {&el.Intermediate, &l.Intermediate, gs, gc}, {&el.Output, &l.Output, 1, 0},
	} {
		if *x.dst, err = NewEncodedLinear(x.src, block, slots, x.scale, x.shift); err != nil {
			return nil, fmt.Errorf("cannot NewEncodedLayer: %w", err)
		}
	}
	return el, nil
}

// permuteOutputs returns l with output p computing l's output perm(p).
func permuteOutputs(l *models.Linear, perm func(int) int) (*models.Linear, error) {
	w := l.Weight
	if w.Rows != len(l.Bias) || len(w.Data) != w.Rows*w.Cols {
		return nil, errors.New("invalid linear layer")
	}
	out := &models.Linear{Weight: models.Matrix{Rows: w.Rows, Cols: w.Cols, Data: make([]float64, len(w.Data))}, Bias: make([]float64, w.Rows)}
	for p := 0; p < w.Rows; p++ {
		r := perm(p)
		copy(out.Weight.Data[p*w.Cols:(p+1)*w.Cols], w.Data[r*w.Cols:(r+1)*w.Cols])
		out.Bias[p] = l.Bias[r]
	}
	return out, nil
}

// permuteInputs returns l reading its input perm(p) from position p.
func permuteInputs(l *models.Linear, perm func(int) int) (*models.Linear, error) {
	w := l.Weight
	if w.Rows != len(l.Bias) || len(w.Data) != w.Rows*w.Cols {
		return nil, errors.New("invalid linear layer")
	}
	out := &models.Linear{Weight: models.Matrix{Rows: w.Rows, Cols: w.Cols, Data: make([]float64, len(w.Data))}, Bias: append([]float64(nil), l.Bias...)}
	for r := 0; r < w.Rows; r++ {
		for p := 0; p < w.Cols; p++ {
			out.Weight.Data[r*w.Cols+p] = w.Data[r*w.Cols+perm(p)]
		}
	}
	return out, nil
}

// EncodedHead is the pooler (tanh change of basis folded in) and the classifier.
type EncodedHead struct {
	Pooler, Classifier *EncodedLinear
}

// NewEncodedHead prepares the pooler and classifier of s.
func NewEncodedHead(s *models.ServerModel, block, slots int, reg *approx.Registry) (*EncodedHead, error) {
	if reg == nil {
		reg = approx.Default()
	}
	ts, tc := reg.Recipe(approx.Tanh, approx.High).ChangeOfBasis()
	p, err := NewEncodedLinear(&s.Pooler, block, slots, ts, tc)
	if err != nil {
		return nil, fmt.Errorf("cannot NewEncodedHead: %w", err)
	}
	c, err := NewEncodedLinear(&s.Classifier, block, slots, 1, 0)
	if err != nil {
		return nil, fmt.Errorf("cannot NewEncodedHead: %w", err)
	}
	return &EncodedHead{Pooler: p, Classifier: c}, nil
}

// AttentionBlock runs LayerNorm(X + MultiHeadAttention(X)) and returns it
// with the importance scores. degs are the rows' degrees (nil: all High).
func (ev *Evaluator) AttentionBlock(ctx context.Context, x *CtMatrix, el *EncodedLayer, masks *AttentionMasks, degs DegreeSet, br Refresher, tr *Trace) (*AttentionOutput, error) {
	if err := x.Validate(); err != nil {
		return nil, fmt.Errorf("cannot AttentionBlock: %w", err)
	}
	// Q and K need the scores' 3 levels and the exp refreshes after them,
	// V needs no more than the attention weights after their refresh: the
	// projections run on X dropped to those levels (the residual keeps X),
	// and a refresh of X returns only those.
	expDepth := ev.funcDepth(approx.Exp, degs, true)
	horizon := 0
	if 1+3+expDepth > ev.params.MaxLevel()-ev.reserve {
		horizon = 1 + 3
	}
	xc := x.CopyNew()
	if err := ev.ensureFor(ctx, br, tr, "qkv", 1, horizon, xc.Cts); err != nil {
		return nil, err
	}
	xq := &CtMatrix{Layout: xc.Layout, Cts: ev.trim(xc.Cts, 1+3, expDepth)}
	var q, k, v *CtMatrix
	var err error
	if q, err = ev.Linear(ctx, xq, el.Query); err != nil {
		return nil, fmt.Errorf("cannot AttentionBlock: %w", err)
	}
	if k, err = ev.Linear(ctx, xq, el.Key); err != nil {
		return nil, fmt.Errorf("cannot AttentionBlock: %w", err)
	}
	if v, err = ev.Linear(ctx, xq, el.Value); err != nil {
		return nil, fmt.Errorf("cannot AttentionBlock: %w", err)
	}
	att, scores, err := ev.attention(ctx, q, k, v, masks, el.Config, degs, br, tr)
	if err != nil {
		return nil, fmt.Errorf("cannot AttentionBlock: %w", err)
	}
	if err := ev.ensure(ctx, br, tr, "attention output", 1, att.Cts); err != nil {
		return nil, err
	}
	o, err := ev.Linear(ctx, att, el.AttnOutput)
	if err != nil {
		return nil, fmt.Errorf("cannot AttentionBlock: %w", err)
	}
	if err := ev.residual(o, xc); err != nil {
		return nil, fmt.Errorf("cannot AttentionBlock: %w", err)
	}
	h, err := ev.LayerNorm(ctx, o, &el.AttnNorm, degs, br, tr)
	if err != nil {
		return nil, fmt.Errorf("cannot AttentionBlock: %w", err)
	}
	return &AttentionOutput{Hidden: h, Scores: scores}, nil
}

// residual adds x into y (ciphertext by ciphertext, at the lower level).
func (ev *Evaluator) residual(y, x *CtMatrix) error {
	if len(y.Cts) != len(x.Cts) {
		return fmt.Errorf("residual: %d vs %d ciphertexts", len(y.Cts), len(x.Cts))
	}
	w := ev.workers[0]
	for i := range y.Cts {
		if err := w.addInto(&y.Cts[i], x.Cts[i]); err != nil {
			return err
		}
	}
	return nil
}

// FeedForwardBlock runs LayerNorm(H + W_2·GELU(W_1·H + b_1) + b_2).
func (ev *Evaluator) FeedForwardBlock(ctx context.Context, h *CtMatrix, el *EncodedLayer, degs DegreeSet, br Refresher, tr *Trace) (*CtMatrix, error) {
	if err := h.Validate(); err != nil {
		return nil, fmt.Errorf("cannot FeedForwardBlock: %w", err)
	}
	hc := h.CopyNew()
	if err := ev.ensure(ctx, br, tr, "ffn intermediate", 1, hc.Cts); err != nil {
		return nil, err
	}
	inter, err := ev.Linear(ctx, hc, el.Intermediate)
	if err != nil {
		return nil, fmt.Errorf("cannot FeedForwardBlock: %w", err)
	}
	if err := ev.ensure(ctx, br, tr, "gelu", ev.funcDepth(approx.GELU, degs, true), inter.Cts); err != nil {
		return nil, err
	}
	err = ev.parallel(ctx, len(inter.Cts), func(w *worker, i int) error {
		y, err := w.evalByDegree(ev.reg, approx.GELU, degs, inter.Layout, inter.Cts[i], nil)
		inter.Cts[i] = y
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("cannot FeedForwardBlock (gelu): %w", err)
	}
	if err := ev.ensure(ctx, br, tr, "ffn output", 1, inter.Cts); err != nil {
		return nil, err
	}
	o, err := ev.Linear(ctx, inter, el.Output)
	if err != nil {
		return nil, fmt.Errorf("cannot FeedForwardBlock: %w", err)
	}
	if err := ev.residual(o, hc); err != nil {
		return nil, fmt.Errorf("cannot FeedForwardBlock: %w", err)
	}
	out, err := ev.LayerNorm(ctx, o, &el.OutputNorm, degs, br, tr)
	if err != nil {
		return nil, fmt.Errorf("cannot FeedForwardBlock: %w", err)
	}
	return out, nil
}

// LayerEncoding gives one encoder layer prepared for a block size: the
// bridge may re-pack the kept rows into a smaller block (Layout.Compact),
// after which the layer's feed-forward block and the later layers run on
// that block. An *EncodedLayer serves its own block only;
// LayerEncodingFunc adapts a per-block cache.
type LayerEncoding interface {
	ForBlock(block int) (*EncodedLayer, error)
}

// LayerEncodingFunc is a LayerEncoding backed by a function.
type LayerEncodingFunc func(block int) (*EncodedLayer, error)

// ForBlock returns f(block).
func (f LayerEncodingFunc) ForBlock(block int) (*EncodedLayer, error) { return f(block) }

// ForBlock returns el if it is encoded for block.
func (el *EncodedLayer) ForBlock(block int) (*EncodedLayer, error) {
	if el == nil {
		return nil, errors.New("nil EncodedLayer")
	}
	if b := el.Intermediate.Block; b != block {
		return nil, fmt.Errorf("layer encoded for block %d, not %d", b, block)
	}
	return el, nil
}

// Layer runs one encoder layer: the attention block, the bridge
// (AfterAttention: pruning, degrees, refresh), then the feed-forward block
// on the rows the bridge returns, with enc's encoding for their block.
// degs are the degrees of x's rows.
func (ev *Evaluator) Layer(ctx context.Context, layer int, x *CtMatrix, enc LayerEncoding, masks *AttentionMasks, degs DegreeSet, br Bridge, tr *Trace) (*CtMatrix, *BridgeResult, error) {
	if br == nil {
		return nil, nil, errors.New("cannot Layer: nil bridge")
	}
	if enc == nil || x == nil {
		return nil, nil, errors.New("cannot Layer: nil layer or input")
	}
	el, err := enc.ForBlock(x.Layout.Block)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot Layer %d: %w", layer, err)
	}
	att, err := ev.AttentionBlock(ctx, x, el, masks, degs, br, tr)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot Layer %d: %w", layer, err)
	}
	att.Layer = layer
	res, err := br.AfterAttention(ctx, att)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot Layer %d: bridge: %w", layer, err)
	}
	if res == nil || res.Hidden == nil {
		return nil, nil, fmt.Errorf("cannot Layer %d: bridge returned no hidden state", layer)
	}
	after, err := enc.ForBlock(res.Hidden.Layout.Block)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot Layer %d: after the bridge: %w", layer, err)
	}
	out, err := ev.FeedForwardBlock(ctx, res.Hidden, after, res.Degrees, br, tr)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot Layer %d: %w", layer, err)
	}
	return out, res, nil
}

// Head runs the pooler and the classifier on the CLS row (row 0) of h; the
// logits are in slot 0 of blocks 0..NumLabels-1 of the returned ciphertext
// (Client.DecryptLogits reads them).
func (ev *Evaluator) Head(ctx context.Context, h *CtMatrix, eh *EncodedHead, br Refresher, tr *Trace) (*rlwe.Ciphertext, error) {
	if err := h.Validate(); err != nil {
		return nil, fmt.Errorf("cannot Head: %w", err)
	}
	hc := h.CopyNew()
	if err := ev.ensure(ctx, br, tr, "pooler", 1, hc.Cts); err != nil {
		return nil, err
	}
	p, err := ev.Linear(ctx, hc, eh.Pooler)
	if err != nil {
		return nil, fmt.Errorf("cannot Head: %w", err)
	}
	if err := ev.ensure(ctx, br, tr, "tanh", ev.funcDepth(approx.Tanh, nil, true), p.Cts); err != nil {
		return nil, err
	}
	err = ev.parallel(ctx, len(p.Cts), func(w *worker, i int) error {
		y, err := w.evalRecipe(ev.reg.Recipe(approx.Tanh, approx.High), p.Cts[i], nil)
		p.Cts[i] = y
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("cannot Head (tanh): %w", err)
	}
	if err := ev.ensure(ctx, br, tr, "classifier", 1, p.Cts); err != nil {
		return nil, err
	}
	logits, err := ev.Linear(ctx, p, eh.Classifier)
	if err != nil {
		return nil, fmt.Errorf("cannot Head: %w", err)
	}
	return logits.Cts[0], nil
}

// DecryptLogits reads the labels logits of a Head output for layout lay.
func (c *Client) DecryptLogits(ct *rlwe.Ciphertext, lay Layout, labels int) ([]float64, error) {
	if labels > lay.ColsPerCt() {
		return nil, fmt.Errorf("cannot DecryptLogits: %d labels do not fit one ciphertext", labels)
	}
	v, err := c.DecryptVector(ct)
	if err != nil {
		return nil, fmt.Errorf("cannot DecryptLogits: %w", err)
	}
	out := make([]float64, labels)
	for k := range out {
		out[k] = v[k*lay.Block]
	}
	return out, nil
}

// Shape is the public shape of a model and input that the server's
// rotation plan depends on.
type Shape struct {
	Rows, Hidden, Heads, Intermediate, Labels int
}

// ShapeOf returns the shape of cfg for n token rows.
func ShapeOf(cfg models.Config, n int) Shape {
	return Shape{Rows: n, Hidden: cfg.HiddenSize(), Heads: cfg.NumHeads(), Intermediate: cfg.IntermediateSize(), Labels: cfg.NumLabels()}
}

// Rotations returns every rotation index a layer, the pooler and the
// classifier use for shape s in ciphertexts of slots slots, sorted. Its
// Galois elements (GaloisElements) are the keys the client must send.
func Rotations(s Shape, slots int) ([]int, error) {
	block, err := BlockFor(slots, s.Rows, s.Hidden/s.Heads, s.Heads)
	if err != nil {
		return nil, fmt.Errorf("cannot Rotations: %w", err)
	}
	set := map[int]bool{}
	add := func(rs ...int) {
		for _, r := range rs {
			r = ((r % slots) + slots) % slots
			if r != 0 {
				set[r] = true
			}
		}
	}
	for _, dims := range [][2]int{{s.Hidden, s.Hidden}, {s.Hidden, s.Intermediate}, {s.Intermediate, s.Hidden}, {s.Hidden, s.Labels}} {
		el := &EncodedLinear{In: dims[0], Out: dims[1], Block: block, Slots: slots}
		el.Baby = el.bestBaby()
		add(el.Rotations()...)
	}
	c := slots / block
	add(rotateSumRotations(block, c)...)
	add(newTokenShift(block, slots).rotations()...)
	// With several heads per ciphertext the score column sums run on
	// column blocks of HeadsPerCt token blocks: rotations of their own (the
	// row sums' and the heads' sums are among rotateSum's above).
	lay := Layout{Rows: s.Rows, Cols: s.Hidden, Block: block, Slots: slots}.WithHeadDim(s.Hidden / s.Heads)
	if lay.HeadsPerCt() > 1 {
		add(newColumnSum(scoreLayout(lay)).rotations()...)
	}
	out := make([]int, 0, len(set))
	for r := range set {
		out = append(out, r)
	}
	sort.Ints(out)
	return out, nil
}
