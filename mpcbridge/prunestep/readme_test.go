package prunestep_test

import (
	"fmt"
	"math"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/cipherprune/cipherprune/ckks"
	"github.com/cipherprune/cipherprune/engine"
	"github.com/cipherprune/cipherprune/mpcbridge/prunestep"
	"github.com/cipherprune/cipherprune/mpcbridge/share"
)

// readmeSections returns the "## k. ..." sections of mpcbridge/README.md by
// number.
func readmeSections(t *testing.T) map[int]string {
	t.Helper()
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	out := map[int]string{}
	for _, sec := range strings.Split(string(b), "\n## ")[1:] {
		num, _, ok := strings.Cut(sec, ". ")
		if k, err := strconv.Atoi(num); ok && err == nil {
			out[k] = sec
		}
	}
	return out
}

// readmeBound is one number the README states, as the phrase that states
// it, derived from the code's constants.
type readmeBound struct {
	section int
	phrase  string
}

// oldConvBits is the width of the conversion masks before engine protocol
// version 6 (the 2^64 ring), which section 4 compares with.
const oldConvBits = 62

// TestReadmeBounds derives the numbers that mpcbridge/README.md states in
// sections 4 (the ring-to-integer conversion) and 6 (the level reserve)
// from the code's constants: the engine's B and F (engine.LogBound,
// engine.FracBits), the conversion's mask width and statistical parameter,
// the share codec's precision, the mask width and level that share computes
// for Interactive14. Each derived phrase must appear in its section, and
// every "B = k", "F = k" and power of two "2^x" in sections 3, 4 and 6 must
// be a derived value, so a change of the constants or of the document
// that makes them disagree fails here.
func TestReadmeBounds(t *testing.T) {
	const logN = 14 // Interactive14, the engine's default preset
	b, f := engine.LogBound, engine.FracBits
	conv, stat := prunestep.ConvBits, prunestep.StatBits
	step, err := engine.StepParameters(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if sl := step.Share(); sl.LogBound() != b || sl.FracBits() != f {
		t.Fatalf("engine step parameters B = %d, F = %d; want %d, %d", sl.LogBound(), sl.FracBits(), b, f)
	}
	lambda, logMax := step.Share().Lambda(), step.Share().LogMaxValues()
	preset, err := ckks.PresetByName(ckks.Interactive14, false)
	if err != nil {
		t.Fatal(err)
	}
	params, err := preset.Params()
	if err != nil {
		t.Fatal(err)
	}
	if params.LogN() != logN {
		t.Fatalf("Interactive14 has N = 2^%d", params.LogN())
	}
	scale := params.DefaultScale()
	logScale := int(math.Round(math.Log2(scale.Float64())))
	level, maskBits, err := step.Share().MaskLevel(params, scale, params.MaxLevel())
	if err != nil {
		t.Fatal(err)
	}
	levelBits := params.RingQ().AtLevel(level).Modulus().BitLen()
	belowBits := params.RingQ().AtLevel(level - 1).Modulus().BitLen()
	codec := share.CodecBits(logN)
	if conv+1 > codec {
		t.Fatalf("integer shares of %d bits exceed the codec's %d", conv+1, codec)
	}

	// Section 4: v = round(2^F x) with |x| <= 2^B; masks b' of conv bits;
	// one value hidden to 2^(B+F-conv), the (n-1)·d values of a step to
	// (n-1)·d·2^(B+F-conv) jointly.
	joint := func(n, d, maskBits int) float64 {
		return math.Log2(float64((n-1)*d)) + float64(b+f-maskBits)
	}
	exp := func(x float64) string { return strconv.FormatFloat(x, 'f', 1, 64) }
	limit := conv - stat - b - f
	bounds := []readmeBound{
		{4, fmt.Sprintf("b' uniform in [0, 2^%d)", conv)},
		{4, fmt.Sprintf("|v| <= 2^(B+F) = 2^%d at the engine's B = %d, F = %d", b+f, b, f)},
		{4, fmt.Sprintf("both shares have at most %d bits, within the share codec's %d at N = 2^%d", conv+1, codec, logN)},
		{4, fmt.Sprintf("within |v|/2^%d of a value-independent one, 2^%d per value", conv, b+f-conv)},
		{4, fmt.Sprintf("(n-1)·d·2^(B+F-%d): 2^%s at n = 128, d = 768, 2^%s at n = 512", conv, exp(joint(128, 768, conv)), exp(joint(512, 768, conv)))},
		{4, fmt.Sprintf("so the %d bits hold", stat)},
		{4, fmt.Sprintf("above 2^(%d-B-F) = 2^%d values", conv-stat, limit)},
		{4, fmt.Sprintf("masks b' of 2^%d: 2^%d per value but only about 2^%s for a step at n = 128 jointly", oldConvBits, b+f-oldConvBits, exp(joint(128, 768, oldConvBits)))},
		// Section 6: β = λ + LogMaxValues/2 + B + log Δ + 2, masked at the
		// lowest level whose modulus exceeds 2·(3·2^β + 2^V) = 2^(β+2.585).
		{6, fmt.Sprintf("β = λ + LogMaxValues/2 + B + log Δ + 2 = %d", maskBits)},
		{6, fmt.Sprintf("need %.1f bits of modulus", float64(maskBits)+math.Log2(6))},
		{6, fmt.Sprintf("λ = %d, a session's 2^%d masked coefficients, |x| <= 2^%d, Δ = 2^%d", lambda, logMax, b, logScale)},
		{6, fmt.Sprintf("masked at level >= %d (Q_%d has %d bits, Q_%d only %d)", level, level, levelBits, level-1, belowBits)},
		{6, fmt.Sprintf("keeps %d levels free", level)},
		{6, fmt.Sprintf("leaving %d of Interactive14's %d levels", params.MaxLevel()-level, params.MaxLevel())},
	}
	if maskBits != lambda+logMax/2+b+logScale+2 || logMax%2 != 0 {
		t.Errorf("share's mask width %d, the README's formula gives %d (LogMaxValues %d)", maskBits, lambda+logMax/2+b+logScale+2, logMax)
	}
	// Every power of two the sections may state.
	allowed := map[string]bool{}
	for _, x := range []int{128, 64, conv, oldConvBits, b + f, b + f - conv, b + f - oldConvBits, limit, logN, b, logScale, logMax, maskBits} {
		allowed[strconv.Itoa(x)] = true
	}
	for _, x := range []float64{joint(128, 768, conv), joint(512, 768, conv), joint(128, 768, oldConvBits)} {
		allowed[exp(x)] = true
	}
	t.Logf("B = %d, F = %d: per value 2^%d, step 2^%s (n = 128) and 2^%s (n = 512), limit 2^%d values; mask β = %d, level %d (%d bits), %d of %d levels left",
		b, f, b+f-conv, exp(joint(128, 768, conv)), exp(joint(512, 768, conv)), limit, maskBits, level, levelBits, params.MaxLevel()-level, params.MaxLevel())

	secs := readmeSections(t)
	for _, bd := range bounds {
		if !strings.Contains(oneLine(secs[bd.section]), bd.phrase) {
			t.Errorf("section %d does not state %q", bd.section, bd.phrase)
		}
	}
	param := regexp.MustCompile(`\b([BF]) = (\d+)\b`)
	power := regexp.MustCompile(`2\^(-?[0-9]+(?:\.[0-9]+)?)`)
	for _, k := range []int{3, 4, 6} {
		text := oneLine(secs[k])
		if text == "" {
			t.Errorf("no section %d", k)
		}
		for _, m := range param.FindAllStringSubmatch(text, -1) {
			want := map[string]int{"B": b, "F": f}[m[1]]
			if m[2] != strconv.Itoa(want) {
				t.Errorf("section %d states %s, the engine has %s = %d", k, m[0], m[1], want)
			}
		}
		if k == 3 {
			continue
		}
		for _, m := range power.FindAllStringSubmatch(text, -1) {
			if !allowed[m[1]] {
				t.Errorf("section %d states 2^%s, which no constant gives", k, m[1])
			}
		}
	}
}

// oneLine joins a paragraph's lines, so phrases may wrap in the document.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
