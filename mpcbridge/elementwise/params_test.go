package elementwise

import (
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/cipherprune/cipherprune/ckks"
	"github.com/cipherprune/cipherprune/models/approx"
	"github.com/cipherprune/cipherprune/mpcbridge/internal/nettest"
	"github.com/cipherprune/cipherprune/mpcbridge/wire"
)

// TestNewParameters checks the defaults, the preset's security and every
// refused field.
func TestNewParameters(t *testing.T) {
	p, err := NewParameters(ParametersLiteral{})
	if err != nil {
		t.Fatal(err)
	}
	lit := p.Literal()
	if lit.Preset != Elementwise14 || lit.LogBound != DefaultLogBound || lit.Lambda != DefaultLambda || lit.FracBits != DefaultFracBits || lit.Chunk != DefaultChunk || lit.MaxValues != DefaultMaxValues {
		t.Fatalf("defaults %+v", lit)
	}
	preset, err := PresetByName(lit.Preset, false)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := preset.Security()
	if err != nil || !rep.Secure {
		t.Fatalf("default preset: %v, %v", rep, err)
	}
	again, err := NewParameters(lit)
	if err != nil || again.fingerprint != p.fingerprint {
		t.Fatalf("the literal does not rebuild the same parameters: %v", err)
	}
	if p.Share().LogBound() != p.LogBound() || p.Share().Lambda() != p.Lambda() || p.Share().FracBits() != p.FracBits() || p.Share().MaxBatch() != 1 {
		t.Fatalf("conversion parameters %+v do not follow %+v", p.Share().Literal(), lit)
	}
	if other, _ := NewParameters(ParametersLiteral{Chunk: 4}); other.fingerprint == p.fingerprint {
		t.Fatal("another chunk gives the same fingerprint")
	}
	for _, lit := range []ParametersLiteral{{Chunk: MaxChunk}, {Preset: Elementwise15, Chunk: 45}, {Preset: ckks.Interactive15, Chunk: 46}} {
		if _, err := NewParameters(lit); err != nil {
			t.Fatalf("%s at Chunk %d: %v", lit.Preset, lit.Chunk, err)
		}
	}
	p15, err := NewParameters(ParametersLiteral{Preset: ckks.Interactive15})
	if err != nil {
		t.Fatal(err)
	}
	// Degree 511 with its change of basis folded: 9 levels.
	if l, err := p15.PolyLevel(approx.Default(), approx.InvSqrt, approx.High); err != nil || l != p15.MaskLevel()+9 {
		t.Fatalf("Interactive15: 1/√x at level %d (%v), want the mask level %d + 9", l, err, p15.MaskLevel())
	}
	for _, c := range []struct {
		name string
		lit  ParametersLiteral
		want string
	}{
		{"unknown preset", ParametersLiteral{Preset: "Interactive13"}, "unknown preset"},
		{"insecure preset", ParametersLiteral{Preset: ckks.InsecureTest11}, "insecure"},
		{"insecure preset of this package", ParametersLiteral{Preset: InsecureElementwise11}, "insecure"},
		{"insecure deep preset of this package", ParametersLiteral{Preset: InsecureElementwise11Deep}, "insecure"},
		{"chunk", ParametersLiteral{Chunk: MaxChunk + 1}, "Chunk"},
		{"negative chunk", ParametersLiteral{Chunk: -1}, "Chunk"},
		{"chunk beyond the frame limit", ParametersLiteral{Preset: Elementwise15, Chunk: 46}, "frame limit"},
		{"chunk beyond the frame limit at Interactive15", ParametersLiteral{Preset: ckks.Interactive15, Chunk: 47}, "frame limit"},
		{"max values", ParametersLiteral{MaxValues: MaxMaxValues + 1}, "MaxValues"},
		{"log bound", ParametersLiteral{LogBound: MaxLogBound + 1}, "LogBound"},
		{"log bound below -F", ParametersLiteral{LogBound: -17}, "LogBound"},
		{"lambda", ParametersLiteral{Lambda: 39}, "Lambda"},
		{"frac bits", ParametersLiteral{FracBits: 61}, "FracBits"},
		{"mask beyond the codec", ParametersLiteral{LogBound: 24}, "cannot NewParameters"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := NewParameters(c.lit)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one containing %q", err, c.want)
			}
		})
	}
	if _, err := p.PolyLevel(nil, approx.GELU, approx.High); err == nil {
		t.Fatal("nil registry accepted")
	}
	if _, err := p.PolyLevel(approx.Default(), approx.Func(9), approx.High); err == nil {
		t.Fatal("invalid function accepted")
	}
}

// TestPresets checks this package's presets against the HE standard as
// ckks checks its own (TestPresetsSecurity): the secure ones pass the
// 128-bit bound, the insecure ones fail it and are refused without
// AllowInsecure; every recipe of sentiment-tiny's registry fits the
// default preset's levels with its change of basis folded.
func TestPresets(t *testing.T) {
	reg := trainedRegistry(t)
	for _, preset := range Presets() {
		t.Run(preset.Name, func(t *testing.T) {
			rep, err := preset.Security()
			if err != nil {
				t.Fatal(err)
			}
			params, err := preset.Params()
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: %s, ring %v, %d slots, levels %d", preset.Name, rep, params.RingType(), params.MaxSlots(), params.MaxLevel())
			if preset.Insecure {
				if rep.Secure {
					t.Fatal("insecure preset passes the 128-bit check")
				}
				if _, err := PresetByName(preset.Name, false); err == nil {
					t.Fatal("insecure preset accepted without AllowInsecure")
				}
				return
			}
			if err := preset.CheckSecurity(); err != nil {
				t.Fatal(err)
			}
			p, err := NewParameters(ParametersLiteral{Preset: preset.Name})
			if err != nil {
				t.Fatal(err)
			}
			if p.Slots() != params.N() {
				t.Fatalf("%d slots, want N = %d real slots", p.Slots(), params.N())
			}
			for _, fn := range []approx.Func{approx.GELU, approx.Exp, approx.Reciprocal, approx.InvSqrt, approx.Tanh} {
				for _, d := range []approx.Degree{approx.High, approx.Low} {
					if reg.Recipe(fn, d).PolyDegree() < 1 {
						continue
					}
					l, err := p.PolyLevel(reg, fn, d)
					if err != nil {
						t.Fatal(err)
					}
					t.Logf("%s/%s: degree %d, input level %d", fn, d, reg.Recipe(fn, d).PolyDegree(), l)
				}
			}
		})
	}
	if _, err := PresetByName(ckks.Interactive14, false); err != nil {
		t.Fatalf("a ckks preset: %v", err)
	}
}

// TestPresetsDeep checks that spam-mini's registry, loaded as the engine
// loads it, fits Elementwise15 and its test twin InsecureElementwise11Deep
// (every function and degree has an input level, and a MulPoly level
// where one is left), that the two have the same levels, and, as
// documentation, that its 1/x does not fit Elementwise14.
func TestPresetsDeep(t *testing.T) {
	reg := spamMiniRegistry(t)
	var levels []int
	for _, lit := range []ParametersLiteral{{Preset: Elementwise15}, {Preset: InsecureElementwise11Deep, AllowInsecure: true}} {
		t.Run(lit.Preset, func(t *testing.T) {
			p, err := NewParameters(lit)
			if err != nil {
				t.Fatal(err)
			}
			if p.MaskLevel() != 1 {
				t.Fatalf("mask level %d, want 1", p.MaskLevel())
			}
			levels = append(levels, p.Params().MaxLevel())
			for _, fn := range approx.Funcs() {
				for _, d := range approx.Degrees() { // as layers.NewParameters asks
					rec := reg.Recipe(fn, d)
					l, err := p.PolyLevel(reg, fn, d)
					if err != nil {
						t.Fatal(err)
					}
					ml, err := p.MulPolyLevel(reg, fn, d)
					if err != nil {
						t.Fatal(err)
					}
					t.Logf("%s/%s: degree %d, %d Newton steps, input level %d, MulPoly's %d (of %d)", fn, d, rec.PolyDegree(), newtonSteps(rec), l, ml, p.Params().MaxLevel())
				}
			}
		})
	}
	if len(levels) == 2 && (levels[0] != levels[1] || levels[0] != 18) {
		t.Fatalf("levels %v, want 18 in both presets", levels)
	}
	p14, err := NewParameters(ParametersLiteral{Preset: Elementwise14})
	if err != nil {
		t.Fatal(err)
	}
	_, err = p14.PolyLevel(reg, approx.Reciprocal, approx.High)
	if err == nil || !strings.Contains(err.Error(), "needs 10 levels") {
		t.Fatalf("spam-mini's 1/x on Elementwise14: %v, want a refusal (10 levels)", err)
	}
	t.Logf("Elementwise14: %v", err)
}

// newtonSteps returns the Newton steps of rec (0 for the other
// post-processings).
func newtonSteps(rec *approx.Recipe) int {
	switch rec.Post() {
	case approx.PostNewtonInverse, approx.PostNewtonInvSqrt:
		return rec.Steps()
	}
	return 0
}

// failConn fails every send and receive: a call refused before any
// message never uses it.
type failConn struct{}

func (failConn) Send(context.Context, wire.Type, []byte) error { return errors.New("failConn: send") }
func (failConn) Recv(context.Context, wire.Type) ([]byte, error) {
	return nil, errors.New("failConn: receive")
}

// TestSessionBudget checks that a Server's workers count the coefficients
// they mask against one session budget (LogMaxValues) and that a call
// beyond it is refused before any message.
func TestSessionBudget(t *testing.T) {
	lit := testLiteral
	lit.LogMaxValues = 13 // four ciphertexts of N = 2^11
	tc := newTestContext(t, lit)
	if got := tc.p.MaxCiphertexts(); got != 4 {
		t.Fatalf("MaxCiphertexts = %d, want 4", got)
	}
	srv, err := NewServer(tc.p, tc.pk, tc.rlk, nil, 2)
	if err != nil {
		t.Fatal(err)
	}
	cli, err := NewClient(tc.p, tc.sk, 2)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(31, 32))
	n := 3 * tc.p.Slots() // three output ciphertexts, over both workers
	xa, xb := splitShares(r, fixed(tc.p, uniform(r, n, -1, 1)), 82)
	ya, yb := splitShares(r, fixed(tc.p, uniform(r, n, -1, 1)), 82)
	sc, cc := connPair(t, "pipe")
	serr, cerr := nettest.Both(func() error {
		_, err := srv.Mul(bg(), sc, xb, yb)
		return err
	}, func() error {
		_, err := cli.Mul(bg(), cc, xa, ya)
		return err
	})
	if serr != nil || cerr != nil {
		t.Fatalf("server: %v, client: %v", serr, cerr)
	}
	if got, want := srv.Masked(), int64(3*tc.p.Params().N()); got != want {
		t.Fatalf("Masked = %d, want %d", got, want)
	}
	_, err = srv.Mul(bg(), failConn{}, xb[:2*tc.p.Slots()], yb[:2*tc.p.Slots()])
	if err == nil || !strings.Contains(err.Error(), "exceed the session's 2^13") {
		t.Fatalf("two more ciphertexts: %v", err)
	}
	if got, want := srv.Masked(), int64(3*tc.p.Params().N()); got != want {
		t.Fatalf("Masked = %d after a refusal, want %d", got, want)
	}
}
