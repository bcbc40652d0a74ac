package models

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"

	"github.com/cipherprune/cipherprune/models/approx"
)

// ApproxFile is the name of a model directory's approximation settings: the
// registry literal (intervals and degrees) and the softmax shift that both the
// approximate forward and the encrypted evaluator use for that model.
const ApproxFile = "approx.json"

// ApproxSettingsLiteral is the serializable form of a model's approximation
// settings.
type ApproxSettingsLiteral struct {
	// Registry gives every nonlinearity's interval, degrees and recipe.
	Registry approx.RegistryLiteral `json:"registry"`
	// SoftmaxShift is the public constant c subtracted from every attention
	// logit before the exponential: the encrypted path cannot subtract a
	// row's maximum, so c is chosen from the logits observed on training data
	// to keep exp(s - c) and the row sums inside the registry's intervals.
	// Softmax is invariant to it.
	SoftmaxShift float64 `json:"softmax_shift"`
}

// DefaultApproxSettingsLiteral returns the registry's default intervals and a
// zero shift.
func DefaultApproxSettingsLiteral() ApproxSettingsLiteral {
	return ApproxSettingsLiteral{Registry: approx.DefaultLiteral()}
}

// maxApproxFileSize bounds approx.json.
const maxApproxFileSize = 1 << 20

// LoadApproxSettings reads dir/approx.json; a directory without one gets
// DefaultApproxSettingsLiteral.
func LoadApproxSettings(dir string) (ApproxSettingsLiteral, error) {
	path := filepath.Join(dir, ApproxFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return DefaultApproxSettingsLiteral(), nil
	}
	if err != nil {
		return ApproxSettingsLiteral{}, fmt.Errorf("cannot read %s: %w", path, err)
	}
	if len(b) > maxApproxFileSize {
		return ApproxSettingsLiteral{}, fmt.Errorf("cannot read %s: %d bytes exceeds %d", path, len(b), maxApproxFileSize)
	}
	var lit ApproxSettingsLiteral
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&lit); err != nil {
		return ApproxSettingsLiteral{}, fmt.Errorf("cannot parse %s: %w", path, err)
	}
	return lit, nil
}

// Approximate implements Nonlinearities with the polynomial recipes of an
// approximation registry: the plaintext twin of the encrypted computation.
// Softmax is exp(s - shift) through the Exp recipe of the query token's
// degree, then the Reciprocal recipe of the row sum; GELU, 1/√x and tanh use
// their recipes directly. Inputs outside a recipe's interval are clamped (the
// encrypted path cannot clamp), and counted: Ranges reports them.
//
// An Approximate records ranges, so it is not safe for concurrent use; give
// each goroutine its own (they are cheap: the registry is shared).
type Approximate struct {
	reg    *approx.Registry
	shift  float64
	ranges map[approx.Func]*approx.RangeStats
}

var _ Nonlinearities = (*Approximate)(nil)

// NewApproximate returns an Approximate for settings lit.
func NewApproximate(lit ApproxSettingsLiteral) (*Approximate, error) {
	if math.IsNaN(lit.SoftmaxShift) || math.IsInf(lit.SoftmaxShift, 0) {
		return nil, fmt.Errorf("cannot use softmax_shift %v: not finite", lit.SoftmaxShift)
	}
	reg, err := approx.NewRegistry(lit.Registry)
	if err != nil {
		return nil, fmt.Errorf("cannot build the approximation registry: %w", err)
	}
	return NewApproximateFromRegistry(reg, lit.SoftmaxShift), nil
}

// NewApproximateFromRegistry returns an Approximate sharing reg.
func NewApproximateFromRegistry(reg *approx.Registry, softmaxShift float64) *Approximate {
	a := &Approximate{reg: reg, shift: softmaxShift, ranges: make(map[approx.Func]*approx.RangeStats)}
	for _, fn := range approx.Funcs() {
		a.ranges[fn] = &approx.RangeStats{Min: math.Inf(1), Max: math.Inf(-1)}
	}
	return a
}

// Clone returns an Approximate with the same registry and shift and fresh
// range counters, for another goroutine.
func (a *Approximate) Clone() *Approximate { return NewApproximateFromRegistry(a.reg, a.shift) }

// Registry returns the registry a evaluates.
func (a *Approximate) Registry() *approx.Registry { return a.reg }

// SoftmaxShift returns the constant subtracted from attention logits.
func (a *Approximate) SoftmaxShift() float64 { return a.shift }

func (a *Approximate) eval(fn approx.Func, deg Degree, x float64) float64 {
	r := a.ranges[fn]
	lo, hi := a.reg.Interval(fn)
	r.N++
	switch {
	case math.IsNaN(x):
		r.NaN++
	case x < lo:
		r.Below++
	case x > hi:
		r.Above++
	}
	if !math.IsNaN(x) {
		r.Min, r.Max = math.Min(r.Min, x), math.Max(r.Max, x)
	}
	return a.reg.Eval(fn, approx.Degree(deg), x)
}

// SoftmaxRow computes the masked softmax from the Exp and Reciprocal recipes.
func (a *Approximate) SoftmaxRow(dst, scores []float64, valid []bool, deg Degree) {
	MaskedSoftmax(dst, scores, valid,
		func(x float64) float64 { return a.eval(approx.Exp, deg, x-a.shift) },
		func(x float64) float64 { return a.eval(approx.Reciprocal, deg, x) })
}

// GELU evaluates the GELU recipe of degree deg.
func (a *Approximate) GELU(x float64, deg Degree) float64 { return a.eval(approx.GELU, deg, x) }

// InvSqrt evaluates the InvSqrt recipe of degree deg.
func (a *Approximate) InvSqrt(x float64, deg Degree) float64 {
	return a.eval(approx.InvSqrt, deg, x)
}

// Tanh evaluates the Tanh recipe of degree deg.
func (a *Approximate) Tanh(x float64, deg Degree) float64 { return a.eval(approx.Tanh, deg, x) }

// Ranges returns, per function, the inputs seen so far counted against the
// function's interval (for Exp: the shifted logits).
func (a *Approximate) Ranges() map[approx.Func]approx.RangeStats {
	out := make(map[approx.Func]approx.RangeStats, len(a.ranges))
	for fn, r := range a.ranges {
		out[fn] = *r
	}
	return out
}

// MergeRanges adds o's range counters into a's.
func (a *Approximate) MergeRanges(o *Approximate) {
	for fn, r := range o.ranges {
		*a.ranges[fn] = a.ranges[fn].Merge(*r)
	}
}

// Calibration margins: observed input ranges are widened by these factors so
// that inputs unseen in calibration (the test split, a user's text) stay
// inside the intervals, which the encrypted path cannot clamp to. They are
// generous because an out-of-range input makes the polynomial diverge, while
// a wider interval only costs a little precision or degree.
const (
	calibSymmetricMargin = 2.5 // GELU and tanh: half-width = margin · max |x|
	calibRecipMargin     = 2.0 // reciprocal: [min/margin, max·margin]
	calibInvSqrtMargin   = 8.0 // 1/√x: [min/(margin/2), max·margin]
	calibExpMargin       = 1.5 // exp: [margin · min, max + margin]
)

// Error targets used to pick the cheapest recipe on a calibrated interval:
// absolute error for GELU, tanh and exp (whose values stay near [0, 1] after
// the shift), relative error for the reciprocal and 1/√x.
const (
	CalibTargetHigh = 1e-4
	CalibTargetLow  = 1e-2
)

// calibDegrees are the polynomial degrees tried, cheapest first; 2^k - 1
// uses its depth best.
var calibDegrees = []int{3, 7, 15, 31, 63, 127, 255, 511}

// CalibrateApprox returns settings fitted to observed inputs. ranges must come
// from a forward pass with softmax shift `shift` (Exp's inputs are the
// shifted logits, Reciprocal's the row sums). The new shift centers the row
// sums around 1 in log scale (it moves the logits by δ = (ln min + ln max)/2
// of the sums, which divides every sum by e^δ). Every interval is the
// observed range widened by a margin, and every variant gets the
// lowest-depth, then fewest-multiplication recipe from calibDegrees (and 0 to
// 4 Newton steps for the reciprocal and 1/√x) whose error on the interval
// meets CalibTargetHigh (high variant) or CalibTargetLow (GELU's and exp's
// low variant; the others keep one variant). Exp keeps base's squarings.
func CalibrateApprox(base ApproxSettingsLiteral, shift float64, ranges map[approx.Func]approx.RangeStats) (ApproxSettingsLiteral, error) {
	return CalibrateApproxWithin(base, shift, ranges, 0)
}

// CalibrateApproxWithin is CalibrateApprox with every recipe at most
// maxDepth levels deep per refresh segment (0: no limit): the HE evaluator
// must fit each function between two refreshes, except that it refreshes
// between a polynomial and its Newton steps when the whole is deeper
// (approx.Recipe.SegmentDepth), at the price of one more refresh. Where no
// recipe within maxDepth meets the error target, the most accurate one
// within it is taken (its error is then above the target: check the
// registry's table); this is for intervals too wide for the target at the
// preset's depth (random-weight benchmarks).
func CalibrateApproxWithin(base ApproxSettingsLiteral, shift float64, ranges map[approx.Func]approx.RangeStats, maxDepth int) (ApproxSettingsLiteral, error) {
	return calibrate(base, shift, ranges, maxDepth, true)
}

// CalibrateApproxDepth is CalibrateApproxWithin with every recipe, Newton
// steps included, at most maxDepth levels deep in one piece: the
// rotation-free layers (mpcbridge/elementwise) evaluate a recipe in one
// call, with no refresh inside it.
func CalibrateApproxDepth(base ApproxSettingsLiteral, shift float64, ranges map[approx.Func]approx.RangeStats, maxDepth int) (ApproxSettingsLiteral, error) {
	return calibrate(base, shift, ranges, maxDepth, false)
}

// calibrate is CalibrateApproxWithin (split: a recipe's depth counted per
// refresh segment) and CalibrateApproxDepth (whole).
func calibrate(base ApproxSettingsLiteral, shift float64, ranges map[approx.Func]approx.RangeStats, maxDepth int, split bool) (ApproxSettingsLiteral, error) {
	for _, fn := range approx.Funcs() {
		r := ranges[fn]
		if r.N == 0 {
			return ApproxSettingsLiteral{}, fmt.Errorf("cannot calibrate %s: no inputs observed", fn)
		}
		if r.NaN > 0 {
			return ApproxSettingsLiteral{}, fmt.Errorf("cannot calibrate %s: %d NaN inputs", fn, r.NaN)
		}
	}
	sums := ranges[approx.Reciprocal]
	if sums.Min <= 0 {
		return ApproxSettingsLiteral{}, fmt.Errorf("cannot calibrate: non-positive softmax row sum %g", sums.Min)
	}
	delta := (math.Log(sums.Min) + math.Log(sums.Max)) / 2
	out := base
	out.SoftmaxShift = shift + delta
	scale := math.Exp(-delta)

	intervals := map[approx.Func][2]float64{}
	for _, fn := range []approx.Func{approx.GELU, approx.Tanh} {
		r := ranges[fn]
		h := math.Ceil(calibSymmetricMargin * math.Max(math.Abs(r.Min), math.Abs(r.Max)))
		intervals[fn] = [2]float64{-max(h, 4), max(h, 4)}
	}
	e := ranges[approx.Exp]
	intervals[approx.Exp] = [2]float64{
		math.Floor(calibExpMargin * math.Min(e.Min-delta, -1)),
		math.Ceil(math.Max(e.Max-delta, 0) + calibExpMargin),
	}
	intervals[approx.Reciprocal] = [2]float64{
		roundDown2(sums.Min * scale / calibRecipMargin), roundUp2(sums.Max * scale * calibRecipMargin)}
	v := ranges[approx.InvSqrt]
	if v.Min <= 0 {
		return ApproxSettingsLiteral{}, fmt.Errorf("cannot calibrate invsqrt: non-positive input %g", v.Min)
	}
	intervals[approx.InvSqrt] = [2]float64{roundDown2(v.Min / (calibInvSqrtMargin / 2)), roundUp2(v.Max * calibInvSqrtMargin)}

	for _, fn := range approx.Funcs() {
		fl := out.Registry.Func(fn)
		fl.Interval = intervals[fn]
		hi, err := cheapestVariant(out.Registry, fn, fl, []int{fl.High.Squarings}, CalibTargetHigh, maxDepth, split)
		if err != nil {
			return ApproxSettingsLiteral{}, err
		}
		lo := approx.VariantLiteral{} // same as high
		if fn == approx.GELU || fn == approx.Exp {
			// The high variant's squarings are tried too, so that the low
			// variant never costs more than the high one (which meets the
			// stricter target).
			sq := []int{fl.Low.Squarings}
			if hi.Squarings != fl.Low.Squarings {
				sq = append(sq, hi.Squarings)
			}
			if lo, err = cheapestVariant(out.Registry, fn, fl, sq, CalibTargetLow, maxDepth, split); err != nil {
				return ApproxSettingsLiteral{}, err
			}
		}
		fl.High, fl.Low = hi, lo
		out.Registry.SetFunc(fn, fl)
	}
	if err := out.Registry.Validate(); err != nil {
		return ApproxSettingsLiteral{}, fmt.Errorf("cannot calibrate: %w", err)
	}
	return out, nil
}

// cheapestVariant returns the variant of fn on fl's interval, with one of the
// given squaring counts (exp's; 0 for the others), with the lowest depth,
// then fewest ct-ct multiplications, whose error meets target; with maxDepth
// > 0, only variants within maxDepth count, and if none of them meets target,
// the most accurate of them is returned.
func cheapestVariant(lit approx.RegistryLiteral, fn approx.Func, fl approx.FuncLiteral, squarings []int, target float64, maxDepth int, split bool) (approx.VariantLiteral, error) {
	newtons := []int{0}
	if fn == approx.Reciprocal || fn == approx.InvSqrt {
		newtons = []int{0, 1, 2, 3, 4}
	}
	var (
		best, closest     approx.VariantLiteral
		bestCost          approx.Cost
		found, anyClosest bool
		closestErr        = math.Inf(1)
	)
	for _, sq := range squarings {
		for _, nt := range newtons {
			for _, deg := range calibDegrees {
				cand := approx.VariantLiteral{Degree: deg, Squarings: sq, Newton: nt}
				f := fl
				f.High, f.Low = cand, approx.VariantLiteral{}
				l := lit
				l.SetFunc(fn, f)
				reg, err := approx.NewRegistry(l)
				if err != nil {
					continue // e.g. a Newton start that does not converge
				}
				rec := reg.Recipe(fn, approx.High)
				c := rec.Cost()
				depth := c.Depth
				if split {
					depth = rec.SegmentDepth(maxDepth)
				}
				if maxDepth > 0 && depth > maxDepth {
					break // higher degrees are deeper still
				}
				st := rec.Stats()
				errv := st.MaxAbsErr
				if fn == approx.Reciprocal || fn == approx.InvSqrt {
					errv = st.MaxRelErr
				}
				if errv < closestErr {
					closest, closestErr, anyClosest = cand, errv, true
				}
				if errv > target {
					continue
				}
				if !found || c.Depth < bestCost.Depth || (c.Depth == bestCost.Depth && c.CtCtMuls < bestCost.CtCtMuls) {
					best, bestCost, found = cand, c, true
				}
				break // higher degrees with the same Newton count only cost more
			}
		}
	}
	switch {
	case found:
		return best, nil
	case maxDepth > 0 && anyClosest:
		return closest, nil
	}
	return approx.VariantLiteral{}, fmt.Errorf("cannot calibrate %s on [%g, %g]: no recipe reaches error %g",
		fn, fl.Interval[0], fl.Interval[1], target)
}

// roundDown2 and roundUp2 round a positive x to two significant digits,
// downwards and upwards, so calibrated intervals read well.
func roundDown2(x float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(x))-1)
	return math.Floor(x/p) * p
}

func roundUp2(x float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(x))-1)
	return math.Ceil(x/p) * p
}

// WriteApproxSettings writes lit to dir/approx.json.
func WriteApproxSettings(dir string, lit ApproxSettingsLiteral) error {
	b, err := json.MarshalIndent(lit, "", "  ")
	if err != nil {
		return fmt.Errorf("cannot encode approximation settings: %w", err)
	}
	path := filepath.Join(dir, ApproxFile)
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	return nil
}
