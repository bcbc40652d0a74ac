package ckks

import (
	"fmt"
	"log"
	"sort"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"
	"github.com/tuneinsight/lattigo/v5/he/hefloat"
	"github.com/tuneinsight/lattigo/v5/ring"
)

// Mode is the way a preset is meant to be used.
type Mode uint8

const (
	// Interactive presets get a fresh encryption from the client at every
	// call in slots (mpcbridge/elementwise: shares to HE, the polynomial,
	// HE to shares), so they need no bootstrapping and can use small rings.
	Interactive Mode = iota
)

// String returns "interactive".
func (m Mode) String() string {
	switch m {
	case Interactive:
		return "interactive"
	default:
		return fmt.Sprintf("Mode(%d)", uint8(m))
	}
}

// heStandard128 is the largest log2(QP) that the Homomorphic Encryption
// Standard (Albrecht et al., 2018, table for 128-bit classical security,
// ternary secret, error sigma 3.2) allows for each log2(N).
var heStandard128 = [...]struct{ logN, maxLogQP int }{
	{10, 27}, {11, 54}, {12, 109}, {13, 218}, {14, 438}, {15, 881}, {16, 1772},
}

// HEStandardMaxLogQP returns the largest log2(QP) allowed at 128-bit
// classical security for a ternary secret in ring degree 2^logN, from the
// Homomorphic Encryption Standard. It fails for a ring degree the table does
// not cover.
func HEStandardMaxLogQP(logN int) (int, error) {
	for _, e := range heStandard128 {
		if e.logN == logN {
			return e.maxLogQP, nil
		}
	}
	return 0, fmt.Errorf("cannot HEStandardMaxLogQP: no 128-bit bound for LogN=%d", logN)
}

// Preset is a named CKKS parameter set. Build the Lattigo parameters with
// Params; check it with CheckSecurity.
type Preset struct {
	// Name identifies the preset (PresetByName).
	Name string
	// Mode is how the preset is meant to be used.
	Mode Mode
	// Insecure marks presets whose ring is too small for 128-bit security:
	// they exist for fast tests only and PresetByName refuses them unless
	// asked explicitly.
	Insecure bool
	// Literal is the unchecked Lattigo description.
	Literal hefloat.ParametersLiteral
	// Description says what the preset is for.
	Description string
}

// Params validates the literal and returns the Lattigo parameters.
func (p Preset) Params() (hefloat.Parameters, error) {
	params, err := hefloat.NewParametersFromLiteral(p.Literal)
	if err != nil {
		return hefloat.Parameters{}, fmt.Errorf("cannot Params of preset %q: %w", p.Name, err)
	}
	return params, nil
}

// SecurityReport is the outcome of checking a preset against the HE standard.
type SecurityReport struct {
	LogN int
	// LogQP is log2 of the full modulus Q·P (the key-switching modulus
	// included, as the standard requires).
	LogQP float64
	// MaxLogQP is the 128-bit bound for LogN.
	MaxLogQP int
	// TernarySecret reports whether the secret is ternary (the standard's
	// table assumes it).
	TernarySecret bool
	// Secure is LogQP <= MaxLogQP && TernarySecret.
	Secure bool
}

// String formats the report for tables.
func (r SecurityReport) String() string {
	verdict := "128-bit: no"
	if r.Secure {
		verdict = "128-bit: yes"
	}
	return fmt.Sprintf("logN=%d logQP=%.1f bound=%d %s", r.LogN, r.LogQP, r.MaxLogQP, verdict)
}

// Security measures the preset against the HE standard's 128-bit bound.
func (p Preset) Security() (SecurityReport, error) {
	params, err := p.Params()
	if err != nil {
		return SecurityReport{}, err
	}
	rep := SecurityReport{LogN: params.LogN(), LogQP: params.LogQP()}
	_, rep.TernarySecret = params.Xs().(ring.Ternary)
	bound, err := HEStandardMaxLogQP(params.LogN())
	if err != nil {
		return rep, nil // no bound known: not secure
	}
	rep.MaxLogQP = bound
	rep.Secure = rep.TernarySecret && rep.LogQP <= float64(bound)
	return rep, nil
}

// CheckSecurity returns an error unless the preset meets the 128-bit bound.
func (p Preset) CheckSecurity() error {
	rep, err := p.Security()
	if err != nil {
		return fmt.Errorf("cannot CheckSecurity: %w", err)
	}
	if !rep.Secure {
		return fmt.Errorf("cannot CheckSecurity: preset %q is not 128-bit secure (%s)", p.Name, rep)
	}
	return nil
}

// Preset names.
const (
	// Interactive14 is N=2^14, 10 levels of 2^33 above a 46-bit base prime,
	// one 60-bit key-switching prime: log QP = 436 (bound 438). Ten levels
	// is the least that carries the registry's deepest recipe (InvSqrt:
	// change of basis + degree 511) between two refreshes.
	Interactive14 = "Interactive14"
	// Interactive15 is N=2^15, 16 levels of 2^40 above a 55-bit base prime,
	// three 60-bit key-switching primes: log QP = 875 (bound 881).
	Interactive15 = "Interactive15"
	// InsecureTest11 has Interactive14's modulus chain in N=2^11: the same
	// levels and scales, tiny and fast, NOT secure.
	InsecureTest11 = "InsecureTest11"
	// InsecureTest12 has Interactive15's modulus chain in N=2^12: NOT secure.
	InsecureTest12 = "InsecureTest12"
)

func chain(first, size, count int) []int {
	q := make([]int, 0, count+1)
	q = append(q, first)
	for i := 0; i < count; i++ {
		q = append(q, size)
	}
	return q
}

// Presets returns every preset, secure ones first (a fresh slice).
func Presets() []Preset {
	lit14 := hefloat.ParametersLiteral{
		LogN:            14,
		LogQ:            chain(46, 33, 10),
		LogP:            []int{60},
		LogDefaultScale: 33,
		Xs:              rlwe.DefaultXs,
		Xe:              rlwe.DefaultXe,
	}
	lit15 := hefloat.ParametersLiteral{
		LogN:            15,
		LogQ:            chain(55, 40, 16),
		LogP:            []int{60, 60, 60},
		LogDefaultScale: 40,
		Xs:              rlwe.DefaultXs,
		Xe:              rlwe.DefaultXe,
	}
	test11 := lit14
	test11.LogN = 11
	test12 := lit15
	test12.LogN = 12
	return []Preset{
		{Name: Interactive14, Mode: Interactive, Literal: lit14,
			Description: "interactive mode, N=2^14, 10 levels per refresh (default)"},
		{Name: Interactive15, Mode: Interactive, Literal: lit15,
			Description: "interactive mode, N=2^15, 16 levels per refresh"},
		{Name: InsecureTest11, Mode: Interactive, Insecure: true, Literal: test11,
			Description: "tests only: Interactive14's chain in N=2^11, not secure"},
		{Name: InsecureTest12, Mode: Interactive, Insecure: true, Literal: test12,
			Description: "tests only: Interactive15's chain in N=2^12, not secure"},
	}
}

// DefaultPreset is the name of the preset used when none is asked for.
const DefaultPreset = Interactive14

// PresetByName returns the preset called name. An insecure preset is
// refused unless allowInsecure is set, and then a warning is logged; a
// secure preset is checked against the HE standard before it is returned.
func PresetByName(name string, allowInsecure bool) (Preset, error) {
	for _, p := range Presets() {
		if p.Name != name {
			continue
		}
		if p.Insecure {
			if !allowInsecure {
				return Preset{}, fmt.Errorf("cannot PresetByName: %q is insecure (tests only); pass allowInsecure to use it", name)
			}
			log.Printf("ckks: WARNING: using insecure preset %q (not 128-bit secure, tests only)", name)
			return p, nil
		}
		if err := p.CheckSecurity(); err != nil {
			return Preset{}, fmt.Errorf("cannot PresetByName: %w", err)
		}
		return p, nil
	}
	names := make([]string, 0, 4)
	for _, p := range Presets() {
		names = append(names, p.Name)
	}
	sort.Strings(names)
	return Preset{}, fmt.Errorf("cannot PresetByName: unknown preset %q (known: %v)", name, names)
}
