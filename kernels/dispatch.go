package kernels

import (
	"fmt"

	"github.com/klauspost/cpuid/v2"
)

// Variant names a family of CPU kernels. All variants return identical
// words; they differ only in speed.
type Variant int

const (
	// VariantAuto asks for DefaultVariant().
	VariantAuto Variant = iota
	// VariantGeneric is the plain-loop reference, one butterfly (or one
	// coefficient) per iteration.
	VariantGeneric
	// VariantUnrolled processes eight butterflies or coefficients per
	// iteration through fixed-size array views, which removes bounds checks
	// and lets wide out-of-order cores overlap the 64x64->128 products.
	VariantUnrolled
)

// String returns "auto", "generic" or "unrolled".
func (v Variant) String() string {
	switch v {
	case VariantAuto:
		return "auto"
	case VariantGeneric:
		return "generic"
	case VariantUnrolled:
		return "unrolled"
	default:
		return fmt.Sprintf("Variant(%d)", int(v))
	}
}

// defaultVariant is the variant chosen for this CPU, once at start-up and
// never written again (as CIRCL's feature flags).
var defaultVariant = selectVariant(cpuid.CPU)

// DefaultVariant returns the variant chosen for this CPU. The unrolled kernels pay off
// on cores that can keep several 64x64->128 multiplications in flight: x86-64
// cores with AVX2 and BMI2 (Haswell and later, Zen) and 64-bit Arm cores with
// Advanced SIMD. Elsewhere the generic loops are used.
func DefaultVariant() Variant { return defaultVariant }

func selectVariant(c cpuid.CPUInfo) Variant {
	switch {
	case c.Supports(cpuid.AVX2, cpuid.BMI2):
		return VariantUnrolled
	case c.Supports(cpuid.ASIMD):
		return VariantUnrolled
	default:
		return VariantGeneric
	}
}

// CPUFeatures describes the features DefaultVariant was chosen from, for
// benchmark metadata.
func CPUFeatures() string {
	return fmt.Sprintf("%s avx2=%t bmi2=%t asimd=%t", cpuid.CPU.BrandName,
		cpuid.CPU.Supports(cpuid.AVX2), cpuid.CPU.Supports(cpuid.BMI2), cpuid.CPU.Supports(cpuid.ASIMD))
}
