package ckks

import (
	"fmt"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"
	"github.com/tuneinsight/lattigo/v5/he/hefloat"
	"github.com/tuneinsight/lattigo/v5/ring"
	"github.com/tuneinsight/lattigo/v5/schemes/ckks"
)

// encoder encodes real slot vectors into plaintexts exactly as
// hefloat.Encoder.Encode does (the same plaintext, word for word), without
// its per-coefficient allocations.
//
// Lattigo's quantization (ckks.SingleFloat64ToFixedPointCRT) looks up the
// moduli and the Barrett constants, and allocates a big.Int, for every
// coefficient: at N = 2^14 that is about 50,000 allocations and half of an
// encoding's time whatever the level. The matmuls encode their diagonal
// plaintexts on the fly (9,216 of them for a 768x768 layer at n = 128), so
// that overhead was a large share of a layer. This encoder runs the same
// steps (Lattigo's special IFFT, rounding to the nearest integer, reduction
// modulo each prime, Lattigo's NTT and Montgomery form) with the constants
// hoisted out of the loop; values too large for a uint64 after scaling take
// Lattigo's own big-integer path.
type encoder struct {
	params hefloat.Parameters
	enc    *hefloat.Encoder
	buf    []complex128
}

// newEncoder returns an encoder for params. It is not safe for concurrent
// use: give each goroutine its own.
func newEncoder(params hefloat.Parameters) *encoder {
	return &encoder{params: params, enc: hefloat.NewEncoder(params), buf: make([]complex128, params.MaxSlots())}
}

// Encode encodes v (at most MaxSlots values, the rest zero) into pt at
// pt's level, scale and dimensions.
func (e *encoder) Encode(v []float64, pt *rlwe.Plaintext) error {
	if !pt.IsBatched || pt.LogDimensions.Cols != e.params.LogMaxSlots() {
		return e.enc.Encode(v, pt) // not the layout this fast path covers
	}
	slots := len(e.buf)
	if len(v) > slots {
		return fmt.Errorf("cannot Encode: %d values for %d slots", len(v), slots)
	}
	buf := e.buf
	for i, x := range v {
		buf[i] = complex(x, 0)
	}
	clear(buf[len(v):])
	if err := e.enc.IFFT(buf, pt.LogDimensions.Cols); err != nil {
		return fmt.Errorf("cannot Encode: %w", err)
	}
	r := e.params.RingQ().AtLevel(pt.Level())
	q := quantizer{r: r, moduli: r.ModuliChain()[:r.Level()+1], brc: r.BRedConstants(), scale: pt.Scale.Float64(), coeffs: pt.Value.Coeffs}
	for i, x := range buf {
		q.put(i, real(x))
	}
	start := slots
	if r.Type() == ring.Standard {
		for i, x := range buf {
			q.put(i+slots, imag(x))
		}
		start = 2 * slots
	}
	for j := range q.coeffs {
		clear(q.coeffs[j][start:])
	}
	rlwe.NTTSparseAndMontgomery(r, pt.MetaData, pt.Value)
	return nil
}

// quantizer writes round(value·scale) modulo each prime, as
// ckks.SingleFloat64ToFixedPointCRT does.
type quantizer struct {
	r      *ring.Ring
	moduli []uint64
	brc    [][]uint64
	scale  float64
	coeffs [][]uint64
}

func (q *quantizer) put(i int, value float64) {
	if value == 0 {
		for j := range q.coeffs {
			q.coeffs[j][i] = 0
		}
		return
	}
	neg := value < 0
	x := value * q.scale
	if neg {
		x = -x
	}
	if x >= 1.8446744073709552e+19 {
		ckks.SingleFloat64ToFixedPointCRT(q.r, i, value, q.scale, q.coeffs)
		return
	}
	c := uint64(x + 0.5)
	for j, qi := range q.moduli {
		switch {
		case neg && c > qi:
			q.coeffs[j][i] = qi - ring.BRedAdd(c, qi, q.brc[j])
		case neg:
			q.coeffs[j][i] = qi - c
		case c > 0x1fffffffffffffff:
			q.coeffs[j][i] = ring.BRedAdd(c, qi, q.brc[j])
		default:
			q.coeffs[j][i] = c
		}
	}
}
