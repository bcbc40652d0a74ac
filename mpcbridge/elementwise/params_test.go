package elementwise

import (
	"strings"
	"testing"

	"github.com/cipherprune/cipherprune/ckks"
	"github.com/cipherprune/cipherprune/models/approx"
)

// TestNewParameters checks the defaults, the preset's security and every
// refused field.
func TestNewParameters(t *testing.T) {
	p, err := NewParameters(ParametersLiteral{})
	if err != nil {
		t.Fatal(err)
	}
	lit := p.Literal()
	if lit.Preset != ckks.Interactive14 || lit.LogBound != DefaultLogBound || lit.Lambda != DefaultLambda || lit.FracBits != DefaultFracBits || lit.Chunk != DefaultChunk || lit.MaxValues != DefaultMaxValues {
		t.Fatalf("defaults %+v", lit)
	}
	preset, err := ckks.PresetByName(lit.Preset, false)
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
	p15, err := NewParameters(ParametersLiteral{Preset: ckks.Interactive15})
	if err != nil {
		t.Fatal(err)
	}
	if l, err := p15.PolyLevel(approx.Default(), approx.InvSqrt, approx.High); err != nil || l != p15.MaskLevel()+10 {
		t.Fatalf("Interactive15: 1/√x at level %d (%v), want the mask level %d + 10", l, err, p15.MaskLevel())
	}
	for _, c := range []struct {
		name string
		lit  ParametersLiteral
		want string
	}{
		{"unknown preset", ParametersLiteral{Preset: "Interactive13"}, "unknown preset"},
		{"insecure preset", ParametersLiteral{Preset: ckks.InsecureTest11}, "insecure"},
		{"chunk", ParametersLiteral{Chunk: MaxChunk + 1}, "Chunk"},
		{"negative chunk", ParametersLiteral{Chunk: -1}, "Chunk"},
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
