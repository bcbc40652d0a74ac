package ckks

import (
	"bytes"
	"encoding/binary"
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

// galois returns the template of the seeded Galois key of element g (its b
// halves; the rlk template is the seeded relinearization key's).
func (t *keyTemplates) galois(g uint64) (shapeTemplate, error) {
	return newShapeTemplate(func(v uint64) ([]byte, error) {
		gk := rlwe.NewGaloisKey(t.params)
		fillGadget(&gk.GadgetCiphertext, v)
		half := &rlwe.GaloisKey{GaloisElement: g, NthRoot: t.params.RingQ().NthRoot(),
			EvaluationKey: rlwe.EvaluationKey{GadgetCiphertext: bHalves(&gk.GadgetCiphertext)}}
		return half.MarshalBinary()
	})
}

// ciphertextTemplate is the template of a fresh ciphertext at level:
// degree 1, the default scale, NTT domain, batched slots.
func ciphertextTemplate(params hefloat.Parameters, level int) (shapeTemplate, error) {
	return newShapeTemplate(func(v uint64) ([]byte, error) {
		ct := hefloat.NewCiphertext(params, 1, level)
		ct.Scale = params.DefaultScale()
		ct.IsNTT, ct.IsMontgomery, ct.IsBatched = true, false, true
		ct.LogDimensions = params.LogMaxDimensions()
		for _, p := range ct.Value {
			fillPoly(p, v)
		}
		return ct.MarshalBinary()
	})
}

// decodeCtsChecked reads count ciphertexts in writeCts's form, each
// checked against tmpl before it is decoded and its coefficients against
// params' moduli after.
func decodeCtsChecked(params hefloat.Parameters, r *bytes.Reader, count int, tmpl shapeTemplate) ([]*rlwe.Ciphertext, error) {
	cts := make([]*rlwe.Ciphertext, count)
	for i := range cts {
		var sz [4]byte
		if _, err := r.Read(sz[:]); err != nil {
			return nil, fmt.Errorf("ciphertext %d: %w", i, err)
		}
		size := int(binary.LittleEndian.Uint32(sz[:]))
		if size != len(tmpl.zero) || size > r.Len() {
			return nil, fmt.Errorf("ciphertext %d declares %d bytes, want %d (%d left)", i, size, len(tmpl.zero), r.Len())
		}
		data := make([]byte, size)
		if _, err := r.Read(data); err != nil {
			return nil, fmt.Errorf("ciphertext %d: %w", i, err)
		}
		if err := tmpl.check(data); err != nil {
			return nil, fmt.Errorf("ciphertext %d: %w", i, err)
		}
		ct, err := unmarshalCiphertext(data)
		if err != nil {
			return nil, fmt.Errorf("ciphertext %d: %w", i, err)
		}
		if err := checkReduced(params.RingQ().ModuliChain(), ct.Value...); err != nil {
			return nil, fmt.Errorf("ciphertext %d: %w", i, err)
		}
		cts[i] = ct
	}
	return cts, nil
}

// DecodeCtMatrix decodes an encrypted matrix received from a peer: it must
// have layout lay and hold fresh ciphertexts of params at level (degree 1,
// default scale), which are checked before Lattigo decodes them. Use it
// instead of UnmarshalBinary for anything that did not come from this
// process.
func DecodeCtMatrix(params Parameters, lay Layout, level int, p []byte) (*CtMatrix, error) {
	tmpl, err := ciphertextTemplate(params, level)
	if err != nil {
		return nil, fmt.Errorf("cannot DecodeCtMatrix: %w", err)
	}
	head := binary.LittleEndian.AppendUint32([]byte(ctMatrixMagic), uint32(lay.Rows))
	for _, v := range []int{lay.Cols, lay.Block, lay.Slots, lay.HeadDim, lay.NumCts()} {
		head = binary.LittleEndian.AppendUint32(head, uint32(v))
	}
	if !bytes.HasPrefix(p, head) {
		return nil, fmt.Errorf("cannot DecodeCtMatrix: not a matrix of layout %+v", lay)
	}
	r := bytes.NewReader(p[len(head):])
	cts, err := decodeCtsChecked(params, r, lay.NumCts(), tmpl)
	if err != nil {
		return nil, fmt.Errorf("cannot DecodeCtMatrix: %w", err)
	}
	if r.Len() != 0 {
		return nil, fmt.Errorf("cannot DecodeCtMatrix: %d trailing bytes", r.Len())
	}
	return &CtMatrix{Layout: lay, Cts: cts}, nil
}

// DecodeAttentionMasks decodes the attention masks of layout lay received
// from a peer, checked like DecodeCtMatrix's ciphertexts.
func DecodeAttentionMasks(params Parameters, lay Layout, level int, p []byte) (*AttentionMasks, error) {
	tmpl, err := ciphertextTemplate(params, level)
	if err != nil {
		return nil, fmt.Errorf("cannot DecodeAttentionMasks: %w", err)
	}
	k := numDense(lay)
	head := binary.LittleEndian.AppendUint32([]byte(attentionMasksMagic), uint32(k))
	if !bytes.HasPrefix(p, head) {
		return nil, fmt.Errorf("cannot DecodeAttentionMasks: not the masks of layout %+v", lay)
	}
	r := bytes.NewReader(p[len(head):])
	cts, err := decodeCtsChecked(params, r, k+1, tmpl)
	if err != nil {
		return nil, fmt.Errorf("cannot DecodeAttentionMasks: %w", err)
	}
	if r.Len() != 0 {
		return nil, fmt.Errorf("cannot DecodeAttentionMasks: %d trailing bytes", r.Len())
	}
	return &AttentionMasks{KeyMask: cts[:k], QueryWeights: cts[k]}, nil
}
