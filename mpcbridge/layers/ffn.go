package layers

import (
	"context"
	"fmt"

	"github.com/cipherprune/cipherprune/models"
	"github.com/cipherprune/cipherprune/models/approx"
	"github.com/cipherprune/cipherprune/mpcbridge/matmul"
	"github.com/cipherprune/cipherprune/mpcbridge/share"
)

// FFNWeights are the server's weights of one feed-forward stage: W1 (+b1)
// and W2 (+b2) quantized and pre-encoded for the plan's blocks
// (matmul.Weights), and the LayerNorm after the residual. Read-only once
// built.
type FFNWeights struct {
	plan     FFNPlan
	up, down *linear
	norm     models.LayerNorm
}

// NewFFNWeights quantizes and encodes the stage's weights for plan: up is
// the intermediate dense layer (W1: Intermediate x Hidden as PyTorch
// stores it, b1), down the output layer (W2: Hidden x Intermediate, b2),
// norm the LayerNorm after the residual (models.EncoderLayer's
// Intermediate, Output and OutputNorm). matmul.NewWeights checks the
// public output bound on each.
func NewFFNWeights(ctx context.Context, p Parameters, plan FFNPlan, up, down *models.Linear, norm *models.LayerNorm, workers int) (*FFNWeights, error) {
	if up == nil || down == nil {
		return nil, fmt.Errorf("cannot NewFFNWeights: nil layer")
	}
	if err := p.checkNorm(norm); err != nil {
		return nil, fmt.Errorf("cannot NewFFNWeights: %w", err)
	}
	h, m := plan.Hidden, plan.Intermediate
	if up.In() != h || up.Out() != m || down.In() != m || down.Out() != h || len(norm.Gamma) != h {
		return nil, fmt.Errorf("cannot NewFFNWeights: layers %dx%d and %dx%d and LayerNorm of %d for the plan's hidden %d and intermediate %d",
			up.Out(), up.In(), down.Out(), down.In(), len(norm.Gamma), h, m)
	}
	upLay, downLay, err := plan.layouts(p.mm.Ring(), plan.Rows)
	if err != nil {
		return nil, fmt.Errorf("cannot NewFFNWeights: %w", err)
	}
	w := &FFNWeights{plan: plan, norm: models.LayerNorm{
		Gamma: append([]float64(nil), norm.Gamma...),
		Beta:  append([]float64(nil), norm.Beta...),
		Eps:   norm.Eps,
	}}
	if w.up, err = newLinear(ctx, p, upLay, transpose(up.Weight), up.Bias, workers); err != nil {
		return nil, fmt.Errorf("cannot NewFFNWeights: W1: %w", err)
	}
	if w.down, err = newLinear(ctx, p, downLay, transpose(down.Weight), down.Bias, workers); err != nil {
		return nil, fmt.Errorf("cannot NewFFNWeights: W2: %w", err)
	}
	return w, nil
}

// transpose returns W (Out x In, PyTorch's layout) as In x Out row-major,
// the layout of mpcbridge/matmul.
func transpose(m models.Matrix) []float64 {
	out := make([]float64, len(m.Data))
	for o := 0; o < m.Rows; o++ {
		for k, v := range m.Row(o) {
			out[k*m.Rows+o] = v
		}
	}
	return out
}

// Plan returns the plan the weights are encoded for.
func (w *FFNWeights) Plan() FFNPlan { return w.plan }

// MemoryBytes returns the memory of both matrices, encoded and not.
func (w *FFNWeights) MemoryBytes() int64 { return w.up.memoryBytes() + w.down.memoryBytes() }

// FFN computes shares of the feed-forward stage of a post-LayerNorm
// encoder layer, LayerNorm(h + W2·GELU(W1·h + b1) + b2), from the server's
// share h (n x Hidden, row-major, n <= the plan's Rows) and its weights;
// degs gives each row's public degree (nil: all approx.High) for GELU and
// 1/√x. It returns the server's share, n x Hidden. The client calls
// Client.FFN. Six round trips (W1, GELU, W2, then LayerNorm's three; two
// where its rows fit, fusedNorm), whatever the degree spans (one call per
// polynomial carries them all).
func (s *Server) FFN(ctx context.Context, conn Conn, w *FFNWeights, degs []approx.Degree, h share.Vector) (share.Vector, error) {
	if w == nil {
		return nil, fmt.Errorf("cannot FFN: nil weights")
	}
	y, err := ffn(ctx, serverParty{s}, conn, w.plan, w, degs, h)
	if err != nil {
		return nil, fmt.Errorf("cannot FFN: %w", err)
	}
	return y, nil
}

// FFN runs the client's side of Server.FFN: h is its share (n x Hidden),
// plan and degs the public plan and degrees the server uses.
func (c *Client) FFN(ctx context.Context, conn Conn, plan FFNPlan, degs []approx.Degree, h share.Vector) (share.Vector, error) {
	y, err := ffn(ctx, clientParty{c}, conn, plan, nil, degs, h)
	if err != nil {
		return nil, fmt.Errorf("cannot FFN: %w", err)
	}
	return y, nil
}

// ffn is the stage for either party (w nil for the client).
func ffn(ctx context.Context, pt party, conn Conn, pl FFNPlan, w *FFNWeights, degs []approx.Degree, h share.Vector) (share.Vector, error) {
	n, err := checkRows(h, pl.Hidden)
	if err != nil {
		return nil, err
	}
	sp, err := spans(degs, n)
	if err != nil {
		return nil, err
	}
	p := pt.params()
	if n > pl.Rows {
		return nil, fmt.Errorf("%d rows, the plan allows at most %d", n, pl.Rows)
	}
	upLay, upFly, err := p.callLayout(n, pl.Hidden, pl.Intermediate, pl.Up)
	if err != nil {
		return nil, err
	}
	downLay, downFly, err := p.callLayout(n, pl.Intermediate, pl.Hidden, pl.Down)
	if err != nil {
		return nil, err
	}
	var up, down *matmul.Weights
	var norm *models.LayerNorm
	if w != nil {
		if up, err = w.up.forCall(p, upLay, upFly); err != nil {
			return nil, err
		}
		if down, err = w.down.forCall(p, downLay, downFly); err != nil {
			return nil, err
		}
		norm = &w.norm
	}
	u, err := pt.linear(ctx, conn, upLay, up, h)
	if err != nil {
		return nil, fmt.Errorf("W1: %w", err)
	}
	pt.mark("W1")
	g, err := polySpans(ctx, pt, conn, approx.GELU, sp, pl.Intermediate, u)
	if err != nil {
		return nil, fmt.Errorf("GELU: %w", err)
	}
	pt.mark("gelu")
	v, err := pt.linear(ctx, conn, downLay, down, g)
	if err != nil {
		return nil, fmt.Errorf("W2: %w", err)
	}
	pt.mark("W2")
	return layerNorm(ctx, pt, conn, norm, pl.Hidden, degs, addVec(h, v))
}
