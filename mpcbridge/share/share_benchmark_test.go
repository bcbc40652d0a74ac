package share

import (
	"math/big"
	"math/rand/v2"
	"testing"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"
	"github.com/tuneinsight/lattigo/v5/he/hefloat"

	"github.com/cipherprune/cipherprune/ckks"
	statmask "github.com/cipherprune/cipherprune/mpcbridge/internal/mask"
)

// benchContext is the secure default preset with B = 4, F = 16.
func benchContext(b *testing.B) (*testContext, *rlwe.Ciphertext) {
	b.Helper()
	tc := newTestContext(b, ckks.Interactive14, ParametersLiteral{LogBound: 4})
	r := rand.New(rand.NewPCG(20, 20))
	ct := tc.computedCiphertext(b, randomVector(r, tc.params.MaxSlots(), 4), 4)
	return tc, ct
}

// BenchmarkEncToShares times protocol A per ciphertext, each side apart,
// and reports the bytes the server sends per ciphertext.
func BenchmarkEncToShares(b *testing.B) {
	tc, ct := benchContext(b)
	cts := []*rlwe.Ciphertext{ct}
	sent, masks, err := tc.server.maskBatch(bg(), cts, true)
	if err != nil {
		b.Fatal(err)
	}
	down := float64(tc.server.ri.maskedSize(sent) - headerSize)
	b.Run("server/mask", func(b *testing.B) {
		for b.Loop() {
			s, _, err := tc.server.maskBatch(bg(), cts, true)
			if err != nil {
				b.Fatal(err)
			}
			_ = tc.server.ri.encodeMasked(s)
		}
		b.ReportMetric(down, "B/ct-to-client")
	})
	b.Run("server/decode-own-share", func(b *testing.B) {
		for b.Loop() {
			if _, err := tc.server.maskShares(&masks[0]); err != nil {
				b.Fatal(err)
			}
		}
	})
	msg := tc.server.ri.encodeMasked(sent)
	b.Run("client/decrypt-decode", func(b *testing.B) {
		for b.Loop() {
			m, err := tc.client.ri.decodeMasked(msg, 1)
			if err != nil {
				b.Fatal(err)
			}
			o, err := tc.client.open(&m[0])
			if err != nil {
				b.Fatal(err)
			}
			if _, err := tc.client.slotShares(o); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkSharesToEnc times protocol B per ciphertext at the top level and
// reports the bytes the client sends per ciphertext.
func BenchmarkSharesToEnc(b *testing.B) {
	tc, ct := benchContext(b)
	sent, masks, err := tc.server.maskBatch(bg(), []*rlwe.Ciphertext{ct}, true)
	if err != nil {
		b.Fatal(err)
	}
	bs, err := tc.server.maskShares(&masks[0])
	if err != nil {
		b.Fatal(err)
	}
	o, err := tc.client.open(&sent[0])
	if err != nil {
		b.Fatal(err)
	}
	as, err := tc.client.slotShares(o)
	if err != nil {
		b.Fatal(err)
	}
	level, scale := tc.params.MaxLevel(), tc.params.DefaultScale().Float64()
	sc, err := tc.client.encryptShares(as, level, scale)
	if err != nil {
		b.Fatal(err)
	}
	up := float64(tc.client.ri.seededSize([]seededCt{sc}) - headerSize)
	b.Run("client/encode-encrypt", func(b *testing.B) {
		for b.Loop() {
			s, err := tc.client.encryptShares(as, level, scale)
			if err != nil {
				b.Fatal(err)
			}
			_ = tc.client.ri.encodeSeeded([]seededCt{s})
		}
		b.ReportMetric(up, "B/ct-to-server")
	})
	msg := tc.client.ri.encodeSeeded([]seededCt{sc})
	b.Run("server/expand-encode-add", func(b *testing.B) {
		for b.Loop() {
			g, err := tc.server.ri.decodeSeeded(msg, 1)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := tc.server.combine(bg(), g, []Vector{bs}, level, scale); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkBigCodec times the big-float share codec on one full
// polynomial (N/2 slots) and the exact reconstruction of centred
// coefficients (Int128 CRT vs Lattigo's big.Int path).
func BenchmarkBigCodec(b *testing.B) {
	tc, ct := benchContext(b)
	sent, masks, err := tc.server.maskBatch(bg(), []*rlwe.Ciphertext{ct}, true)
	if err != nil {
		b.Fatal(err)
	}
	o, err := tc.client.open(&sent[0])
	if err != nil {
		b.Fatal(err)
	}
	codec := tc.client.codec
	out := make(Vector, tc.params.MaxSlots())
	b.Run("decode-shares", func(b *testing.B) {
		for b.Loop() {
			if err := codec.decodeShares(o.p, o.ct.scale, out, 126); err != nil {
				b.Fatal(err)
			}
		}
	})
	coeffs := make([]Int128, tc.params.N())
	b.Run("encode-shares", func(b *testing.B) {
		for b.Loop() {
			if err := codec.encodeShares(out, o.ct.scale, coeffs); err != nil {
				b.Fatal(err)
			}
		}
	})
	// Lattigo's big-float encoder at 128 bits, for comparison.
	big128 := hefloat.NewEncoder(tc.params, 128)
	bigVals := make([]*big.Float, tc.params.MaxSlots())
	pt := slotPlaintext(o.ct.level, o.ct.logSlots, o.ct.scale, o.pt.Value, true)
	b.Run("lattigo-big128-decode", func(b *testing.B) {
		for b.Loop() {
			if err := big128.Decode(pt, bigVals); err != nil {
				b.Fatal(err)
			}
		}
	})
	level := tc.params.MaxLevel()
	ept := slotPlaintext(level, tc.params.LogMaxSlots(), o.ct.scale, tc.params.RingQ().AtLevel(level).NewPoly(), true)
	b.Run("lattigo-big128-encode", func(b *testing.B) {
		for b.Loop() {
			if err := big128.Encode(bigVals, ept); err != nil {
				b.Fatal(err)
			}
		}
	})
	ringQ := tc.params.RingQ().AtLevel(o.ct.level)
	cpoly := ringQ.NewPoly()
	ringQ.INTT(o.pt.Value, cpoly)
	p := make([]Int128, tc.params.N())
	b.Run("crt-int128", func(b *testing.B) {
		for b.Loop() {
			if err := tc.client.ri.toInt128(o.ct.level, cpoly, p); err != nil {
				b.Fatal(err)
			}
		}
	})
	bigs := make([]*big.Int, tc.params.N())
	for i := range bigs {
		bigs[i] = new(big.Int)
	}
	b.Run("crt-bigint", func(b *testing.B) {
		for b.Loop() {
			ringQ.PolyToBigintCentered(cpoly, 1, bigs)
		}
	})
	b.Run("sample-mask", func(b *testing.B) {
		s, err := statmask.NewSampler[Int128](tc.server.rnd, masks[0].bits)
		if err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			s.Sample(p)
		}
	})
}
