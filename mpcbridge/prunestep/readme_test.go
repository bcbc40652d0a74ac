package prunestep_test

import (
	"fmt"
	"math"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

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
// section 4 (the ring-to-integer conversion) from the code's constants:
// the engine's step format B and F (engine.StepLogBound,
// engine.StepFracBits), the conversion's mask width and statistical
// parameter, and the width of the shares the step takes. Each derived
// phrase must appear in the section, and every "B = k", "F = k" in
// sections 3 and 4 and every power of two "2^x" in section 4 must be a
// derived value, so a change of the constants or of the document that
// makes them disagree fails here.
func TestReadmeBounds(t *testing.T) {
	b, f := engine.StepLogBound, engine.StepFracBits
	conv, stat := prunestep.ConvBits, prunestep.StatBits
	if _, err := prunestep.NewParameters(prunestep.ParametersLiteral{Share: share.ParametersLiteral{LogBound: b, FracBits: f}}); err != nil {
		t.Fatalf("the engine's step format: %v", err)
	}
	if conv+1 > prunestep.MaxShareBits {
		t.Fatalf("integer shares of %d bits exceed the %d the step takes", conv+1, prunestep.MaxShareBits)
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
		{4, fmt.Sprintf("both shares have at most %d bits, below the 2^%d", conv+1, prunestep.MaxShareBits)},
		{4, fmt.Sprintf("within |v|/2^%d of a value-independent one, 2^%d per value", conv, b+f-conv)},
		{4, fmt.Sprintf("(n-1)·d·2^(B+F-%d): 2^%s at n = 128, d = 768, 2^%s at n = 512", conv, exp(joint(128, 768, conv)), exp(joint(512, 768, conv)))},
		{4, fmt.Sprintf("so the %d bits hold", stat)},
		{4, fmt.Sprintf("above 2^(%d-B-F) = 2^%d values", conv-stat, limit)},
		{4, fmt.Sprintf("masks b' of 2^%d: 2^%d per value but only about 2^%s for a step at n = 128 jointly", oldConvBits, b+f-oldConvBits, exp(joint(128, 768, oldConvBits)))},
	}
	// Every power of two the section may state.
	allowed := map[string]bool{}
	for _, x := range []int{128, 64, conv, oldConvBits, b + f, b + f - conv, b + f - oldConvBits, limit, prunestep.MaxShareBits} {
		allowed[strconv.Itoa(x)] = true
	}
	for _, x := range []float64{joint(128, 768, conv), joint(512, 768, conv), joint(128, 768, oldConvBits)} {
		allowed[exp(x)] = true
	}
	t.Logf("B = %d, F = %d: per value 2^%d, step 2^%s (n = 128) and 2^%s (n = 512), limit 2^%d values",
		b, f, b+f-conv, exp(joint(128, 768, conv)), exp(joint(512, 768, conv)), limit)

	secs := readmeSections(t)
	for _, bd := range bounds {
		if !strings.Contains(oneLine(secs[bd.section]), bd.phrase) {
			t.Errorf("section %d does not state %q", bd.section, bd.phrase)
		}
	}
	param := regexp.MustCompile(`\b([BF]) = (\d+)\b`)
	power := regexp.MustCompile(`2\^(-?[0-9]+(?:\.[0-9]+)?)`)
	for _, k := range []int{3, 4} {
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
