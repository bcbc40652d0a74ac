package share

import (
	"fmt"
	"math/big"
	"math/rand/v2"
	"testing"

	"github.com/tuneinsight/lattigo/v5/he/hefloat"

	"github.com/cipherprune/cipherprune/ckks"
	statmask "github.com/cipherprune/cipherprune/mpcbridge/internal/mask"
)

// TestCodecMatchesLattigo compares the double-double codec with Lattigo's
// big-float encoder at 128 bits on masked polynomials and shares of the
// sizes the protocols produce, for the secure default preset too.
func TestCodecMatchesLattigo(t *testing.T) {
	for _, name := range []string{ckks.InsecureTest11, ckks.InsecureTest12, ckks.Interactive14, testCI11, testCI14} {
		t.Run(name, func(t *testing.T) {
			params := testParams(t, name)
			p, _ := NewParameters(ParametersLiteral{LogBound: 4})
			scale := params.DefaultScale()
			level, b, err := p.MaskLevel(params, scale, params.MaxLevel())
			if err != nil {
				t.Fatal(err)
			}
			ri := newRingInfo(params)
			codec := newSlotCodec(params, p)
			ref := hefloat.NewEncoder(params, 128)
			sampler, err := statmask.NewSampler[Int128](randReader(nil), b)
			if err != nil {
				t.Fatal(err)
			}
			r := rand.New(rand.NewPCG(14, 14))
			n := params.N()

			// Decoding: a mask-like polynomial, full and sparse slots.
			coeffs := make([]Int128, n)
			sampler.Sample(coeffs)
			poly := params.RingQ().AtLevel(level).NewPoly()
			ri.lift(level, coeffs, poly)
			for _, logSlots := range []int{params.LogMaxSlots(), params.LogMaxSlots() - 3} {
				slots := 1 << logSlots
				got := make(Vector, slots)
				if err := codec.decodeShares(coeffs, scale.Float64(), got, 126); err != nil {
					t.Fatal(err)
				}
				pt := slotPlaintext(level, logSlots, scale.Float64(), poly, false)
				vals := make([]*big.Float, slots)
				if err := ref.Decode(pt, vals); err != nil {
					t.Fatal(err)
				}
				var maxDiff int64
				for i, v := range vals {
					w, err := codec.roundBig(v)
					if err != nil {
						t.Fatal(err)
					}
					d := got[i].Sub(w)
					if d.BitLen() > 8 {
						t.Fatalf("slot %d: dd %v, big %v", i, got[i], w)
					}
					maxDiff = max(maxDiff, abs64(int64(d.Lo)))
				}
				t.Logf("decode, %d slots, %d-bit shares: max |dd - big128| = %d units of 2^-F", slots, maxBitLen(got), maxDiff)
				if maxDiff > 1 {
					t.Fatalf("decode differs by %d units", maxDiff)
				}
			}

			// Encoding: shares like the ones A produces.
			shares := make(Vector, params.MaxSlots())
			for i := range shares {
				shares[i] = Int128{Hi: r.Uint64() & (1<<uint(b-64-10) - 1), Lo: r.Uint64()}
				if r.IntN(2) == 0 {
					shares[i] = shares[i].Neg()
				}
			}
			top := params.MaxLevel()
			if err := codec.encodeShares(shares, scale.Float64(), coeffs); err != nil {
				t.Fatal(err)
			}
			vals := make([]*big.Float, len(shares))
			for i, v := range shares {
				vals[i] = new(big.Float).SetPrec(128).SetInt(v.Big(nil))
				vals[i].SetMantExp(vals[i], -p.FracBits())
			}
			pt := slotPlaintext(top, params.LogMaxSlots(), scale.Float64(), params.RingQ().AtLevel(top).NewPoly(), true)
			if err := ref.Encode(vals, pt); err != nil {
				t.Fatal(err)
			}
			params.RingQ().AtLevel(top).INTT(pt.Value, pt.Value)
			want := make([]Int128, n)
			if err := ri.toInt128(top, pt.Value, want); err != nil {
				t.Fatal(err)
			}
			var maxDiff int64
			for j := range want {
				d := coeffs[j].Sub(want[j])
				if d.BitLen() > 16 {
					t.Fatalf("coefficient %d: dd %v, big %v", j, coeffs[j], want[j])
				}
				maxDiff = max(maxDiff, abs64(int64(d.Lo)))
			}
			t.Logf("encode, %d-bit shares: %d-bit coefficients, max |dd - big128| = %d (the encryption noise is ~3.2·sqrt(N) per slot)", maxBitLen(shares), maxBitLen(Vector(want)), maxDiff)
			if maxDiff > 64 {
				t.Fatalf("encode differs by %d", maxDiff)
			}
		})
	}
}

func abs64(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}

// roundBig is round(2^F·v) for a big.Float (the reference path).
func (c *slotCodec) roundBig(v *big.Float) (Int128, error) {
	t := new(big.Float).SetPrec(256).SetMantExp(v, c.fracBits)
	half := big.NewFloat(0.5)
	if t.Sign() >= 0 {
		t.Add(t, half)
	} else {
		t.Sub(t, half)
	}
	bi, _ := t.Int(nil)
	r, ok := Int128FromBig(bi)
	if !ok {
		return Int128{}, fmt.Errorf("value does not fit")
	}
	return r, nil
}

// TestCodecBits: the codec's limit and the check that enforces it agree at
// the boundary (the README's "92 bits" is CodecBits(14)).
func TestCodecBits(t *testing.T) {
	for _, tc := range []struct{ logN, want int }{{4, 93}, {8, 92}, {11, 92}, {14, 92}, {15, 92}, {16, 91}} {
		t.Run(fmt.Sprintf("logN=%d", tc.logN), func(t *testing.T) {
			if got := CodecBits(tc.logN); got != tc.want {
				t.Fatalf("CodecBits(%d) = %d, want %d", tc.logN, got, tc.want)
			}
			if err := checkCodecBits(tc.logN, tc.want); err != nil {
				t.Errorf("shares of %d bits refused: %v", tc.want, err)
			}
			if err := checkCodecBits(tc.logN, tc.want+1); err == nil {
				t.Errorf("shares of %d bits accepted", tc.want+1)
			}
		})
	}
}
