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

// LevelRefresher is a Refresher that can also return its fresh
// ciphertexts below the top level. The evaluator asks for only the levels
// it will use before its next refresh: every operation until then runs on
// fewer primes, and the client's answer is smaller. A plain Refresher's
// answers are dropped to the same level, which saves the computation but
// not the bytes.
type LevelRefresher interface {
	Refresher
	// RefreshTo is Refresh with the fresh ciphertexts at level.
	RefreshTo(ctx context.Context, cts []*rlwe.Ciphertext, level int) ([]*rlwe.Ciphertext, error)
}

// Bridge is where the two-party protocol acts in a layer: it refreshes
// ciphertexts wherever levels run out, and after each attention block it
// prunes tokens and chooses their degrees (docs/design.md, "The pruning protocol").
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
	Stage  string
	Cts    int
	Level  int // lowest level before the refresh
	Target int // level of the refreshed ciphertexts
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
// refreshing (in one call) those that do not, to the top level. It
// replaces the pointers in place.
func (ev *Evaluator) ensure(ctx context.Context, r Refresher, tr *Trace, stage string, need int, groups ...[]*rlwe.Ciphertext) error {
	return ev.ensureFor(ctx, r, tr, stage, need, 0, groups...)
}

// ensureFor is ensure where a refresh returns ciphertexts with horizon
// levels above the reserve (the levels this stage and the ones after it
// use before their next refresh), or the top level when horizon is 0 or
// more than the preset has.
func (ev *Evaluator) ensureFor(ctx context.Context, r Refresher, tr *Trace, stage string, need, horizon int, groups ...[]*rlwe.Ciphertext) error {
	top := ev.params.MaxLevel()
	need += ev.reserve
	if need > top {
		return fmt.Errorf("cannot %s: needs %d levels (%d reserved for the bridge), the preset has %d",
			stage, need, ev.reserve, top)
	}
	target := top
	if horizon > 0 {
		target = min(max(horizon+ev.reserve, need), top)
	}
	var low []*rlwe.Ciphertext
	type ref struct{ g, i int }
	var where []ref
	minLevel := top
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
	var fresh []*rlwe.Ciphertext
	var err error
	if lr, ok := r.(LevelRefresher); ok && target < top {
		fresh, err = lr.RefreshTo(ctx, low, target)
	} else {
		fresh, err = r.Refresh(ctx, low)
	}
	if err != nil {
		return fmt.Errorf("cannot %s: refresh: %w", stage, err)
	}
	if len(fresh) != len(low) {
		return fmt.Errorf("cannot %s: refresher returned %d ciphertexts for %d", stage, len(fresh), len(low))
	}
	for k, w := range where {
		ct := fresh[k]
		if ct.Level() < need {
			return fmt.Errorf("cannot %s: refreshed ciphertext at level %d < %d", stage, ct.Level(), need)
		}
		if ct.Level() > target {
			ct.Resize(ct.Degree(), target) // a plain Refresher answered at the top
		}
		groups[w.g][w.i] = ct
	}
	tr.add(TraceStage{Stage: stage, Cts: len(low), Level: minLevel, Target: target})
	return nil
}

// trim returns cts with every ciphertext above the reserve plus need
// levels replaced by a copy dropped to that level, when the stage after
// this one (needing next levels) would have to refresh anyway: the
// levels above are never used, and every operation on fewer primes costs
// less. Otherwise it returns cts unchanged. The inputs are not modified.
func (ev *Evaluator) trim(cts []*rlwe.Ciphertext, need, next int) []*rlwe.Ciphertext {
	lo := ev.params.MaxLevel()
	for _, ct := range cts {
		lo = min(lo, ct.Level())
	}
	if lo-need >= next+ev.reserve {
		return cts
	}
	return dropTo(cts, need+ev.reserve)
}

// dropTo returns cts with every ciphertext above level replaced by a copy
// at level. The inputs are not modified.
func dropTo(cts []*rlwe.Ciphertext, level int) []*rlwe.Ciphertext {
	out := make([]*rlwe.Ciphertext, len(cts))
	for i, ct := range cts {
		if ct.Level() > level {
			ct = ct.CopyNew()
			ct.Resize(ct.Degree(), level)
		}
		out[i] = ct
	}
	return out
}
