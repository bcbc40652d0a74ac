package models

import (
	"errors"
	"fmt"
	"math"
)

// ForwardOptions configures ServerModel.Forward. The zero value, like a nil
// *ForwardOptions, gives the exact forward with every token kept at
// DegreeHigh.
type ForwardOptions struct {
	// Nonlinear evaluates softmax, GELU, 1/√x and tanh; nil means Exact.
	Nonlinear Nonlinearities
	// Schedule chooses after each layer's attention block which tokens
	// survive and their degrees; nil keeps every token at DegreeHigh.
	Schedule Schedule
}

// Schedule decides token pruning and degree selection. Forward calls
// AfterAttention once per layer l, after the attention block (attention,
// output projection, residual and LayerNorm) and before the feed-forward
// block, where the encrypted protocol runs its bridge (docs/design.md, "One inference, step by step").
//
// The returned Decision applies from that point on: dropped tokens are
// removed before layer l's feed-forward block and for every later layer, and
// the degrees are used by layer l's feed-forward block (GELU, LayerNorm) and
// by every later layer until the next decision. The first layer's attention
// block runs every token at DegreeHigh.
type Schedule interface {
	AfterAttention(att *LayerAttention) (Decision, error)
}

// ScheduleFunc adapts a function to the Schedule interface.
type ScheduleFunc func(att *LayerAttention) (Decision, error)

// AfterAttention calls f(att).
func (f ScheduleFunc) AfterAttention(att *LayerAttention) (Decision, error) { return f(att) }

// LayerAttention is what a Schedule sees of one layer: the rows still alive
// and the attention probabilities among them. Row 0 is always the CLS token.
// A Schedule must not modify it; it may keep it.
type LayerAttention struct {
	// Layer is the index of the encoder layer, from 0.
	Layer int
	// Tokens holds the original position (in the padded input) of each
	// alive row; Tokens[0] == 0.
	Tokens []int
	// Valid reports for each alive row whether it is a real token (true)
	// or padding (false). Padding rows are never attended to.
	Valid []bool
	// Degrees holds the degree each alive row used in this attention block.
	Degrees []Degree
	// Probs holds one n_l x n_l matrix per head: Probs[h].At(i, j) is how
	// much query row i attends to key row j. Columns of padding rows are 0.
	Probs []Matrix
}

// Importance returns each alive row's importance score, the attention it
// receives averaged over heads and over the non-padding query rows:
// s_j = 1/(H·m) Σ_h Σ_{i valid} Probs[h](i, j), with m valid rows. Padding
// rows score 0. This is the score the server computes homomorphically.
func (a *LayerAttention) Importance() []float64 {
	n := len(a.Tokens)
	scores := make([]float64, n)
	m := 0
	for _, v := range a.Valid {
		if v {
			m++
		}
	}
	if m == 0 || len(a.Probs) == 0 {
		return scores
	}
	for _, p := range a.Probs {
		for i := 0; i < n; i++ {
			if !a.Valid[i] {
				continue
			}
			for j, v := range p.Row(i) {
				scores[j] += v
			}
		}
	}
	scale := 1 / float64(len(a.Probs)*m)
	for j := range scores {
		scores[j] *= scale
	}
	return scores
}

// Decision is a Schedule's choice for the alive rows of one layer, indexed
// like LayerAttention.Tokens.
type Decision struct {
	// Keep[i] reports whether row i survives; nil keeps every row. Keep[0]
	// (CLS) must be true.
	Keep []bool
	// Degrees[i] is the degree of row i from now on; nil means DegreeHigh
	// for every row. Degrees[0] (CLS) must be DegreeHigh. Entries of
	// dropped rows are ignored.
	Degrees []Degree
	// AllValid makes every kept row a real token from now on: padding rows
	// kept are attended to and count as queries of the importance scores.
	// The encrypted bridge does this after a pruning step (its next masks
	// are the all-valid masks of the public kept count), which matters when
	// padding is kept (engine's ClientConfig.HideLength).
	AllValid bool
}

// check validates d for n alive rows.
func (d Decision) check(n int) error {
	if d.Keep != nil {
		if len(d.Keep) != n {
			return fmt.Errorf("Keep has %d entries for %d rows", len(d.Keep), n)
		}
		if !d.Keep[0] {
			return errors.New("Keep drops the CLS token")
		}
	}
	if d.Degrees != nil {
		if len(d.Degrees) != n {
			return fmt.Errorf("Degrees has %d entries for %d rows", len(d.Degrees), n)
		}
		if d.Degrees[0] != DegreeHigh {
			return errors.New("Degrees gives the CLS token a low degree")
		}
		for i, deg := range d.Degrees {
			if deg != DegreeHigh && deg != DegreeLow {
				return fmt.Errorf("Degrees[%d] is %v", i, deg)
			}
		}
	}
	return nil
}

// Embed computes X_0, the n x d input of the encoder: for each position i,
// LayerNorm(word[ids[i]] + tokenType[typeIDs[i]] + position[i]), exactly (the
// client holds the embedding layer in the clear). typeIDs may be nil for all
// zeros. n = len(ids) must be 1 to MaxPositions.
func (c *ClientModel) Embed(ids, typeIDs []int) (Matrix, error) {
	if err := c.Validate(); err != nil {
		return Matrix{}, fmt.Errorf("cannot Embed: %w", err)
	}
	cfg := c.Config
	n := len(ids)
	if n == 0 || n > cfg.MaxPositions() {
		return Matrix{}, fmt.Errorf("cannot Embed: %d ids, want 1 to max_position_embeddings = %d", n, cfg.MaxPositions())
	}
	if typeIDs != nil && len(typeIDs) != n {
		return Matrix{}, fmt.Errorf("cannot Embed: %d type ids for %d ids", len(typeIDs), n)
	}
	e := &c.Embeddings
	x := NewMatrix(n, cfg.HiddenSize())
	for i, id := range ids {
		if id < 0 || id >= cfg.VocabSize() {
			return Matrix{}, fmt.Errorf("cannot Embed: ids[%d] = %d is outside the vocabulary [0, %d)", i, id, cfg.VocabSize())
		}
		tt := 0
		if typeIDs != nil {
			tt = typeIDs[i]
		}
		if tt < 0 || tt >= cfg.TypeVocabSize() {
			return Matrix{}, fmt.Errorf("cannot Embed: typeIDs[%d] = %d is outside [0, %d)", i, tt, cfg.TypeVocabSize())
		}
		row, w, t, p := x.Row(i), e.Word.Row(id), e.TokenType.Row(tt), e.Position.Row(i)
		for j := range row {
			row[j] = (w[j] + t[j]) + p[j] // Hugging Face's order of additions
		}
	}
	layerNormInPlace(x, &e.LayerNorm, nil, Exact{})
	return x, nil
}

// Forward runs the encoder, the pooler and the classifier on X_0 and
// returns the logits. mask is the attention mask of X_0's rows (1 for a real
// token, 0 for padding; mask[0], the CLS token, must be 1). opts may be nil
// for the exact forward.
func (s *ServerModel) Forward(x0 Matrix, mask []int, opts *ForwardOptions) ([]float64, error) {
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("cannot Forward: %w", err)
	}
	valid, err := s.checkInput(x0, mask)
	if err != nil {
		return nil, fmt.Errorf("cannot Forward: %w", err)
	}
	var o ForwardOptions
	if opts != nil {
		o = *opts
	}
	nl := o.Nonlinear
	if nl == nil {
		nl = Exact{}
	}
	n := x0.Rows
	tokens := make([]int, n)
	for i := range tokens {
		tokens[i] = i
	}
	deg := make([]Degree, n)
	x := x0
	for l := range s.Layers {
		h, probs := s.attentionBlock(l, x, valid, deg, nl)
		if o.Schedule != nil {
			att := &LayerAttention{Layer: l, Tokens: tokens, Valid: valid, Degrees: deg, Probs: probs}
			dec, err := o.Schedule.AfterAttention(att)
			if err != nil {
				return nil, fmt.Errorf("cannot Forward: schedule at layer %d: %w", l, err)
			}
			if err := dec.check(len(tokens)); err != nil {
				return nil, fmt.Errorf("cannot Forward: schedule at layer %d: %w", l, err)
			}
			h, tokens, valid, deg = applyDecision(dec, h, tokens, valid)
			if dec.AllValid {
				for i := range valid {
					valid[i] = true
				}
			}
		}
		x = s.feedForwardBlock(l, h, deg, nl)
	}
	return s.head(x.Row(0), nl), nil
}

// applyDecision drops the rows dec does not keep and returns the surviving
// rows, their original positions, validity and new degrees.
func applyDecision(dec Decision, h Matrix, tokens []int, valid []bool) (Matrix, []int, []bool, []Degree) {
	var rows []int
	for i := range tokens {
		if dec.Keep == nil || dec.Keep[i] {
			rows = append(rows, i)
		}
	}
	newTokens := make([]int, len(rows))
	newValid := make([]bool, len(rows))
	newDeg := make([]Degree, len(rows))
	for k, i := range rows {
		newTokens[k], newValid[k] = tokens[i], valid[i]
		if dec.Degrees != nil {
			newDeg[k] = dec.Degrees[i]
		}
	}
	if len(rows) == len(tokens) {
		return h, newTokens, newValid, newDeg
	}
	kept, _ := h.SelectRowsNew(rows) // rows are in range by construction
	return kept, newTokens, newValid, newDeg
}

// checkInput validates X_0 and its attention mask and returns the mask as
// booleans.
func (s *ServerModel) checkInput(x Matrix, mask []int) ([]bool, error) {
	if !x.valid() || x.Rows == 0 || x.Cols != s.Config.HiddenSize() {
		return nil, fmt.Errorf("X_0 is %dx%d with %d values, want n x %d with n >= 1",
			x.Rows, x.Cols, len(x.Data), s.Config.HiddenSize())
	}
	if len(mask) != x.Rows {
		return nil, fmt.Errorf("attention mask has %d entries for %d rows", len(mask), x.Rows)
	}
	valid := make([]bool, len(mask))
	for i, m := range mask {
		if m != 0 && m != 1 {
			return nil, fmt.Errorf("attention mask[%d] is %d, want 0 or 1", i, m)
		}
		valid[i] = m == 1
	}
	if !valid[0] {
		return nil, errors.New("attention mask[0] (the CLS token) is 0")
	}
	for i, v := range x.Data {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("X_0 holds %v at row %d, column %d", v, i/x.Cols, i%x.Cols)
		}
	}
	return valid, nil
}

// checkRows validates the per-row arguments of the exported block functions.
func (s *ServerModel) checkRows(layer int, x Matrix, valid []bool, deg []Degree, nl Nonlinearities) error {
	if layer < 0 || layer >= len(s.Layers) {
		return fmt.Errorf("layer %d is outside [0, %d)", layer, len(s.Layers))
	}
	if err := s.checkLayer(layer); err != nil {
		return err
	}
	if !x.valid() || x.Rows == 0 || x.Cols != s.Config.HiddenSize() {
		return fmt.Errorf("input is %dx%d with %d values, want n x %d with n >= 1", x.Rows, x.Cols, len(x.Data), s.Config.HiddenSize())
	}
	if valid != nil && len(valid) != x.Rows {
		return fmt.Errorf("valid has %d entries for %d rows", len(valid), x.Rows)
	}
	if valid != nil && !valid[0] {
		return errors.New("valid[0] (the CLS token) is false")
	}
	if deg != nil && len(deg) != x.Rows {
		return fmt.Errorf("degrees has %d entries for %d rows", len(deg), x.Rows)
	}
	if nl == nil {
		return errors.New("nil Nonlinearities")
	}
	return nil
}

// checkLayer validates the weights of one encoder layer.
func (s *ServerModel) checkLayer(layer int) error {
	for _, b := range s.layerTensors(layer) {
		if err := b.check(); err != nil {
			return err
		}
	}
	return checkEps(fmt.Sprintf("layer %d LayerNorm", layer), min(s.Layers[layer].AttnNorm.Eps, s.Layers[layer].OutputNorm.Eps))
}

// AttentionBlock runs the attention block of encoder layer `layer` on the
// rows of x: LayerNorm(x + MultiHeadAttention(x)). valid marks the rows
// that may be attended to (nil: all); deg gives each row's degree (nil: all
// high). It returns the block's output and each head's n x n attention
// probabilities.
func (s *ServerModel) AttentionBlock(layer int, x Matrix, valid []bool, deg []Degree, nl Nonlinearities) (Matrix, []Matrix, error) {
	if err := s.checkRows(layer, x, valid, deg, nl); err != nil {
		return Matrix{}, nil, fmt.Errorf("cannot AttentionBlock: %w", err)
	}
	if valid == nil {
		valid = make([]bool, x.Rows)
		for i := range valid {
			valid[i] = true
		}
	}
	if deg == nil {
		deg = make([]Degree, x.Rows)
	}
	h, probs := s.attentionBlock(layer, x, valid, deg, nl)
	return h, probs, nil
}

// FeedForwardBlock runs the feed-forward block of encoder layer `layer` on
// the rows of h: LayerNorm(h + W_2·GELU(W_1·h + b_1) + b_2). deg gives each
// row's degree (nil: all high).
func (s *ServerModel) FeedForwardBlock(layer int, h Matrix, deg []Degree, nl Nonlinearities) (Matrix, error) {
	if err := s.checkRows(layer, h, nil, deg, nl); err != nil {
		return Matrix{}, fmt.Errorf("cannot FeedForwardBlock: %w", err)
	}
	if deg == nil {
		deg = make([]Degree, h.Rows)
	}
	return s.feedForwardBlock(layer, h, deg, nl), nil
}

// Head runs the pooler and the classifier on the final hidden state of the
// CLS token: logits = W_c·tanh(W_p·cls + b_p) + b_c.
func (s *ServerModel) Head(cls []float64, nl Nonlinearities) ([]float64, error) {
	if len(cls) != s.Config.HiddenSize() {
		return nil, fmt.Errorf("cannot Head: CLS state has %d entries, want %d", len(cls), s.Config.HiddenSize())
	}
	if nl == nil {
		return nil, errors.New("cannot Head: nil Nonlinearities")
	}
	for _, b := range linearBindings(bertPrefix+"pooler.dense", &s.Pooler, s.Config.HiddenSize(), s.Config.HiddenSize()) {
		if err := b.check(); err != nil {
			return nil, fmt.Errorf("cannot Head: %w", err)
		}
	}
	for _, b := range linearBindings("classifier", &s.Classifier, s.Config.NumLabels(), s.Config.HiddenSize()) {
		if err := b.check(); err != nil {
			return nil, fmt.Errorf("cannot Head: %w", err)
		}
	}
	return s.head(cls, nl), nil
}

// attentionBlock is AttentionBlock on validated arguments.
func (s *ServerModel) attentionBlock(layer int, x Matrix, valid []bool, deg []Degree, nl Nonlinearities) (Matrix, []Matrix) {
	ly := &s.Layers[layer]
	n := x.Rows
	heads, dh := s.Config.NumHeads(), s.Config.HeadDim()
	q, k, v := linear(x, &ly.Query), linear(x, &ly.Key), linear(x, &ly.Value)
	ctx := NewMatrix(n, s.Config.HiddenSize())
	probs := make([]Matrix, heads)
	scale := math.Sqrt(float64(dh))
	for hd := 0; hd < heads; hd++ {
		qh, _ := q.ColsNew(hd*dh, (hd+1)*dh)
		kh, _ := k.ColsNew(hd*dh, (hd+1)*dh)
		vh, _ := v.ColsNew(hd*dh, (hd+1)*dh)
		scores, _ := MulTransBNew(qh, kh)
		for i := range scores.Data {
			scores.Data[i] /= scale // as Hugging Face: (Q·Kᵀ)/√d_h
		}
		p := NewMatrix(n, n)
		for i := 0; i < n; i++ {
			nl.SoftmaxRow(p.Row(i), scores.Row(i), valid, deg[i])
		}
		probs[hd] = p
		ch, _ := MulNew(p, vh)
		for i := 0; i < n; i++ {
			copy(ctx.Row(i)[hd*dh:(hd+1)*dh], ch.Row(i))
		}
	}
	out := linear(ctx, &ly.AttnOutput)
	addInPlace(out, x)
	layerNormInPlace(out, &ly.AttnNorm, deg, nl)
	return out, probs
}

// feedForwardBlock is FeedForwardBlock on validated arguments.
func (s *ServerModel) feedForwardBlock(layer int, h Matrix, deg []Degree, nl Nonlinearities) Matrix {
	ly := &s.Layers[layer]
	inter := linear(h, &ly.Intermediate)
	for i := 0; i < inter.Rows; i++ {
		row := inter.Row(i)
		for j, v := range row {
			row[j] = nl.GELU(v, deg[i])
		}
	}
	out := linear(inter, &ly.Output)
	addInPlace(out, h)
	layerNormInPlace(out, &ly.OutputNorm, deg, nl)
	return out
}

// head is Head on validated arguments.
func (s *ServerModel) head(cls []float64, nl Nonlinearities) []float64 {
	x := Matrix{Rows: 1, Cols: len(cls), Data: cls}
	pooled := linear(x, &s.Pooler)
	for j, v := range pooled.Data {
		pooled.Data[j] = nl.Tanh(v, DegreeHigh)
	}
	return linear(pooled, &s.Classifier).Data
}

// linear returns x·Wᵀ + b for a validated layer l.
func linear(x Matrix, l *Linear) Matrix {
	out := NewMatrix(x.Rows, l.Weight.Rows)
	if err := MulTransB(x, l.Weight, out); err != nil {
		// Shapes were validated before any block runs.
		panic("models: " + err.Error())
	}
	for i := 0; i < out.Rows; i++ {
		row := out.Row(i)
		for j := range row {
			row[j] += l.Bias[j]
		}
	}
	return out
}

// addInPlace adds b to a element-wise.
func addInPlace(a, b Matrix) {
	for i := range a.Data {
		a.Data[i] += b.Data[i]
	}
}

// layerNormInPlace normalizes each row of x: (x - mean)·InvSqrt(var + eps)·γ
// + β, with the biased variance as PyTorch uses. deg may be nil (all high).
func layerNormInPlace(x Matrix, ln *LayerNorm, deg []Degree, nl Nonlinearities) {
	d := float64(x.Cols)
	for i := 0; i < x.Rows; i++ {
		row := x.Row(i)
		var mean float64
		for _, v := range row {
			mean += v
		}
		mean /= d
		var variance float64
		for _, v := range row {
			variance += (v - mean) * (v - mean)
		}
		variance /= d
		dg := DegreeHigh
		if deg != nil {
			dg = deg[i]
		}
		r := nl.InvSqrt(variance+ln.Eps, dg)
		for j, v := range row {
			row[j] = (v-mean)*r*ln.Gamma[j] + ln.Beta[j]
		}
	}
}

// Logits runs the exact forward on padded input ids and their attention
// mask, with all token types 0, and returns the logits.
func (m *Model) Logits(ids, mask []int) ([]float64, error) {
	return m.Forward(Encoding{IDs: ids, AttentionMask: mask}, nil)
}

// Forward embeds enc on the client side and runs the server side with opts
// (nil: exact, no pruning), returning the logits. enc.TypeIDs may be nil.
func (m *Model) Forward(enc Encoding, opts *ForwardOptions) ([]float64, error) {
	if m.Client == nil || m.Server == nil {
		return nil, errors.New("cannot Forward: model has a nil part")
	}
	if len(enc.AttentionMask) != len(enc.IDs) {
		return nil, fmt.Errorf("cannot Forward: %d ids but %d attention mask entries", len(enc.IDs), len(enc.AttentionMask))
	}
	x0, err := m.Client.Embed(enc.IDs, enc.TypeIDs)
	if err != nil {
		return nil, err
	}
	return m.Server.Forward(x0, enc.AttentionMask, opts)
}
