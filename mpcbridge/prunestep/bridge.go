package prunestep

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"

	"github.com/cipherprune/cipherprune/ckks"
	"github.com/cipherprune/cipherprune/mpcbridge/wire"
)

// LayerRule is the server's private pruning rule for one encoder layer.
type LayerRule struct {
	// Prune enables the pruning step after the layer's attention block.
	// When false the bridge keeps every row: the hidden state goes on as it
	// is (the evaluator refreshes it when its levels run out), with the
	// previous degrees and attention masks.
	Prune bool
	// Theta is θ_l: rows with score > θ_l are kept. It must exceed
	// MinTheta.
	Theta float64
	// Beta is β_l: kept rows with score > β_l use the high degree.
	Beta float64
}

// Bridge is the server's ckks.Bridge over one connection: Refresh is the
// two-party refresh and AfterAttention the pruning step with the layer's
// rule, both through a Server. The client runs Client.ServeBridge on the
// other end; when the inference is over, call Done. A Bridge is for one
// caller at a time, like the ckks.Evaluator that uses it.
type Bridge struct {
	server *Server
	conn   *wire.Conn
	rules  []LayerRule

	mu     sync.Mutex
	masks  *ckks.AttentionMasks
	degs   ckks.DegreeSet
	counts []Counts
}

var _ ckks.Bridge = (*Bridge)(nil)

// NewBridge returns a Bridge that prunes after layer l's attention by
// rules[l] (a layer without a rule is an error). masks are the attention
// masks of the input (the client's encrypted padding mask), which a layer
// that does not prune passes on; they may be nil if the first layer prunes
// (every later layer's masks come from the pruning steps).
func NewBridge(s *Server, conn *wire.Conn, rules []LayerRule, masks *ckks.AttentionMasks) (*Bridge, error) {
	if s == nil || conn == nil {
		return nil, errors.New("cannot NewBridge: nil server or connection")
	}
	for l, r := range rules {
		if !r.Prune {
			continue
		}
		if _, _, err := s.p.encodeThresholds(r.Theta, r.Beta); err != nil {
			return nil, fmt.Errorf("cannot NewBridge: layer %d: %w", l, err)
		}
	}
	return &Bridge{server: s, conn: conn, rules: append([]LayerRule(nil), rules...), masks: masks}, nil
}

// MinLevel is Server.MinLevel.
func (b *Bridge) MinLevel() int { return b.server.MinLevel() }

// Refresh refreshes cts to the top level (Server.Refresh).
func (b *Bridge) Refresh(ctx context.Context, cts []*rlwe.Ciphertext) ([]*rlwe.Ciphertext, error) {
	return b.server.Refresh(ctx, b.conn, cts)
}

// RefreshTo refreshes cts to level (Server.RefreshTo); it makes Bridge a
// ckks.LevelRefresher.
func (b *Bridge) RefreshTo(ctx context.Context, cts []*rlwe.Ciphertext, level int) ([]*rlwe.Ciphertext, error) {
	return b.server.RefreshTo(ctx, b.conn, cts, level)
}

// AfterAttention runs the pruning step on out with the rule of out.Layer,
// or passes the hidden state on if the rule does not prune.
func (b *Bridge) AfterAttention(ctx context.Context, out *ckks.AttentionOutput) (*ckks.BridgeResult, error) {
	if out == nil {
		return nil, errors.New("cannot AfterAttention: nil attention output")
	}
	if out.Layer < 0 || out.Layer >= len(b.rules) {
		return nil, fmt.Errorf("cannot AfterAttention: no rule for layer %d (%d rules)", out.Layer, len(b.rules))
	}
	r := b.rules[out.Layer]
	b.mu.Lock()
	defer b.mu.Unlock()
	if !r.Prune {
		if b.masks == nil {
			return nil, fmt.Errorf("cannot AfterAttention: layer %d does not prune and the bridge has no masks", out.Layer)
		}
		return &ckks.BridgeResult{Hidden: out.Hidden, Degrees: b.degs, Masks: b.masks}, nil
	}
	res, counts, err := b.server.Prune(ctx, b.conn, out, r.Theta, r.Beta)
	if err != nil {
		return nil, fmt.Errorf("cannot AfterAttention: %w", err)
	}
	b.masks, b.degs = res.Masks, res.Degrees
	b.counts = append(b.counts, counts)
	return res, nil
}

// Counts returns the counts of every pruning step so far.
func (b *Bridge) Counts() []Counts {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]Counts(nil), b.counts...)
}

// Progress tells the client which layer and stage the server has reached
// (Server.Progress).
func (b *Bridge) Progress(ctx context.Context, layer, stage int) error {
	return b.server.Progress(ctx, b.conn, layer, stage)
}

// Done ends the client's ServeBridge (Server.Done).
func (b *Bridge) Done(ctx context.Context) error {
	return b.server.Done(ctx, b.conn)
}
