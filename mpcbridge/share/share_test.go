package share

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"

	"github.com/cipherprune/cipherprune/mpcbridge/internal/nettest"
)

func TestEncToShares(t *testing.T) {
	for _, name := range testPresets {
		for _, logBound := range []int{0, 4} {
			tc := newTestContext(t, name, ParametersLiteral{LogBound: logBound})
			maskLevel, b, err := tc.p.MaskLevel(tc.params, tc.params.DefaultScale(), tc.params.MaxLevel())
			if err != nil {
				t.Fatal(err)
			}
			for _, level := range []int{maskLevel, tc.params.MaxLevel() - 1} {
				t.Run(fmt.Sprintf("%s/B=%d/level=%d", name, logBound, level), func(t *testing.T) {
					r := rand.New(rand.NewPCG(1, uint64(level)))
					const k = 2
					xs := make([][]float64, k)
					cts := make([]*rlwe.Ciphertext, k)
					for i := range cts {
						xs[i] = randomVector(r, tc.params.MaxSlots(), logBound)
						cts[i] = tc.computedCiphertext(t, xs[i], level)
					}
					sc, cc := pipe()
					var bs, as []Vector
					serr, cerr := nettest.Both(func() (err error) {
						bs, err = tc.server.EncToShares(bg(), sc, cts)
						return
					}, func() (err error) {
						as, err = tc.client.EncToShares(bg(), cc)
						return
					})
					if serr != nil || cerr != nil {
						t.Fatalf("server: %v, client: %v", serr, cerr)
					}
					var maxErr, maxHE, maxUnits float64
					maxBits := 0
					for i := range cts {
						got, err := Reconstruct(tc.p, as[i], bs[i])
						if err != nil {
							t.Fatal(err)
						}
						maxErr = math.Max(maxErr, maxAbsErr(got, xs[i]))
						dec := tc.decrypt(t, cts[i])
						maxHE = math.Max(maxHE, maxAbsErr(dec, xs[i]))
						// The protocol's own error, in units of 2^-F: against
						// the decryption of the same ciphertext.
						maxUnits = math.Max(maxUnits, maxAbsErr(got, dec)*math.Ldexp(1, tc.p.FracBits()))
						maxBits = max(maxBits, maxBitLen(as[i]), maxBitLen(bs[i]))
						// Ring shares modulo 2^64 agree with the integer shares.
						la, lb := as[i].Low64(), bs[i].Low64()
						for j := range la {
							if d := float64(int64(la[j]+lb[j])) / math.Ldexp(1, tc.p.FracBits()); math.Abs(d-got[j]) > 1e-12 {
								t.Fatalf("slot %d: ring shares give %v, integer shares %v", j, d, got[j])
							}
						}
					}
					// The shares add 2^-F (two roundings) to the HE error.
					limit := 2*math.Ldexp(1, -tc.p.FracBits()) + 4*maxHE + 1e-9
					t.Logf("mask level %d (b=%d), shares up to %d bits, max |(a+b)/2^F - x| = %.3g (HE error alone %.3g, limit %.3g), max |a+b - 2^F·Dec(ct)| = %.3f units, %d bytes sent",
						maskLevel, b, maxBits, maxErr, maxHE, limit, maxUnits, sc.sent)
					if maxUnits > 1.01 {
						t.Fatalf("shares off the decryption by %.3f units", maxUnits)
					}
					if maxErr > limit {
						t.Fatalf("max error %.3g > %.3g", maxErr, limit)
					}
				})
			}
		}
	}
}

// shareCiphertexts runs protocol A on cts and returns both parties' shares.
func (tc *testContext) shareCiphertexts(t *testing.T, cts []*rlwe.Ciphertext) (as, bs []Vector) {
	t.Helper()
	sc, cc := pipe()
	serr, cerr := nettest.Both(func() (err error) {
		bs, err = tc.server.EncToShares(bg(), sc, cts)
		return
	}, func() (err error) {
		as, err = tc.client.EncToShares(bg(), cc)
		return
	})
	if serr != nil || cerr != nil {
		t.Fatalf("EncToShares: server: %v, client: %v", serr, cerr)
	}
	return
}

func TestSharesToEnc(t *testing.T) {
	for _, name := range testPresets {
		tc := newTestContext(t, name, ParametersLiteral{LogBound: 4})
		maskLevel, _, err := tc.p.MaskLevel(tc.params, tc.params.DefaultScale(), tc.params.MaxLevel())
		if err != nil {
			t.Fatal(err)
		}
		for _, level := range []int{tc.params.MaxLevel(), tc.params.MaxLevel() - 3} {
			t.Run(fmt.Sprintf("%s/level=%d", name, level), func(t *testing.T) {
				r := rand.New(rand.NewPCG(2, uint64(level)))
				slots := tc.params.MaxSlots()
				const k = 2
				xs := make([][]float64, k)
				cts := make([]*rlwe.Ciphertext, k)
				for i := range cts {
					xs[i] = randomVector(r, slots, 4)
					cts[i] = tc.computedCiphertext(t, xs[i], maskLevel)
				}
				as, bs := tc.shareCiphertexts(t, cts)

				// Permute and compact like a pruning step: both parties
				// apply the same permutation and keep the first kept rows
				// of every vector.
				perm := r.Perm(slots)
				kept := slots / 2
				want := make([][]float64, k)
				for i := range as {
					a, b := make(Vector, kept), make(Vector, kept)
					want[i] = make([]float64, slots)
					for j := 0; j < kept; j++ {
						a[j], b[j] = as[i][perm[j]], bs[i][perm[j]]
						want[i][j] = xs[i][perm[j]]
					}
					as[i], bs[i] = a, b
				}

				scale := tc.params.DefaultScale()
				sc, cc := pipe()
				var out []*rlwe.Ciphertext
				serr, cerr := nettest.Both(func() (err error) {
					out, err = tc.server.SharesToEnc(bg(), sc, bs, level, scale)
					return
				}, func() error {
					return tc.client.SharesToEnc(bg(), cc, as, level, scale)
				})
				if serr != nil || cerr != nil {
					t.Fatalf("server: %v, client: %v", serr, cerr)
				}
				var maxErr float64
				for i, ct := range out {
					if ct.Level() != level || ct.Scale.Cmp(scale) != 0 {
						t.Fatalf("ciphertext %d at level %d scale %v, want %d %v", i, ct.Level(), ct.Scale.Float64(), level, scale.Float64())
					}
					maxErr = math.Max(maxErr, maxAbsErr(tc.decrypt(t, ct), want[i]))
				}
				limit := 3 * math.Ldexp(1, -tc.p.FracBits())
				t.Logf("round trip A+B (permuted, %d of %d slots kept): max error %.3g (limit %.3g), client sent %d bytes (%d per ciphertext)",
					kept, slots, maxErr, limit, cc.sent, cc.sent/int64(k))
				if maxErr > limit {
					t.Fatalf("max error %.3g > %.3g", maxErr, limit)
				}
			})
		}
	}
}

// TestSharesToEncError measures the error B itself adds: shares of known
// fixed-point values (v = a + b exactly) are encrypted and decrypted.
func TestSharesToEncError(t *testing.T) {
	for _, name := range testPresets {
		tc := newTestContext(t, name, ParametersLiteral{LogBound: 4})
		t.Run(name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(3, 3))
			slots := tc.params.MaxSlots()
			a, b := make(Vector, slots), make(Vector, slots)
			want := make([]float64, slots)
			for j := range a {
				v := Int128FromInt64(r.Int64N(1<<21) - 1<<20) // |v/2^F| <= 16
				// A large mask like the ones protocol A produces (~2^80).
				m := Int128{Hi: r.Uint64() & 0xffff, Lo: r.Uint64()}
				if r.IntN(2) == 0 {
					m = m.Neg()
				}
				a[j], b[j] = v.Add(m), m.Neg()
				want[j] = v.Float64() / float64(uint64(1)<<tc.p.FracBits())
			}
			level := tc.params.MaxLevel()
			scale := tc.params.DefaultScale()
			sc, cc := pipe()
			var out []*rlwe.Ciphertext
			serr, cerr := nettest.Both(func() (err error) {
				out, err = tc.server.SharesToEnc(bg(), sc, []Vector{b}, level, scale)
				return
			}, func() error {
				return tc.client.SharesToEnc(bg(), cc, []Vector{a}, level, scale)
			})
			if serr != nil || cerr != nil {
				t.Fatalf("server: %v, client: %v", serr, cerr)
			}
			// Reference: a fresh secret-key encryption of the same values.
			pt := rlwe.NewPlaintext(tc.params, level)
			pt.IsBatched, pt.Scale, pt.LogDimensions = true, scale, tc.params.LogMaxDimensions()
			if err := tc.ecd.Encode(want, pt); err != nil {
				t.Fatal(err)
			}
			ref, err := rlwe.NewEncryptor(tc.params, tc.sk).EncryptNew(pt)
			if err != nil {
				t.Fatal(err)
			}
			got := maxAbsErr(tc.decrypt(t, out[0]), want)
			fresh := maxAbsErr(tc.decrypt(t, ref), want)
			t.Logf("B alone: max slot error %.3g, fresh encryption %.3g", got, fresh)
			if got > 1e-6 {
				t.Fatalf("max error %.3g > 1e-6", got)
			}
		})
	}
}
