package ckks

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"

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

const ctMatrixMagic = "CPCM1"

// BinarySize returns the size of MarshalBinary's output.
func (m *CtMatrix) BinarySize() int {
	s := len(ctMatrixMagic) + 5*4
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
	for _, v := range []int{m.Layout.Rows, m.Layout.Cols, m.Layout.Block, m.Layout.Slots, len(m.Cts)} {
		head = binary.LittleEndian.AppendUint32(head, uint32(v))
	}
	n, err := w.Write(head)
	total := int64(n)
	if err != nil {
		return total, fmt.Errorf("cannot WriteTo: %w", err)
	}
	for _, ct := range m.Cts {
		sz := binary.LittleEndian.AppendUint32(nil, uint32(ct.BinarySize()))
		k, err := w.Write(sz)
		total += int64(k)
		if err != nil {
			return total, fmt.Errorf("cannot WriteTo: %w", err)
		}
		k64, err := ct.WriteTo(w)
		total += k64
		if err != nil {
			return total, fmt.Errorf("cannot WriteTo: %w", err)
		}
	}
	return total, nil
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
	head := make([]byte, len(ctMatrixMagic)+5*4)
	n, err := io.ReadFull(r, head)
	total := int64(n)
	if err != nil {
		return total, fmt.Errorf("cannot ReadFrom: header: %w", err)
	}
	if string(head[:len(ctMatrixMagic)]) != ctMatrixMagic {
		return total, errors.New("cannot ReadFrom: not an encrypted matrix")
	}
	p := head[len(ctMatrixMagic):]
	var v [5]int
	for i := range v {
		v[i] = int(binary.LittleEndian.Uint32(p[4*i:]))
	}
	lay := Layout{Rows: v[0], Cols: v[1], Block: v[2], Slots: v[3]}
	if err := lay.Validate(); err != nil {
		return total, fmt.Errorf("cannot ReadFrom: %w", err)
	}
	if v[4] != lay.NumCts() || v[4] > MaxCiphertexts {
		return total, fmt.Errorf("cannot ReadFrom: %d ciphertexts for a layout of %d", v[4], lay.NumCts())
	}
	out := CtMatrix{Layout: lay, Cts: make([]*rlwe.Ciphertext, v[4])}
	for i := range out.Cts {
		var sz [4]byte
		k, err := io.ReadFull(r, sz[:])
		total += int64(k)
		if err != nil {
			return total, fmt.Errorf("cannot ReadFrom: ciphertext %d: %w", i, err)
		}
		size := int(binary.LittleEndian.Uint32(sz[:]))
		if size < 1 || size > maxCtBytes {
			return total, fmt.Errorf("cannot ReadFrom: ciphertext %d declares %d bytes", i, size)
		}
		data := make([]byte, size)
		k, err = io.ReadFull(r, data)
		total += int64(k)
		if err != nil {
			return total, fmt.Errorf("cannot ReadFrom: ciphertext %d: %w", i, err)
		}
		ct := new(rlwe.Ciphertext)
		if err := ct.UnmarshalBinary(data); err != nil {
			return total, fmt.Errorf("cannot ReadFrom: ciphertext %d: %w", i, err)
		}
		out.Cts[i] = ct
	}
	*m = out
	return total, nil
}

// UnmarshalBinary decodes a matrix encoded by MarshalBinary.
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
