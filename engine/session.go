package engine

import (
	"context"
	"fmt"

	"github.com/cipherprune/cipherprune/models/approx"
	"github.com/cipherprune/cipherprune/mpcbridge/layers"
	"github.com/cipherprune/cipherprune/mpcbridge/prunestep"
	"github.com/cipherprune/cipherprune/mpcbridge/share"
)

// The order of one inference (docs/design.md, "One inference, step by
// step"), the same on both sides:
//
//  1. Plan: the client's request (MsgSession), the server's answer
//     (MsgAccept: what it applies, the public trace of its model). Both
//     derive the inference's plan (sessionPlan); the parameters and the
//     options are the session's first answer's.
//  2. Keys, in a session's first inference only: the client's CKKS public
//     and relinearization keys and its public keys of the products' rings
//     (no Galois key). Both build their parties for the session.
//  3. Input: the client embeds the padded text (the embeddings are
//     public); its share of X_0 is the embedding itself, the server's is
//     zero. No message.
//  4. Encoder (encoder, below): per layer the attention stage, the
//     pruning step where the layer prunes, the feed-forward stage, all on
//     additive shares (mpcbridge/layers, mpcbridge/prunestep); the last
//     layer on the CLS row alone.
//  5. Head and output: the pooler and classifier on the CLS row, then the
//     label alone (or, opted in by both, the logits) opened to the client.
//  6. Report: the server's timings (MsgReport).
//
// A session repeats them for each inference on one connection, then the
// client ends it with MsgClose. Session.run and serverSession.infer run the
// six phases; both hand phase 4 to encoder with their own side.

// side is one party's calls of the encoder: the server's carry its
// weights and thresholds, the client's its padding flags. Both make the
// same calls in the same order.
type side interface {
	attention(ctx context.Context, l int, rows layers.Rows, x share.Vector) (y, scores share.Vector, err error)
	prune(ctx context.Context, l int, y, scores share.Vector) (share.Vector, prunestep.Counts, error)
	ffn(ctx context.Context, l int, degs []approx.Degree, h share.Vector) (share.Vector, error)
	head(ctx context.Context, cls share.Vector) (share.Vector, error)
	// layerStart and layerEnd bracket layer l (progress and reports).
	layerStart(l int)
	layerEnd(l int, c prunestep.Counts, pruned bool)
}

// encoder runs phase 4 and the head's products of phase 5 on x (a party's
// share of X_0, n x hidden) and returns its share of the logits. The
// padding is the client's secret until a pruning step keeps rows (layers'
// Rows.Hidden); from then on every kept row is a token and the degrees
// follow the step's counts (CLS and the high-degree rows first).
func encoder(ctx context.Context, sd side, pl sessionPlan, prunes []bool, x share.Vector) (share.Vector, error) {
	hidden := pl.cfg.HiddenSize()
	rows := layers.Rows{Hidden: true}
	for l, p := range prunes {
		sd.layerStart(l)
		n := len(x) / hidden
		// The last layer computes the CLS row only, the head's input: its
		// attention takes every row as a key and CLS as the one query,
		// and no pruning step follows it (no later layer would gain).
		ar, last := rows, l == len(prunes)-1 && !pl.allRowsLast
		if last {
			ar.Queries, ar.Degrees, p = 1, clsDegree(rows.Degrees), false
		}
		y, scores, err := sd.attention(ctx, l, ar, x)
		if err != nil {
			return nil, fmt.Errorf("layer %d: %w", l, err)
		}
		c := prunestep.Counts{Layer: l, In: n, Kept: n, High: n}
		if p {
			if y, c, err = sd.prune(ctx, l, y, scores); err != nil {
				return nil, fmt.Errorf("layer %d: pruning step: %w", l, err)
			}
			rows = layers.Rows{Degrees: degreesOf(c)}
		}
		degs := rows.Degrees
		if last {
			degs = ar.Degrees
		}
		if x, err = sd.ffn(ctx, l, degs, y); err != nil {
			return nil, fmt.Errorf("layer %d: %w", l, err)
		}
		if rows.Degrees != nil {
			c.High = 0
			for _, d := range rows.Degrees {
				if d == approx.High {
					c.High++
				}
			}
		}
		sd.layerEnd(l, c, p)
	}
	logits, err := sd.head(ctx, x[:hidden])
	if err != nil {
		return nil, fmt.Errorf("head: %w", err)
	}
	return logits, nil
}

// clsDegree returns the CLS row's degree of degs (nil if degs is nil:
// every row high).
func clsDegree(degs []approx.Degree) []approx.Degree {
	if degs == nil {
		return nil
	}
	return degs[:1]
}

// degreesOf returns the degrees of the rows a pruning step kept: CLS and
// the high-degree rows, then the low-degree rows.
func degreesOf(c prunestep.Counts) []approx.Degree {
	degs := make([]approx.Degree, c.Kept)
	for i := c.High; i < c.Kept; i++ {
		degs[i] = approx.Low
	}
	return degs
}
