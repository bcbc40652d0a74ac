package ckks

import (
	"errors"
	"fmt"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"
	"github.com/tuneinsight/lattigo/v5/he/hefloat"
	"github.com/tuneinsight/lattigo/v5/ring"
	"github.com/tuneinsight/lattigo/v5/ring/ringqp"
)

// Lattigo's decoders trust the sizes written inside the data: a corrupted
// length field makes them allocate terabytes (a fatal out-of-memory, not a
// recoverable panic) or index out of range. So everything received from a
// peer is checked against a template first: the binary form of the
// expected object with all coefficients zero and with all coefficients
// 2^64-1. The bytes where the two agree are the structure (headers, sizes,
// levels, metadata such as the scale or the Galois element) and must match
// exactly; only the coefficient bytes are free. A checked payload then
// decodes to an object of exactly the expected shape.

// shapeTemplate is the structure of one expected binary form.
type shapeTemplate struct {
	zero, ones []byte
}

func newShapeTemplate(marshal func(fill uint64) ([]byte, error)) (shapeTemplate, error) {
	zero, err := marshal(0)
	if err != nil {
		return shapeTemplate{}, err
	}
	ones, err := marshal(^uint64(0))
	if err != nil {
		return shapeTemplate{}, err
	}
	if len(zero) != len(ones) {
		return shapeTemplate{}, errors.New("template sizes differ")
	}
	return shapeTemplate{zero: zero, ones: ones}, nil
}

// check reports whether p has the template's structure.
func (t shapeTemplate) check(p []byte) error {
	if len(p) != len(t.zero) {
		return fmt.Errorf("%d bytes, want %d", len(p), len(t.zero))
	}
	for i := range p {
		if t.zero[i] == t.ones[i] && p[i] != t.zero[i] {
			return fmt.Errorf("structure differs at byte %d", i)
		}
	}
	return nil
}

func fillPoly(p ring.Poly, v uint64) {
	for _, c := range p.Coeffs {
		for i := range c {
			c[i] = v
		}
	}
}

func fillPolyQP(p ringqp.Poly, v uint64) {
	fillPoly(p.Q, v)
	fillPoly(p.P, v)
}

func fillGadget(g *rlwe.GadgetCiphertext, v uint64) {
	for _, row := range g.Value {
		for _, vec := range row {
			for _, p := range vec {
				fillPolyQP(p, v)
			}
		}
	}
}

// keyTemplates are the templates of one parameter set's keys.
type keyTemplates struct {
	params hefloat.Parameters
	pk     shapeTemplate
	rlk    shapeTemplate
}

func newKeyTemplates(params hefloat.Parameters) (*keyTemplates, error) {
	t := &keyTemplates{params: params}
	var err error
	if t.pk, err = newShapeTemplate(func(v uint64) ([]byte, error) {
		pk := rlwe.NewPublicKey(params)
		for _, p := range pk.Value {
			fillPolyQP(p, v)
		}
		return pk.MarshalBinary()
	}); err != nil {
		return nil, err
	}
	if t.rlk, err = newShapeTemplate(func(v uint64) ([]byte, error) {
		rlk := rlwe.NewRelinearizationKey(params)
		fillGadget(&rlk.GadgetCiphertext, v)
		return (&rlwe.RelinearizationKey{EvaluationKey: rlwe.EvaluationKey{GadgetCiphertext: bHalves(&rlk.GadgetCiphertext)}}).MarshalBinary()
	}); err != nil {
		return nil, err
	}
	return t, nil
}
