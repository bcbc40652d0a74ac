package elementwise

import (
	"fmt"
	"sort"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"
	"github.com/tuneinsight/lattigo/v5/he/hefloat"
	"github.com/tuneinsight/lattigo/v5/ring"

	"github.com/cipherprune/cipherprune/ckks"
)

// Preset names of this package. ParametersLiteral.Preset names one of these
// or a preset of the ckks package (ckks.PresetByName).
const (
	// Elementwise14 is this package's default: the conjugate-invariant
	// ring of degree N = 2^14 (Lattigo's ring.ConjugateInvariant,
	// Z[X+X^-1]/(X^2N+1)), N = 16384 real slots per ciphertext (twice
	// ckks.Interactive14's 8192), Δ = 2^36, a 103-bit mask level (primes of
	// 52 and 51 bits: the mask level is 1), seven 36-bit levels above it,
	// two 41-bit key-switching primes: log QP = 437 (the HE standard's
	// bound is 438). Seven levels carry every recipe of sentiment-tiny's
	// registry with its change of basis folded into the encoding (GELU
	// high and 1/x need all seven); the calls need no refresh, so no level
	// is kept for one.
	Elementwise14 = "Elementwise14"
	// Elementwise15 is the deep preset: the conjugate-invariant ring of
	// degree N = 2^15, 32768 real slots, the same Δ = 2^36 and 103-bit mask
	// level (52 and 51 bits, mask level 1) as Elementwise14, seventeen
	// 36-bit levels above it and four 41-bit key-switching primes (digits
	// of four primes): log QP = 879, the HE standard's bound for N = 2^15
	// being 881. For recipes deeper than Elementwise14's seven levels
	// (spam-mini's 1/x, degree 127 and one Newton step, needs ten). Two or
	// three key-switching primes would leave 19 or 18 levels; with a
	// degree-127 polynomial at the levels the calls use (8 down to 1) three
	// and four are within 5% of each other and two 5-10% slower
	// (BenchmarkKeySwitchPrimes, the doc's figures), and four give the
	// smallest relinearization key (5 digits at the top level against 7
	// and 11).
	Elementwise15 = "Elementwise15"
	// InsecureElementwise11 is Elementwise14's chain in N = 2^11 (2048
	// real slots): the same levels, scales and mask widths, tiny and fast,
	// NOT secure (tests only).
	InsecureElementwise11 = "InsecureElementwise11"
	// InsecureElementwise11Deep is Elementwise15's chain in N = 2^11 (2048
	// real slots): the same seventeen levels above the mask, scales, mask
	// widths and key-switching primes, so that tests of deep recipes
	// (spam-mini's) run fast; NOT secure (tests only).
	InsecureElementwise11Deep = "InsecureElementwise11Deep"
)

// DefaultPreset is the preset of a literal that names none.
const DefaultPreset = Elementwise14

// Presets returns this package's presets, secure ones first (a fresh
// slice). They are ckks.Preset values (Mode Interactive: nothing here
// bootstraps), checked by the same HE-standard test as the ckks presets
// (Preset.CheckSecurity): log2(QP) against the 128-bit bound of the ring
// degree, ternary secret.
//
// On the conjugate-invariant ring the RLWE instance is one of dimension N
// (N coefficients per element, the secret ternary and the error a discrete
// Gaussian of σ = 3.2 on them, Lattigo's defaults), so the table's entry
// for N applies as for the standard ring of degree N: the attacks the
// standard's table is computed from (the lattice estimator's primal and
// dual attacks) see an LWE instance of the same dimension, modulus, secret
// and error. The ring is the maximal real subring of the 4N-th cyclotomic
// field; Kim and Song (ePrint 2018/952, "Approximate homomorphic
// encryption over the conjugate-invariant ring") choose its parameters the
// same way, and Lattigo documents it as the same security as the standard
// ring of the same degree.
func Presets() []ckks.Preset {
	lit := hefloat.ParametersLiteral{
		LogN:            14,
		LogQ:            []int{52, 51, 36, 36, 36, 36, 36, 36, 36},
		LogP:            []int{41, 41},
		LogDefaultScale: 36,
		RingType:        ring.ConjugateInvariant,
		Xs:              rlwe.DefaultXs,
		Xe:              rlwe.DefaultXe,
	}
	test11 := lit
	test11.LogN = 11
	deep := lit
	deep.LogN = 15
	deep.LogQ = append([]int{52, 51}, repeat(36, 17)...)
	deep.LogP = []int{41, 41, 41, 41}
	deep11 := deep
	deep11.LogN = 11
	return []ckks.Preset{
		{Name: Elementwise14, Mode: ckks.Interactive, Literal: lit,
			Description: "elementwise calls: conjugate-invariant N=2^14, 16384 real slots, 7 levels above the mask (default)"},
		{Name: Elementwise15, Mode: ckks.Interactive, Literal: deep,
			Description: "deep elementwise calls: conjugate-invariant N=2^15, 32768 real slots, 17 levels above the mask"},
		{Name: InsecureElementwise11, Mode: ckks.Interactive, Insecure: true, Literal: test11,
			Description: "tests only: Elementwise14's chain in N=2^11, not secure"},
		{Name: InsecureElementwise11Deep, Mode: ckks.Interactive, Insecure: true, Literal: deep11,
			Description: "tests only: Elementwise15's chain in N=2^11, not secure"},
	}
}

// repeat returns n copies of v.
func repeat(v, n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = v
	}
	return out
}

// PresetByName returns the preset called name: one of Presets, else the
// ckks preset of that name (ckks.PresetByName). An insecure preset is
// refused unless allowInsecure is set; a secure one is checked against the
// HE standard before it is returned.
func PresetByName(name string, allowInsecure bool) (ckks.Preset, error) {
	for _, p := range Presets() {
		if p.Name != name {
			continue
		}
		if p.Insecure {
			if !allowInsecure {
				return ckks.Preset{}, fmt.Errorf("cannot PresetByName: %q is insecure (tests only); pass allowInsecure to use it", name)
			}
			return p, nil
		}
		if err := p.CheckSecurity(); err != nil {
			return ckks.Preset{}, fmt.Errorf("cannot PresetByName: %w", err)
		}
		return p, nil
	}
	p, err := ckks.PresetByName(name, allowInsecure)
	if err != nil {
		names := []string{}
		for _, q := range Presets() {
			names = append(names, q.Name)
		}
		sort.Strings(names)
		return ckks.Preset{}, fmt.Errorf("cannot PresetByName: %q is neither a preset of this package (%v) nor a ckks preset: %w", name, names, err)
	}
	return p, nil
}
