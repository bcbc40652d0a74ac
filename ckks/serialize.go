package ckks

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"
	"github.com/tuneinsight/lattigo/v5/he/hefloat"
	"github.com/tuneinsight/lattigo/v5/ring"
	"github.com/tuneinsight/lattigo/v5/ring/ringqp"

	"github.com/cipherprune/cipherprune/models"
)

// Limits on decoded sizes.
const (
	// MaxLinearDim bounds In and Out of a decoded EncodedLinear.
	MaxLinearDim = 1 << 16
	// MaxCiphertexts bounds the number of ciphertexts of a decoded CtMatrix.
	MaxCiphertexts = 1 << 16
)

const encodedLinearMagic = "CPEL1"

// BinarySize returns the size of MarshalBinary's output: a header and the
// weights and bias as float64 (the plaintext diagonals are a deterministic
// function of them; the server encodes them at load time or on the fly).
func (el *EncodedLinear) BinarySize() int {
	return len(encodedLinearMagic) + 5*4 + 2*8 + 8*(el.In*el.Out+el.Out)
}

// WriteTo writes the layer to w.
func (el *EncodedLinear) WriteTo(w io.Writer) (int64, error) {
	buf := make([]byte, 0, el.BinarySize())
	buf = append(buf, encodedLinearMagic...)
	for _, v := range []int{el.In, el.Out, el.Block, el.Slots, el.Baby} {
		buf = binary.LittleEndian.AppendUint32(buf, uint32(v))
	}
	buf = binary.LittleEndian.AppendUint64(buf, math.Float64bits(el.Scale))
	buf = binary.LittleEndian.AppendUint64(buf, math.Float64bits(el.Shift))
	for _, x := range el.W.Data {
		buf = binary.LittleEndian.AppendUint64(buf, math.Float64bits(x))
	}
	for _, x := range el.Bias {
		buf = binary.LittleEndian.AppendUint64(buf, math.Float64bits(x))
	}
	n, err := w.Write(buf)
	if err != nil {
		return int64(n), fmt.Errorf("cannot WriteTo: %w", err)
	}
	return int64(n), nil
}

// MarshalBinary encodes the layer.
func (el *EncodedLinear) MarshalBinary() ([]byte, error) {
	var b bytes.Buffer
	if _, err := el.WriteTo(&b); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// ReadFrom reads a layer written by WriteTo, checking every size.
func (el *EncodedLinear) ReadFrom(r io.Reader) (int64, error) {
	head := make([]byte, len(encodedLinearMagic)+5*4+2*8)
	n, err := io.ReadFull(r, head)
	if err != nil {
		return int64(n), fmt.Errorf("cannot ReadFrom: header: %w", err)
	}
	if string(head[:len(encodedLinearMagic)]) != encodedLinearMagic {
		return int64(n), errors.New("cannot ReadFrom: not an encoded linear layer")
	}
	p := head[len(encodedLinearMagic):]
	var dims [5]int
	for i := range dims {
		dims[i] = int(binary.LittleEndian.Uint32(p[4*i:]))
	}
	in, out, block, slots, baby := dims[0], dims[1], dims[2], dims[3], dims[4]
	switch {
	case in < 1 || in > MaxLinearDim:
		return int64(n), fmt.Errorf("cannot ReadFrom: In %d out of range", in)
	case out < 1 || out > MaxLinearDim:
		return int64(n), fmt.Errorf("cannot ReadFrom: Out %d out of range", out)
	case slots < 1 || slots > 1<<20 || slots&(slots-1) != 0:
		return int64(n), fmt.Errorf("cannot ReadFrom: Slots %d invalid", slots)
	case block < 1 || block > slots || block&(block-1) != 0:
		return int64(n), fmt.Errorf("cannot ReadFrom: Block %d invalid", block)
	case baby < 1 || baby > slots/block || baby&(baby-1) != 0:
		return int64(n), fmt.Errorf("cannot ReadFrom: Baby %d invalid", baby)
	}
	scale := math.Float64frombits(binary.LittleEndian.Uint64(p[20:]))
	shift := math.Float64frombits(binary.LittleEndian.Uint64(p[28:]))
	if math.IsNaN(scale) || math.IsInf(scale, 0) || math.IsNaN(shift) || math.IsInf(shift, 0) {
		return int64(n), errors.New("cannot ReadFrom: non-finite Scale or Shift")
	}
	data := make([]byte, 8*(in*out+out))
	m, err := io.ReadFull(r, data)
	n += m
	if err != nil {
		return int64(n), fmt.Errorf("cannot ReadFrom: weights: %w", err)
	}
	vals := make([]float64, in*out+out)
	for i := range vals {
		vals[i] = math.Float64frombits(binary.LittleEndian.Uint64(data[8*i:]))
	}
	*el = EncodedLinear{
		In: in, Out: out, Block: block, Slots: slots, Baby: baby, Scale: scale, Shift: shift,
		W:    models.Matrix{Rows: out, Cols: in, Data: vals[:in*out]},
		Bias: vals[in*out:], cacheLevel: -1,
	}
	return int64(n), nil
}

// UnmarshalBinary decodes a layer encoded by MarshalBinary.
func (el *EncodedLinear) UnmarshalBinary(p []byte) error {
	r := bytes.NewReader(p)
	if _, err := el.ReadFrom(r); err != nil {
		return err
	}
	if r.Len() != 0 {
		return fmt.Errorf("cannot UnmarshalBinary: %d trailing bytes", r.Len())
	}
	return nil
}

// ctMatrixMagic starts an encrypted matrix: then Rows, Cols, Block, Slots,
// HeadDim and the number of ciphertexts (uint32 each), and the ciphertexts.
const ctMatrixMagic = "CPCM2"

// ctMatrixFields is the number of uint32 header fields after the magic.
const ctMatrixFields = 6

// BinarySize returns the size of MarshalBinary's output.
func (m *CtMatrix) BinarySize() int {
	s := len(ctMatrixMagic) + ctMatrixFields*4
	for _, ct := range m.Cts {
		s += 4 + ct.BinarySize()
	}
	return s
}

// WriteTo writes the layout and the ciphertexts.
func (m *CtMatrix) WriteTo(w io.Writer) (int64, error) {
	if err := m.Validate(); err != nil {
		return 0, fmt.Errorf("cannot WriteTo: %w", err)
	}
	head := []byte(ctMatrixMagic)
	for _, v := range []int{m.Layout.Rows, m.Layout.Cols, m.Layout.Block, m.Layout.Slots, m.Layout.HeadDim, len(m.Cts)} {
		head = binary.LittleEndian.AppendUint32(head, uint32(v))
	}
	n, err := w.Write(head)
	total := int64(n)
	if err != nil {
		return total, fmt.Errorf("cannot WriteTo: %w", err)
	}
	k, err := writeCts(w, m.Cts)
	total += k
	if err != nil {
		return total, fmt.Errorf("cannot WriteTo: %w", err)
	}
	return total, nil
}

// writeCts writes each ciphertext as its size (uint32, little-endian) and
// Lattigo's binary form.
func writeCts(w io.Writer, cts []*rlwe.Ciphertext) (int64, error) {
	var total int64
	for _, ct := range cts {
		sz := binary.LittleEndian.AppendUint32(nil, uint32(ct.BinarySize()))
		k, err := w.Write(sz)
		total += int64(k)
		if err != nil {
			return total, err
		}
		k64, err := ct.WriteTo(w)
		total += k64
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// readCts reads count ciphertexts written by writeCts, each of at most
// maxCtBytes bytes.
func readCts(r io.Reader, count, maxCtBytes int) ([]*rlwe.Ciphertext, int64, error) {
	var total int64
	cts := make([]*rlwe.Ciphertext, count)
	for i := range cts {
		var sz [4]byte
		k, err := io.ReadFull(r, sz[:])
		total += int64(k)
		if err != nil {
			return nil, total, fmt.Errorf("ciphertext %d: %w", i, err)
		}
		size := int(binary.LittleEndian.Uint32(sz[:]))
		if size < 1 || size > maxCtBytes {
			return nil, total, fmt.Errorf("ciphertext %d declares %d bytes", i, size)
		}
		data := make([]byte, size)
		k, err = io.ReadFull(r, data)
		total += int64(k)
		if err != nil {
			return nil, total, fmt.Errorf("ciphertext %d: %w", i, err)
		}
		ct, err := unmarshalCiphertext(data)
		if err != nil {
			return nil, total, fmt.Errorf("ciphertext %d: %w", i, err)
		}
		cts[i] = ct
	}
	return cts, total, nil
}

// MarshalBinary encodes the matrix.
func (m *CtMatrix) MarshalBinary() ([]byte, error) {
	var b bytes.Buffer
	if _, err := m.WriteTo(&b); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// ReadFrom reads a matrix written by WriteTo; maxCtBytes bounds each
// ciphertext's declared size (use the parameters' top-level ciphertext size).
func (m *CtMatrix) ReadFrom(r io.Reader) (int64, error) {
	return m.readFrom(r, 1<<30)
}

func (m *CtMatrix) readFrom(r io.Reader, maxCtBytes int) (int64, error) {
	head := make([]byte, len(ctMatrixMagic)+ctMatrixFields*4)
	n, err := io.ReadFull(r, head)
	total := int64(n)
	if err != nil {
		return total, fmt.Errorf("cannot ReadFrom: header: %w", err)
	}
	if string(head[:len(ctMatrixMagic)]) != ctMatrixMagic {
		return total, errors.New("cannot ReadFrom: not an encrypted matrix")
	}
	p := head[len(ctMatrixMagic):]
	var v [ctMatrixFields]int
	for i := range v {
		v[i] = int(binary.LittleEndian.Uint32(p[4*i:]))
	}
	lay := Layout{Rows: v[0], Cols: v[1], Block: v[2], Slots: v[3], HeadDim: v[4]}
	if err := lay.Validate(); err != nil {
		return total, fmt.Errorf("cannot ReadFrom: %w", err)
	}
	if v[5] != lay.NumCts() || v[5] > MaxCiphertexts {
		return total, fmt.Errorf("cannot ReadFrom: %d ciphertexts for a layout of %d", v[5], lay.NumCts())
	}
	cts, k, err := readCts(r, v[5], maxCtBytes)
	total += k
	if err != nil {
		return total, fmt.Errorf("cannot ReadFrom: %w", err)
	}
	*m = CtMatrix{Layout: lay, Cts: cts}
	return total, nil
}

// UnmarshalBinary decodes a matrix encoded by MarshalBinary. Like Lattigo's
// decoders it trusts the sizes inside the data: use it for data this
// process wrote, and DecodeCtMatrix for anything from a peer.
func (m *CtMatrix) UnmarshalBinary(p []byte) error {
	r := bytes.NewReader(p)
	if _, err := m.readFrom(r, len(p)); err != nil {
		return err
	}
	if r.Len() != 0 {
		return fmt.Errorf("cannot UnmarshalBinary: %d trailing bytes", r.Len())
	}
	return nil
}

const attentionMasksMagic = "CPAM1"

// BinarySize returns the size of MarshalBinary's output.
func (am *AttentionMasks) BinarySize() int {
	s := len(attentionMasksMagic) + 4
	for _, ct := range am.cts() {
		s += 4 + ct.BinarySize()
	}
	return s
}

// cts returns the key masks followed by the query weights.
func (am *AttentionMasks) cts() []*rlwe.Ciphertext {
	return append(append([]*rlwe.Ciphertext(nil), am.KeyMask...), am.QueryWeights)
}

// Validate checks that am has the ciphertexts of the masks of layout lay.
func (am *AttentionMasks) Validate(lay Layout) error {
	if want := numDense(lay); len(am.KeyMask) != want {
		return fmt.Errorf("cannot Validate: %d key-mask ciphertexts, layout %+v needs %d", len(am.KeyMask), lay, want)
	}
	for _, ct := range am.cts() {
		if ct == nil {
			return errors.New("cannot Validate: nil ciphertext in the attention masks")
		}
	}
	return nil
}

// MarshalBinary encodes the masks: a header with the number of key-mask
// ciphertexts, then the key masks and the query weights, each as its size
// and Lattigo's binary form.
func (am *AttentionMasks) MarshalBinary() ([]byte, error) {
	for _, ct := range am.cts() {
		if ct == nil {
			return nil, errors.New("cannot MarshalBinary: nil ciphertext in the attention masks")
		}
	}
	var b bytes.Buffer
	b.WriteString(attentionMasksMagic)
	b.Write(binary.LittleEndian.AppendUint32(nil, uint32(len(am.KeyMask))))
	if _, err := writeCts(&b, am.cts()); err != nil {
		return nil, fmt.Errorf("cannot MarshalBinary: %w", err)
	}
	return b.Bytes(), nil
}

// UnmarshalBinary decodes masks encoded by MarshalBinary. Like Lattigo's
// decoders it trusts the sizes inside the data: use it for data this
// process wrote, and DecodeAttentionMasks for anything from a peer.
func (am *AttentionMasks) UnmarshalBinary(p []byte) error {
	head := len(attentionMasksMagic) + 4
	if len(p) < head || string(p[:len(attentionMasksMagic)]) != attentionMasksMagic {
		return errors.New("cannot UnmarshalBinary: not attention masks")
	}
	k := int(binary.LittleEndian.Uint32(p[len(attentionMasksMagic):]))
	if k > MaxCiphertexts {
		return fmt.Errorf("cannot UnmarshalBinary: %d key-mask ciphertexts", k)
	}
	r := bytes.NewReader(p[head:])
	cts, _, err := readCts(r, k+1, len(p))
	if err != nil {
		return fmt.Errorf("cannot UnmarshalBinary: %w", err)
	}
	if r.Len() != 0 {
		return fmt.Errorf("cannot UnmarshalBinary: %d trailing bytes", r.Len())
	}
	*am = AttentionMasks{KeyMask: cts[:k], QueryWeights: cts[k]}
	return nil
}

// CheckCiphertexts checks that every ciphertext is a degree-1 ciphertext
// of params' ring, in the NTT domain, at the given level and params' default
// scale: what the evaluator expects of a fresh input. Lattigo assumes it and
// would panic or compute garbage on a ciphertext of other parameters, so
// anything received from a peer passes here first.
func CheckCiphertexts(params hefloat.Parameters, level int, cts ...*rlwe.Ciphertext) error {
	for i, ct := range cts {
		switch {
		case ct == nil:
			return fmt.Errorf("cannot CheckCiphertexts: ciphertext %d is nil", i)
		case ct.Degree() != 1:
			return fmt.Errorf("cannot CheckCiphertexts: ciphertext %d has degree %d, want 1", i, ct.Degree())
		case ct.Level() != level:
			return fmt.Errorf("cannot CheckCiphertexts: ciphertext %d at level %d, want %d", i, ct.Level(), level)
		case ct.Value[0].N() != params.N() || ct.Value[1].N() != params.N():
			return fmt.Errorf("cannot CheckCiphertexts: ciphertext %d of ring degree %d, want %d", i, ct.Value[0].N(), params.N())
		case ct.Value[1].Level() != level:
			return fmt.Errorf("cannot CheckCiphertexts: ciphertext %d has polynomials at levels %d and %d", i, ct.Value[0].Level(), ct.Value[1].Level())
		case !ct.IsNTT || ct.IsMontgomery || !ct.IsBatched:
			return fmt.Errorf("cannot CheckCiphertexts: ciphertext %d has the wrong representation (NTT %v, Montgomery %v)", i, ct.IsNTT, ct.IsMontgomery)
		case ct.Scale.Cmp(params.DefaultScale()) != 0:
			return fmt.Errorf("cannot CheckCiphertexts: ciphertext %d has scale 2^%.2f, want 2^%.2f", i, math.Log2(ct.Scale.Float64()), math.Log2(params.DefaultScale().Float64()))
		case ct.LogDimensions != params.LogMaxDimensions():
			return fmt.Errorf("cannot CheckCiphertexts: ciphertext %d has dimensions %v, want %v", i, ct.LogDimensions, params.LogMaxDimensions())
		}
	}
	return nil
}

// unmarshalCiphertext decodes one ciphertext, turning a panic of Lattigo's
// decoder (which trusts the sizes written inside the data) into an error.
func unmarshalCiphertext(data []byte) (ct *rlwe.Ciphertext, err error) {
	defer func() {
		if r := recover(); r != nil {
			ct, err = nil, fmt.Errorf("malformed ciphertext: %v", r)
		}
	}()
	ct = new(rlwe.Ciphertext)
	if err := ct.UnmarshalBinary(data); err != nil {
		return nil, err
	}
	return ct, nil
}

// checkReduced checks that every coefficient of the polynomials ps is below
// the modulus of its RNS limb (moduli[i] for limb i). Lattigo's decoders
// accept any 64-bit word and its arithmetic assumes reduced inputs, so an
// unreduced coefficient from a peer would enter every later result
// unnoticed: whatever a peer sends passes here.
func checkReduced(moduli []uint64, ps ...ring.Poly) error {
	for k, p := range ps {
		if err := checkReducedPoly(moduli, p); err != nil {
			return fmt.Errorf("polynomial %d: %w", k, err)
		}
	}
	return nil
}

// checkReducedPoly is checkReduced for one polynomial.
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

// checkReducedQP is checkReduced for polynomials of the ring QP: the Q
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
