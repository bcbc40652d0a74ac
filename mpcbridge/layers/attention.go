package layers

import (
	"context"
	"fmt"
	"math"

	"github.com/cipherprune/cipherprune/ckks/polymat"
	"github.com/cipherprune/cipherprune/models"
	"github.com/cipherprune/cipherprune/models/approx"
	"github.com/cipherprune/cipherprune/mpcbridge/matmul"
	"github.com/cipherprune/cipherprune/mpcbridge/share"
)

// AttnShape is the public shape of an attention stage: Rows is the most
// rows a call may have (the blocks are chosen for it), Hidden the width of
// x, Heads the number of heads (Hidden/Heads each).
type AttnShape struct {
	Rows, Hidden, Heads int
}

// HeadDim returns Hidden/Heads.
func (s AttnShape) HeadDim() int { return s.Hidden / s.Heads }

// AttnPlan is the public plan of an attention stage: its shape and the
// blocks of its two products by the server's weights, which both parties
// derive from Parameters (PlanAttention). The blocks of the shared
// products follow from each call's public row count
// (sharedmul.Parameters.ChooseBlock).
type AttnPlan struct {
	AttnShape
	// QKV is the block of x·[Wq/√dh | Wk | Wv] (Rows x Hidden by Hidden x
	// 3·Hidden), Out of the output projection (Hidden x Hidden).
	QKV, Out polymat.Block
}

// PlanAttention chooses the blocks of both products for s within the
// weight budget (matmul.Parameters.ChooseBlock).
func (p Parameters) PlanAttention(s AttnShape) (AttnPlan, error) {
	if s.Rows < 1 || s.Hidden < 1 || s.Heads < 1 || s.Hidden%s.Heads != 0 || s.Rows > MaxTokens {
		return AttnPlan{}, fmt.Errorf("cannot PlanAttention: shape %+v: want 1 <= Rows <= %d and Heads dividing Hidden", s, MaxTokens)
	}
	qkv, err := p.chooseBlock(polymat.Dims{Rows: s.Rows, In: s.Hidden, Out: 3 * s.Hidden})
	if err != nil {
		return AttnPlan{}, fmt.Errorf("cannot PlanAttention: %w", err)
	}
	out, err := p.chooseBlock(polymat.Dims{Rows: s.Rows, In: s.Hidden, Out: s.Hidden})
	if err != nil {
		return AttnPlan{}, fmt.Errorf("cannot PlanAttention: %w", err)
	}
	return AttnPlan{AttnShape: s, QKV: qkv.Block, Out: out.Block}, nil
}

// layouts returns the layouts of both products for n rows.
func (pl AttnPlan) layouts(ring polymat.Parameters, n int) (qkv, out polymat.Layout, err error) {
	if n < 1 || n > pl.Rows {
		return qkv, out, fmt.Errorf("%d rows, the plan allows 1 to %d", n, pl.Rows)
	}
	if qkv, err = balanced(ring, n, pl.Hidden, 3*pl.Hidden, pl.QKV); err != nil {
		return qkv, out, err
	}
	out, err = balanced(ring, n, pl.Hidden, pl.Hidden, pl.Out)
	return qkv, out, err
}

// balanced returns the layout of an n-row product with b's D1 and D2 (the
// weights' encoding) and D0 balanced over ceil(n/D0) row blocks.
func balanced(ring polymat.Parameters, n, in, out int, b polymat.Block) (polymat.Layout, error) {
	blocks := (n + b.D0 - 1) / b.D0
	b.D0 = (n + blocks - 1) / blocks
	return polymat.NewLayout(ring, polymat.Dims{Rows: n, In: in, Out: out}, b)
}

// AttnWeights are the server's weights of one attention stage: the
// queries (scaled by 1/√dh), keys and values in one product, the output
// projection, both quantized and pre-encoded for the plan's blocks, and
// the LayerNorm after the residual. Read-only once built.
type AttnWeights struct {
	plan     AttnPlan
	qkv, out *linear
	norm     models.LayerNorm
}

// NewAttnWeights quantizes and encodes the stage's weights for plan (the
// layers of models.EncoderLayer: Query, Key, Value, AttnOutput as PyTorch
// stores them, Out x In, and AttnNorm). The queries' weights and bias are
// divided by √dh here, so that the scores need no scaling of their own
// (the plaintext forward divides Q·Kᵀ by √dh: the same value).
func NewAttnWeights(ctx context.Context, p Parameters, plan AttnPlan, q, k, v, o *models.Linear, norm *models.LayerNorm, workers int) (*AttnWeights, error) {
	if q == nil || k == nil || v == nil || o == nil {
		return nil, fmt.Errorf("cannot NewAttnWeights: nil layer")
	}
	if err := p.checkNorm(norm); err != nil {
		return nil, fmt.Errorf("cannot NewAttnWeights: %w", err)
	}
	h := plan.Hidden
	for _, l := range []*models.Linear{q, k, v, o} {
		if l.In() != h || l.Out() != h {
			return nil, fmt.Errorf("cannot NewAttnWeights: a %dx%d layer for hidden %d", l.Out(), l.In(), h)
		}
	}
	if len(norm.Gamma) != h {
		return nil, fmt.Errorf("cannot NewAttnWeights: LayerNorm of %d for hidden %d", len(norm.Gamma), h)
	}
	qkvLay, outLay, err := plan.layouts(p.mm.Ring(), plan.Rows)
	if err != nil {
		return nil, fmt.Errorf("cannot NewAttnWeights: %w", err)
	}
	wqkv, bqkv := stackQKV(q, k, v, 1/math.Sqrt(float64(plan.HeadDim())))
	w := &AttnWeights{plan: plan, norm: models.LayerNorm{
		Gamma: append([]float64(nil), norm.Gamma...),
		Beta:  append([]float64(nil), norm.Beta...),
		Eps:   norm.Eps,
	}}
	if w.qkv, err = newLinear(ctx, p, qkvLay, wqkv, bqkv, workers); err != nil {
		return nil, fmt.Errorf("cannot NewAttnWeights: QKV: %w", err)
	}
	if w.out, err = newLinear(ctx, p, outLay, transpose(o.Weight), o.Bias, workers); err != nil {
		return nil, fmt.Errorf("cannot NewAttnWeights: output: %w", err)
	}
	return w, nil
}

// stackQKV returns [scale·Wq | Wk | Wv] (Hidden x 3·Hidden, row-major,
// the layout of mpcbridge/matmul) and the biases in the same order.
func stackQKV(q, k, v *models.Linear, scale float64) (w, b []float64) {
	h := q.In()
	w, b = make([]float64, h*3*h), make([]float64, 3*h)
	for m, l := range []*models.Linear{q, k, v} {
		s := 1.0
		if m == 0 {
			s = scale
		}
		for o := 0; o < h; o++ {
			for i, x := range l.Weight.Row(o) {
				w[i*3*h+m*h+o] = s * x
			}
			b[m*h+o] = s * l.Bias[o]
		}
	}
	return w, b
}

// Plan returns the plan the weights are encoded for.
func (w *AttnWeights) Plan() AttnPlan { return w.plan }

// MemoryBytes returns the memory of both matrices, encoded and not.
func (w *AttnWeights) MemoryBytes() int64 { return w.qkv.memoryBytes() + w.out.memoryBytes() }

// Rows are the facts about one call's rows that both parties pass.
type Rows struct {
	// Degrees gives each row's degree (nil: every row approx.High).
	// Public.
	Degrees []approx.Degree
	// Valid marks the rows that are real tokens (nil: every row): padding
	// keys get no attention, and padding queries count in no importance
	// score. Public, unless Hidden.
	Valid []bool
	// Hidden makes Valid the client's secret (the padding of the first
	// layers, before a pruning step reveals a count): the server passes a
	// nil Valid, the client its own; every row is then a key, the client's
	// 0/1 key mask enters as its share of one more Hadamard product with
	// the exponentials, and the scores average over the valid queries by a
	// shared product with the client's weights 2^4·valid_i/m.
	Hidden bool
	// Queries, when not zero, is how many leading rows are queries: a
	// model's last layer needs only the CLS row's output (1). Every row
	// is still a key; the stage returns Queries rows and no importance
	// scores, and Degrees covers the query rows only. Public.
	Queries int
}

// Attention computes shares of the attention stage of a post-LayerNorm
// encoder layer, LayerNorm(x + Wo·concat_h(softmax((Q_h·K_hᵀ)/√dh)·V_h) +
// bo), and of every row's importance score (the attention it receives,
// averaged over the heads and the valid query rows), from the server's
// share x (n x Hidden, n <= the plan's Rows) and its weights. valid marks
// the rows that are real tokens (nil: all; padding keys get no attention
// and padding queries count in no score), degs each row's degree (nil: all
// approx.High); rows says which rows are valid and their degrees. It
// returns the server's shares of the output (n x Hidden) and of the
// scores (n), these at Parameters.ScoreFracBits fractional bits. The
// client calls Client.Attention. The package
// documentation gives the protocol.
func (s *Server) Attention(ctx context.Context, conn Conn, w *AttnWeights, rows Rows, x share.Vector) (y, scores share.Vector, err error) {
	if w == nil {
		return nil, nil, fmt.Errorf("cannot Attention: nil weights")
	}
	if rows.Hidden && rows.Valid != nil {
		return nil, nil, fmt.Errorf("cannot Attention: hidden valid rows passed to the server")
	}
	if y, scores, err = attention(ctx, serverParty{s}, conn, w.plan, w, rows, x); err != nil {
		return nil, nil, fmt.Errorf("cannot Attention: %w", err)
	}
	return y, scores, nil
}

// Attention runs the client's side of Server.Attention: x is its share
// (n x Hidden), plan and rows the plan and rows the server uses, with the
// client's own Valid when rows.Hidden.
func (c *Client) Attention(ctx context.Context, conn Conn, plan AttnPlan, rows Rows, x share.Vector) (y, scores share.Vector, err error) {
	if rows.Hidden && (rows.Valid == nil || !rows.Valid[0]) {
		return nil, nil, fmt.Errorf("cannot Attention: hidden valid rows need the client's flags, row 0 valid")
	}
	if y, scores, err = attention(ctx, clientParty{c}, conn, plan, nil, rows, x); err != nil {
		return nil, nil, fmt.Errorf("cannot Attention: %w", err)
	}
	return y, scores, nil
}

// attention is the stage for either party (w nil for the client).
func attention(ctx context.Context, pt party, conn Conn, pl AttnPlan, w *AttnWeights, rows Rows, x share.Vector) (y, scores share.Vector, err error) {
	p := pt.params()
	n, err := checkRows(x, pl.Hidden)
	if err != nil {
		return nil, nil, err
	}
	hd, err := newHeads(pl.AttnShape, n, rows)
	if err != nil {
		return nil, nil, err
	}
	nq := hd.nq
	sp, err := spans(rows.Degrees, nq)
	if err != nil {
		return nil, nil, err
	}
	if n > pl.Rows {
		return nil, nil, fmt.Errorf("%d rows, the plan allows at most %d", n, pl.Rows)
	}
	qkvLay, qkvFly, err := p.callLayout(n, pl.Hidden, 3*pl.Hidden, pl.QKV)
	if err != nil {
		return nil, nil, err
	}
	outLay, outFly, err := p.callLayout(nq, pl.Hidden, pl.Hidden, pl.Out)
	if err != nil {
		return nil, nil, err
	}
	var wqkv, wout *matmul.Weights
	var norm *models.LayerNorm
	if w != nil {
		if wqkv, err = w.qkv.forCall(p, qkvLay, qkvFly); err != nil {
			return nil, nil, err
		}
		if wout, err = w.out.forCall(p, outLay, outFly); err != nil {
			return nil, nil, err
		}
		norm = &w.norm
	}
	qkv, err := pt.linear(ctx, conn, qkvLay, wqkv, x)
	if err != nil {
		return nil, nil, fmt.Errorf("QKV: %w", err)
	}
	pt.mark("QKV")
	probs, err := softmax(ctx, pt, conn, hd, sp, qkv)
	if err != nil {
		return nil, nil, err
	}
	cv, err := contextVectors(ctx, pt, conn, hd, probs, qkv)
	if err != nil {
		return nil, nil, err
	}
	o, err := pt.linear(ctx, conn, outLay, wout, cv)
	if err != nil {
		return nil, nil, fmt.Errorf("output projection: %w", err)
	}
	pt.mark("Wo")
	if y, err = layerNorm(ctx, pt, conn, norm, pl.Hidden, rows.Degrees, addVec(x[:nq*pl.Hidden], o)); err != nil {
		return nil, nil, err
	}
	if nq < n {
		return y, nil, nil
	}
	if scores, err = importance(ctx, pt, conn, hd, probs); err != nil {
		return nil, nil, err
	}
	return y, scores, nil
}
