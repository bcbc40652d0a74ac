package kernels

import (
	"github.com/tuneinsight/lattigo/v5/core/rlwe"
	"github.com/tuneinsight/lattigo/v5/ring/ringqp"
)

// The operand checks every Backend applies, exported for backends
// implemented in other packages (package cuda).

// SameShape returns an error naming op unless the buffers have the same
// degree, count and basis.
func SameShape(op string, bufs ...Buffer) error { return sameShape(op, bufs...) }

// ValidateGadgetKey checks a gadget ciphertext for UploadGadgetKey and
// returns its levels and number of digits.
func ValidateGadgetKey(p *Params, key *rlwe.GadgetCiphertext) (levelQ, levelP, digits int, err error) {
	return checkGadgetKey(p, key)
}

// GadgetKeyPolys lists the polynomials of a gadget ciphertext in the order
// a backend stores them: digit-major, then the two components.
func GadgetKeyPolys(key *rlwe.GadgetCiphertext) []ringqp.Poly { return gadgetPolys(key) }

// ValidateDecompose checks the operands of DecomposeNTT and returns the
// number of digits per input polynomial.
func ValidateDecompose(p *Params, dst, cNTT, cCoeff Buffer, levelP int) (digits int, err error) {
	return checkDecompose(p, dst, cNTT, cCoeff, levelP)
}

// ValidateInnerProduct checks the operands of GadgetInnerProduct for a key
// at (keyLevelQ, keyLevelP) and returns the levels, the digits per group
// and the number of groups.
func ValidateInnerProduct(p *Params, dst, digits Buffer, keyLevelQ, keyLevelP int) (levelQ, levelP, nd, groups int, err error) {
	return checkInnerProduct(p, dst, digits, keyLevelQ, keyLevelP)
}

// CheckLevels reports an error unless the levels are within the chains.
func (p *Params) CheckLevels(levelQ, levelP int) error { return p.checkLevels(levelQ, levelP) }
