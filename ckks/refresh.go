package ckks

import (
	"context"
	"fmt"
	"sync"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"
)

// Refresher turns ciphertexts whose levels ran out into fresh encryptions
// of the same messages at the top level. In the interactive mode it is the
// two-party bridge (mask with smudging noise, the client decrypts and
// re-encrypts); in tests it is a secret-key helper. The returned slice has
// the same length and order as cts.
type Refresher interface {
	Refresh(ctx context.Context, cts []*rlwe.Ciphertext) ([]*rlwe.Ciphertext, error)
}

// Bridge is where the two-party protocol acts in a layer: it refreshes
// ciphertexts wherever levels run out, and after each attention block it
// prunes tokens and chooses their degrees (DESIGN.md section 4).
type Bridge interface {
	Refresher
	// AfterAttention receives the attention block's output and the
	// importance scores, and returns the refreshed hidden state of the kept
	// rows (regrouped as the bridge likes: the client re-packs them), the
	// degree of each kept row, and the attention masks for the kept rows.
	AfterAttention(ctx context.Context, out *AttentionOutput) (*BridgeResult, error)
}

// AttentionOutput is what the server hands the bridge after an attention
// block.
type AttentionOutput struct {
	// Layer is the encoder layer, from 0.
	Layer int
	// Hidden is LayerNorm(X + Attention(X)), n x d.
	Hidden *CtMatrix
	// Scores holds in slot j of every block the importance of token j: the
	// attention it receives, averaged over heads and weighted by the query
	// weights of AttentionMasks (valid_i/m averages over valid query rows).
	Scores *rlwe.Ciphertext
}

// BridgeResult is what the bridge hands back after an attention block.
type BridgeResult struct {
	// Hidden is the refreshed hidden state of the kept rows.
	Hidden *CtMatrix
	// Degrees is the degree of each kept row (nil: all High).
	Degrees DegreeSet
	// Masks are the attention masks of the kept rows for the next layer.
	Masks *AttentionMasks
}

// Trace counts what a computation cost the bridge: refresh calls and
// refreshed ciphertexts per stage. It is safe for concurrent use.
type Trace struct {
	mu     sync.Mutex
	Stages []TraceStage
}

// TraceStage is one refresh.
type TraceStage struct {
	Stage string
	Cts   int
	Level int // lowest level before the refresh
}

func (t *Trace) add(s TraceStage) {
	if t == nil {
		return
	}
	t.mu.Lock()
	t.Stages = append(t.Stages, s)
	t.mu.Unlock()
}

// Refreshes returns the number of refresh calls and refreshed ciphertexts.
func (t *Trace) Refreshes() (calls, cts int) {
	if t == nil {
		return 0, 0
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, s := range t.Stages {
		calls++
		cts += s.Cts
	}
	return
}

// ensure makes every ciphertext in groups have at least need levels,
// refreshing (in one call) those that do not. It replaces the pointers in
// place.
func (ev *Evaluator) ensure(ctx context.Context, r Refresher, tr *Trace, stage string, need int, groups ...[]*rlwe.Ciphertext) error {
	need += ev.reserve
	if need > ev.params.MaxLevel() {
		return fmt.Errorf("cannot %s: needs %d levels (%d reserved for the bridge), the preset has %d",
			stage, need, ev.reserve, ev.params.MaxLevel())
	}
	var low []*rlwe.Ciphertext
	type ref struct{ g, i int }
	var where []ref
	minLevel := ev.params.MaxLevel()
	for gi, g := range groups {
		for i, ct := range g {
			if ct.Level() < need {
				low = append(low, ct)
				where = append(where, ref{gi, i})
				if ct.Level() < minLevel {
					minLevel = ct.Level()
				}
			}
		}
	}
	if len(low) == 0 {
		return nil
	}
	if r == nil {
		return fmt.Errorf("cannot %s: levels ran out (%d < %d) and no refresher", stage, minLevel, need)
	}
	fresh, err := r.Refresh(ctx, low)
	if err != nil {
		return fmt.Errorf("cannot %s: refresh: %w", stage, err)
	}
	if len(fresh) != len(low) {
		return fmt.Errorf("cannot %s: refresher returned %d ciphertexts for %d", stage, len(fresh), len(low))
	}
	for k, w := range where {
		if fresh[k].Level() < need {
			return fmt.Errorf("cannot %s: refreshed ciphertext at level %d < %d", stage, fresh[k].Level(), need)
		}
		groups[w.g][w.i] = fresh[k]
	}
	tr.add(TraceStage{Stage: stage, Cts: len(low), Level: minLevel})
	return nil
}
