package ckks

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"

	"github.com/cipherprune/cipherprune/models/approx"
)

// plainRefresher refreshes to the top level only (no RefreshTo).
type plainRefresher struct{ tc *testContext }

func (r plainRefresher) Refresh(_ context.Context, cts []*rlwe.Ciphertext) ([]*rlwe.Ciphertext, error) {
	return r.tc.refresh(cts)
}

// levelRefresher records the levels RefreshTo was asked for.
type levelRefresher struct {
	plainRefresher
	asked []int
}

func (r *levelRefresher) RefreshTo(_ context.Context, cts []*rlwe.Ciphertext, level int) ([]*rlwe.Ciphertext, error) {
	r.asked = append(r.asked, level)
	out := make([]*rlwe.Ciphertext, len(cts))
	for i, ct := range cts {
		v, err := r.tc.client.DecryptVector(ct)
		if err != nil {
			return nil, err
		}
		if out[i], err = r.tc.client.EncryptVector(v, level); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// reserve is the bridge's reserve the level-plan tests use.
const reserve = bridgeReserve

// reserveContext returns a test context and an evaluator (relinearization
// key only) that keeps reserve levels for the bridge.
func reserveContext(t *testing.T) (*testContext, *Evaluator) {
	t.Helper()
	tc := newTestContext(t, InsecureTest11)
	ev, err := NewEvaluator(tc.params, rlwe.NewMemEvaluationKeySet(tc.rlk), nil, 1, WithReserve(reserve))
	if err != nil {
		t.Fatal(err)
	}
	return tc, ev
}

func TestEnsureFor(t *testing.T) {
	tc, ev := reserveContext(t)
	top := tc.params.MaxLevel()
	r := rand.New(rand.NewPCG(1, 2))
	v := make([]float64, tc.params.MaxSlots())
	for i := range v {
		v[i] = r.Float64() - 0.5
	}
	tests := []struct {
		name          string
		level         int // of the input
		need, horizon int
		want          int // level after ensureFor
		refreshed     bool
	}{
		{"enough levels", 6, 3, 3, 6, false},
		{"to the top", 3, 3, 0, top, true},
		{"to the horizon", 2, 1, 4, reserve + 4, true},
		{"horizon below need", 3, 5, 2, reserve + 5, true},
		{"horizon beyond the top", 2, 1, 50, top, true},
	}
	for _, tt := range tests {
		for _, lr := range []bool{false, true} {
			name := tt.name + "/plain"
			var ref Refresher = plainRefresher{tc}
			lref := &levelRefresher{plainRefresher: plainRefresher{tc}}
			if lr {
				name, ref = tt.name+"/RefreshTo", lref
			}
			t.Run(name, func(t *testing.T) {
				ct, err := tc.client.EncryptVector(v, tt.level)
				if err != nil {
					t.Fatal(err)
				}
				cts := []*rlwe.Ciphertext{ct}
				tr := &Trace{}
				if err := ev.ensureFor(bg(), ref, tr, "test", tt.need, tt.horizon, cts); err != nil {
					t.Fatal(err)
				}
				if got := cts[0].Level(); got != tt.want {
					t.Errorf("level %d, want %d", got, tt.want)
				}
				if calls, _ := tr.Refreshes(); (calls == 1) != tt.refreshed {
					t.Errorf("%d refreshes, want refreshed=%v", calls, tt.refreshed)
				}
				// A LevelRefresher is asked for the level below the top; the
				// top comes from Refresh.
				if lr && tt.refreshed && tt.want < top && (len(lref.asked) != 1 || lref.asked[0] != tt.want) {
					t.Errorf("RefreshTo asked for %v, want [%d]", lref.asked, tt.want)
				}
				got, err := tc.client.DecryptVector(cts[0])
				if err != nil {
					t.Fatal(err)
				}
				var worst float64
				for i := range v {
					worst = math.Max(worst, math.Abs(got[i]-v[i]))
				}
				if worst > 1e-5 {
					t.Errorf("message changed by %g", worst)
				}
			})
		}
	}
	if err := ev.ensureFor(bg(), plainRefresher{tc}, nil, "too deep", top, 0, nil); err == nil {
		t.Error("a stage deeper than the budget: no error")
	}
}

func TestTrim(t *testing.T) {
	tc, ev := reserveContext(t)
	v := make([]float64, 8)
	a, _ := tc.client.EncryptVector(v, 9)
	b, _ := tc.client.EncryptVector(v, 8)
	cts := []*rlwe.Ciphertext{a, b}
	// 8 - 3 = 5 levels left >= 3 + reserve: the next stage runs without a
	// refresh, so nothing is dropped.
	if out := ev.trim(cts, 3, 3); out[0] != a || out[1] != b {
		t.Error("trimmed although the next stage needs no refresh")
	}
	// 8 - 3 < 6 + reserve: the next stage refreshes, so the stage runs on
	// copies at reserve + 3; the inputs are untouched.
	out := ev.trim(cts, 3, 6)
	for i, ct := range out {
		if ct.Level() != reserve+3 {
			t.Errorf("ciphertext %d at level %d, want %d", i, ct.Level(), reserve+3)
		}
	}
	if a.Level() != 9 || b.Level() != 8 {
		t.Errorf("inputs modified: levels %d, %d", a.Level(), b.Level())
	}
}

// TestApplyRefreshing: a reciprocal whose polynomial and Newton steps do not
// fit one refresh segment is evaluated in two, with one refresh between
// them, and matches the registry's float64 evaluation (which the
// approximate forward uses) and 1/x to the Newton steps' accuracy; a recipe
// that fits is evaluated whole; one that cannot be split is refused.
func TestApplyRefreshing(t *testing.T) {
	tc := newTestContext(t, InsecureTest11)
	lit := approx.Default().Literal()
	fl := lit.Func(approx.Reciprocal)
	fl.Interval = [2]float64{0.017, 59} // the earlier spam-mini's row sums: 2.6% off with degree 127 alone
	fl.High, fl.Low = approx.VariantLiteral{Degree: 127, Newton: 2}, approx.VariantLiteral{}
	lit.SetFunc(approx.Reciprocal, fl)
	whole := lit
	wl := fl
	wl.Interval = [2]float64{0.5, 2}
	wl.High = approx.VariantLiteral{Degree: 31}
	whole.SetFunc(approx.Reciprocal, wl)
	deep := lit
	gl := deep.Func(approx.GELU)
	gl.High = approx.VariantLiteral{Degree: 511}
	deep.SetFunc(approx.GELU, gl)
	for _, tt := range []struct {
		name    string
		lit     approx.RegistryLiteral
		fn      approx.Func
		newton  int
		refresh int // calls
		wantErr bool
	}{
		{"split", lit, approx.Reciprocal, 2, 2, false},
		{"whole", whole, approx.Reciprocal, 0, 1, false},
		{"too deep to split", deep, approx.GELU, 0, 0, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			reg, err := approx.NewRegistry(tt.lit)
			if err != nil {
				t.Fatal(err)
			}
			ev, err := NewEvaluator(tc.params, rlwe.NewMemEvaluationKeySet(tc.rlk), reg, 2, WithReserve(reserve))
			if err != nil {
				t.Fatal(err)
			}
			rec := reg.Recipe(tt.fn, approx.High)
			if got := rec.Steps(); tt.fn == approx.Reciprocal && got != tt.newton {
				t.Fatalf("recipe has %d Newton steps, want %d", got, tt.newton)
			}
			a, b := rec.Interval()
			slots := tc.params.MaxSlots()
			lay, err := NewLayout(slots, 16, 64, 16)
			if err != nil {
				t.Fatal(err)
			}
			x := make([]float64, slots)
			r := rand.New(rand.NewPCG(5, 6))
			for i := range x {
				u := r.Float64()
				if tt.fn == approx.Reciprocal {
					x[i] = a * math.Pow(b/a, u)
				} else {
					x[i] = a + (b-a)*u
				}
			}
			ct, err := tc.client.EncryptVector(x, reserve+1) // too low for anything: refreshed first
			if err != nil {
				t.Fatal(err)
			}
			cts := []*rlwe.Ciphertext{ct}
			ref := &levelRefresher{plainRefresher: plainRefresher{tc}}
			tr := &Trace{}
			err = ev.applyRefreshing(bg(), ref, tr, "test", tt.fn, nil, lay, 0, cts)
			if tt.wantErr {
				if err == nil {
					t.Fatal("no error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if calls, _ := tr.Refreshes(); calls != tt.refresh {
				t.Errorf("%d refreshes, want %d", calls, tt.refresh)
			}
			got, err := tc.client.DecryptVector(cts[0])
			if err != nil {
				t.Fatal(err)
			}
			var worst, worstExact float64
			for i := range x {
				want := rec.Eval(x[i])
				worst = math.Max(worst, math.Abs(got[i]-want)/math.Max(1, math.Abs(want)))
				worstExact = math.Max(worstExact, math.Abs(got[i]*x[i]-1))
			}
			t.Logf("error vs the registry %.2g, relative error vs 1/x %.2g", worst, worstExact)
			if worst > 2e-4 {
				t.Errorf("error vs the registry %g > 2e-4", worst)
			}
			if tt.newton > 0 && worstExact > 1e-3 {
				t.Errorf("relative error vs 1/x %g > 1e-3 (the polynomial alone: %g)", worstExact, rec.Stats().InitialResidual)
			}
		})
	}
}
