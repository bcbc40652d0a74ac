package layers

import (
	"context"
	"fmt"

	"github.com/cipherprune/cipherprune/ckks/polymat"
	"github.com/cipherprune/cipherprune/models"
	"github.com/cipherprune/cipherprune/models/approx"
	"github.com/cipherprune/cipherprune/mpcbridge/matmul"
	"github.com/cipherprune/cipherprune/mpcbridge/share"
)

// HeadPlan is the public plan of the classification head on the CLS row:
// the pooler (Hidden x Hidden, then tanh) and the classifier (Hidden x
// Labels), with the blocks of both products for one row.
type HeadPlan struct {
	Hidden, Labels     int
	Pooler, Classifier polymat.Block
}

// PlanHead chooses the blocks of the head's products.
func (p Parameters) PlanHead(hidden, labels int) (HeadPlan, error) {
	if hidden < 1 || labels < 1 {
		return HeadPlan{}, fmt.Errorf("cannot PlanHead: hidden %d, labels %d", hidden, labels)
	}
	pool, err := p.chooseBlock(polymat.Dims{Rows: 1, In: hidden, Out: hidden})
	if err != nil {
		return HeadPlan{}, fmt.Errorf("cannot PlanHead: %w", err)
	}
	cls, err := p.chooseBlock(polymat.Dims{Rows: 1, In: hidden, Out: labels})
	if err != nil {
		return HeadPlan{}, fmt.Errorf("cannot PlanHead: %w", err)
	}
	return HeadPlan{Hidden: hidden, Labels: labels, Pooler: pool.Block, Classifier: cls.Block}, nil
}

// layouts returns the layouts of both products.
func (pl HeadPlan) layouts(ring polymat.Parameters) (pool, cls polymat.Layout, err error) {
	if pool, err = polymat.NewLayout(ring, polymat.Dims{Rows: 1, In: pl.Hidden, Out: pl.Hidden}, pl.Pooler); err != nil {
		return pool, cls, err
	}
	cls, err = polymat.NewLayout(ring, polymat.Dims{Rows: 1, In: pl.Hidden, Out: pl.Labels}, pl.Classifier)
	return pool, cls, err
}

// HeadWeights are the server's pooler and classifier, quantized and
// pre-encoded for the plan's blocks. Read-only once built.
type HeadWeights struct {
	plan       HeadPlan
	pooler     *matmul.Weights
	classifier *matmul.Weights
}

// NewHeadWeights quantizes and encodes the pooler (Hidden x Hidden) and
// the classifier (Labels x Hidden, as PyTorch stores them) for plan.
func NewHeadWeights(ctx context.Context, p Parameters, plan HeadPlan, pooler, classifier *models.Linear, workers int) (*HeadWeights, error) {
	if pooler == nil || classifier == nil {
		return nil, fmt.Errorf("cannot NewHeadWeights: nil layer")
	}
	if pooler.In() != plan.Hidden || pooler.Out() != plan.Hidden || classifier.In() != plan.Hidden || classifier.Out() != plan.Labels {
		return nil, fmt.Errorf("cannot NewHeadWeights: layers %dx%d and %dx%d for hidden %d and %d labels",
			pooler.Out(), pooler.In(), classifier.Out(), classifier.In(), plan.Hidden, plan.Labels)
	}
	poolLay, clsLay, err := plan.layouts(p.mm.Ring())
	if err != nil {
		return nil, fmt.Errorf("cannot NewHeadWeights: %w", err)
	}
	w := &HeadWeights{plan: plan}
	if w.pooler, err = matmul.NewWeights(ctx, p.mm, poolLay, transpose(pooler.Weight), pooler.Bias, workers); err != nil {
		return nil, fmt.Errorf("cannot NewHeadWeights: pooler: %w", err)
	}
	if w.classifier, err = matmul.NewWeights(ctx, p.mm, clsLay, transpose(classifier.Weight), classifier.Bias, workers); err != nil {
		return nil, fmt.Errorf("cannot NewHeadWeights: classifier: %w", err)
	}
	return w, nil
}

// Plan returns the plan the weights are encoded for.
func (w *HeadWeights) Plan() HeadPlan { return w.plan }

// Head computes shares of the logits Wc·tanh(Wp·cls + bp) + bc from the
// server's share of the CLS row (Hidden values): three round trips
// (pooler, tanh at the high degree, classifier). The client calls
// Client.Head.
func (s *Server) Head(ctx context.Context, conn Conn, w *HeadWeights, cls share.Vector) (share.Vector, error) {
	if w == nil {
		return nil, fmt.Errorf("cannot Head: nil weights")
	}
	y, err := head(ctx, serverParty{s}, conn, w.plan, w, cls)
	if err != nil {
		return nil, fmt.Errorf("cannot Head: %w", err)
	}
	return y, nil
}

// Head runs the client's side of Server.Head: cls is its share.
func (c *Client) Head(ctx context.Context, conn Conn, plan HeadPlan, cls share.Vector) (share.Vector, error) {
	y, err := head(ctx, clientParty{c}, conn, plan, nil, cls)
	if err != nil {
		return nil, fmt.Errorf("cannot Head: %w", err)
	}
	return y, nil
}

// head is the stage for either party (w nil for the client).
func head(ctx context.Context, pt party, conn Conn, pl HeadPlan, w *HeadWeights, cls share.Vector) (share.Vector, error) {
	if len(cls) != pl.Hidden {
		return nil, fmt.Errorf("%d values for a CLS row of %d", len(cls), pl.Hidden)
	}
	poolLay, clsLay, err := pl.layouts(pt.params().mm.Ring())
	if err != nil {
		return nil, err
	}
	var wp, wc *matmul.Weights
	if w != nil {
		wp, wc = w.pooler, w.classifier
	}
	u, err := pt.linear(ctx, conn, poolLay, wp, cls)
	if err != nil {
		return nil, fmt.Errorf("pooler: %w", err)
	}
	t, err := poly(ctx, pt, conn, approx.Tanh, approx.High, u)
	if err != nil {
		return nil, fmt.Errorf("tanh: %w", err)
	}
	y, err := pt.linear(ctx, conn, clsLay, wc, t)
	if err != nil {
		return nil, fmt.Errorf("classifier: %w", err)
	}
	pt.mark("head")
	return y, nil
}
