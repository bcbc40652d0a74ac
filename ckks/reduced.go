package ckks

import (
	"fmt"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"
	"github.com/tuneinsight/lattigo/v5/he/hefloat"
	"github.com/tuneinsight/lattigo/v5/ring"
	"github.com/tuneinsight/lattigo/v5/ring/ringqp"
)

// checkReducedPoly checks that every coefficient of p is below the
// modulus of its RNS limb (moduli[i] for limb i). Lattigo's decoders accept
// any 64-bit word and its arithmetic assumes reduced inputs, so an
// unreduced coefficient from a peer would enter every later result
// unnoticed: every key a peer sends passes here.
func checkReducedPoly(moduli []uint64, p ring.Poly) error {
	if len(p.Coeffs) > len(moduli) {
		return fmt.Errorf("%d RNS limbs, the modulus chain has %d", len(p.Coeffs), len(moduli))
	}
	for i, limb := range p.Coeffs {
		q := moduli[i]
		for j, c := range limb {
			if c >= q {
				return fmt.Errorf("coefficient %d of RNS limb %d is %d, not below its modulus %d", j, i, c, q)
			}
		}
	}
	return nil
}

// checkReducedQP is checkReducedPoly for polynomials of the ring QP: the Q
// limbs against params' Q moduli, the P limbs against its P moduli.
func checkReducedQP(params hefloat.Parameters, ps ...ringqp.Poly) error {
	q := params.RingQ().ModuliChain()
	var p []uint64
	if rp := params.RingP(); rp != nil {
		p = rp.ModuliChain()
	}
	for k, v := range ps {
		if err := checkReducedPoly(q, v.Q); err != nil {
			return fmt.Errorf("polynomial %d, Q limbs: %w", k, err)
		}
		if err := checkReducedPoly(p, v.P); err != nil {
			return fmt.Errorf("polynomial %d, P limbs: %w", k, err)
		}
	}
	return nil
}

// checkReducedGadget checks the coefficients of every polynomial of a
// gadget matrix (checkReducedQP).
func checkReducedGadget(params hefloat.Parameters, g *rlwe.GadgetCiphertext) error {
	for i, row := range g.Value {
		for j, vec := range row {
			if err := checkReducedQP(params, vec...); err != nil {
				return fmt.Errorf("gadget entry (%d, %d): %w", i, j, err)
			}
		}
	}
	return nil
}
