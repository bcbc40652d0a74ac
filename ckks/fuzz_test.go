package ckks

import (
	"bytes"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"
	"github.com/tuneinsight/lattigo/v5/he/hefloat"

	"github.com/cipherprune/cipherprune/internal/fuzzedit"
)

// The fuzz targets of the decoders of peer bytes (the keys the server
// receives, the encrypted input and attention masks) run at N = 2^4 with
// Interactive14's modulus chain: a valid key or ciphertext is a few
// kilobytes and one run takes microseconds, and the decoders' code does not
// depend on N.

// fuzzContext is the fuzz targets' shared state: parameters, a key set,
// its serialized keys and a rotation plan.
type fuzzContext struct {
	params   hefloat.Parameters
	tmpl     *keyTemplates
	keys     *SecretKeys
	client   *Client
	plan     []uint64
	pk, rlk  []byte
	gks      [][]byte
	lay      Layout
	matrix   []byte // an encrypted matrix of layout lay
	masks    []byte // the attention masks of layout lay
	maskKeep []bool
}

var (
	fuzzOnce sync.Once
	fuzzCtx  *fuzzContext
	fuzzErr  error
)

func newFuzzContext(tb testing.TB) *fuzzContext {
	tb.Helper()
	fuzzOnce.Do(func() { fuzzCtx, fuzzErr = buildFuzzContext() })
	if fuzzErr != nil {
		tb.Fatal(fuzzErr)
	}
	return fuzzCtx
}

func buildFuzzContext() (*fuzzContext, error) {
	params, err := hefloat.NewParametersFromLiteral(hefloat.ParametersLiteral{
		LogN:            4,
		LogQ:            chain(46, 33, 10),
		LogP:            []int{60},
		LogDefaultScale: 33,
	})
	if err != nil {
		return nil, err
	}
	fc := &fuzzContext{params: params, keys: GenSecretKeys(params), plan: params.GaloisElements([]int{1, 2})}
	if fc.tmpl, err = newKeyTemplates(params); err != nil {
		return nil, err
	}
	if fc.client, err = fc.keys.Client(); err != nil {
		return nil, err
	}
	if fc.pk, err = fc.keys.MarshalPublicKey(); err != nil {
		return nil, err
	}
	if fc.rlk, err = fc.keys.MarshalRelinKey(); err != nil {
		return nil, err
	}
	for _, g := range fc.plan {
		gk, err := fc.keys.MarshalGaloisKey(g)
		if err != nil {
			return nil, err
		}
		fc.gks = append(fc.gks, gk)
	}
	// 3 rows of 4 columns in blocks of 4: two ciphertexts of 8 slots.
	if fc.lay, err = NewLayout(params.MaxSlots(), 3, 4, 4); err != nil {
		return nil, err
	}
	x, err := fc.client.EncryptMatrix(randMatrix(rand.New(rand.NewPCG(1, 2)), 3, 4, 1), fc.lay, params.MaxLevel())
	if err != nil {
		return nil, err
	}
	if fc.matrix, err = x.MarshalBinary(); err != nil {
		return nil, err
	}
	fc.maskKeep = []bool{true, false, true}
	am, err := fc.client.EncryptAttentionMasks(fc.maskKeep, fc.lay)
	if err != nil {
		return nil, err
	}
	if fc.masks, err = am.MarshalBinary(); err != nil {
		return nil, err
	}
	return fc, nil
}

// receiver returns a fresh receiver of the context's plan (NewKeyReceiver
// without rebuilding the templates).
func (fc *fuzzContext) receiver(testing.TB) *KeyReceiver {
	return &KeyReceiver{tmpl: fc.tmpl, plan: append([]uint64(nil), fc.plan...)}
}

// addEdits adds to the corpus of a target on base: base itself, cut by
// one byte, extended by one, with its last byte changed (a coefficient's
// high byte in every Lattigo form: an unreduced coefficient), and raw
// payloads: empty, the first 64 bytes and 96 bytes of 0xff.
func addEdits(f *testing.F, base []byte) {
	last := len(base) - 1
	f.Add(false, []byte{})
	f.Add(false, []byte{0xff})
	f.Add(false, []byte{1})
	f.Add(false, []byte{0, byte(last >> 16), byte(last >> 8), byte(last), 0xff})
	f.Add(true, []byte{})
	f.Add(true, bytes.Clone(base[:64]))
	f.Add(true, bytes.Repeat([]byte{0xff}, 96))
}

// FuzzDecodePublicKey: arbitrary bytes, of any length, given to
// KeyReceiver.SetPublicKey are decoded or refused, never a panic; an
// accepted key is reduced and re-encodes to the same bytes.
func FuzzDecodePublicKey(f *testing.F) {
	fc := newFuzzContext(f)
	addEdits(f, fc.pk)
	f.Fuzz(func(t *testing.T, raw bool, data []byte) {
		p := fuzzedit.Input(raw, data, fc.pk)
		r := fc.receiver(t)
		if err := r.SetPublicKey(p); err != nil {
			return
		}
		pk := r.PublicKey()
		if err := checkReducedQP(fc.params, pk.Value[:]...); err != nil {
			t.Fatalf("accepted an unreduced key: %v", err)
		}
		if again, err := pk.MarshalBinary(); err != nil || !bytes.Equal(again, p) {
			t.Fatalf("accepted key re-encodes differently (%v)", err)
		}
	})
}

// FuzzSetRelinKey: arbitrary bytes given to KeyReceiver.SetRelinKey are
// decoded and expanded or refused, never a panic; an accepted key is
// reduced.
func FuzzSetRelinKey(f *testing.F) {
	fc := newFuzzContext(f)
	addEdits(f, fc.rlk)
	f.Add(true, bytes.Clone(fc.rlk[:SeedSize]))
	f.Fuzz(func(t *testing.T, raw bool, data []byte) {
		p := fuzzedit.Input(raw, data, fc.rlk)
		r := fc.receiver(t)
		if err := r.SetRelinKey(p); err != nil {
			return
		}
		if err := checkReducedGadget(fc.params, &r.rlk.GadgetCiphertext); err != nil {
			t.Fatalf("accepted an unreduced key: %v", err)
		}
	})
}

// FuzzAddGaloisKey: arbitrary bytes given to KeyReceiver.AddGaloisKey (the
// first and then the second key of the plan) are decoded and expanded or
// refused, never a panic; an accepted key is the plan's element and
// reduced.
func FuzzAddGaloisKey(f *testing.F) {
	fc := newFuzzContext(f)
	addEdits(f, fc.gks[0])
	f.Add(true, bytes.Clone(fc.gks[0][:SeedSize+1]))
	f.Fuzz(func(t *testing.T, raw bool, data []byte) {
		for _, first := range []bool{true, false} {
			// The edits apply to the key the receiver expects next.
			p := fuzzedit.Input(raw, data, fc.gks[0])
			if !first {
				p = fuzzedit.Input(raw, data, fc.gks[1])
			}
			r := fc.receiver(t)
			if !first {
				if err := r.AddGaloisKey(fc.gks[0]); err != nil {
					t.Fatal(err)
				}
			}
			i := len(r.gks)
			if err := r.AddGaloisKey(p); err != nil {
				continue
			}
			gk := r.gks[i]
			if gk.GaloisElement != fc.plan[i] {
				t.Fatalf("accepted key %d of element %d, the plan's is %d", i, gk.GaloisElement, fc.plan[i])
			}
			if err := checkReducedGadget(fc.params, &gk.GadgetCiphertext); err != nil {
				t.Fatalf("accepted an unreduced key: %v", err)
			}
		}
	})
}

// FuzzDecodeCtMatrix: arbitrary bytes never make DecodeCtMatrix panic or
// allocate beyond the payload; what it accepts passes CheckCiphertexts, is
// reduced and re-encodes to the same bytes.
func FuzzDecodeCtMatrix(f *testing.F) {
	fc := newFuzzContext(f)
	top := fc.params.MaxLevel()
	if _, err := DecodeCtMatrix(fc.params, fc.lay, top, fc.matrix); err != nil {
		f.Fatalf("genuine matrix refused: %v", err)
	}
	if _, err := DecodeCtMatrix(fc.params, fc.lay.WithRows(2), top, fc.matrix); err == nil {
		f.Fatal("a matrix of another layout was accepted")
	}
	addEdits(f, fc.matrix)
	f.Add(false, []byte{0, 0, 0, 30, 0xff}) // a header byte
	f.Fuzz(func(t *testing.T, raw bool, data []byte) {
		p := fuzzedit.Input(raw, data, fc.matrix)
		m, err := DecodeCtMatrix(fc.params, fc.lay, top, p)
		if err != nil {
			return
		}
		if err := CheckCiphertexts(fc.params, top, m.Cts...); err != nil {
			t.Fatalf("accepted a matrix that fails the check: %v", err)
		}
		for _, ct := range m.Cts {
			if err := checkReduced(fc.params.RingQ().ModuliChain(), ct.Value...); err != nil {
				t.Fatalf("accepted an unreduced ciphertext: %v", err)
			}
		}
		if again, err := m.MarshalBinary(); err != nil || !bytes.Equal(again, p) {
			t.Fatalf("accepted matrix re-encodes differently (%v)", err)
		}
	})
}

// FuzzDecodeAttentionMasks: arbitrary bytes never make
// DecodeAttentionMasks panic; what it accepts has the layout's ciphertexts,
// passes CheckCiphertexts and re-encodes to the same bytes.
func FuzzDecodeAttentionMasks(f *testing.F) {
	fc := newFuzzContext(f)
	top := fc.params.MaxLevel()
	back, err := DecodeAttentionMasks(fc.params, fc.lay, top, fc.masks)
	if err != nil || back.Validate(fc.lay) != nil {
		f.Fatalf("round trip: %v", err)
	}
	if len(fc.masks) != back.BinarySize() {
		f.Fatalf("BinarySize %d, wrote %d", back.BinarySize(), len(fc.masks))
	}
	if err := CheckCiphertexts(fc.params, top, back.cts()...); err != nil {
		f.Fatalf("fresh masks fail the check: %v", err)
	}
	if err := CheckCiphertexts(fc.params, top-1, back.cts()...); err == nil {
		f.Fatal("a wrong level passed the check")
	}
	addEdits(f, fc.masks)
	f.Add(true, bytes.Clone(fc.masks[:9]))
	f.Fuzz(func(t *testing.T, raw bool, data []byte) {
		p := fuzzedit.Input(raw, data, fc.masks)
		m, err := DecodeAttentionMasks(fc.params, fc.lay, top, p)
		if err != nil {
			return
		}
		if err := m.Validate(fc.lay); err != nil {
			t.Fatalf("accepted invalid masks: %v", err)
		}
		if err := CheckCiphertexts(fc.params, top, m.cts()...); err != nil {
			t.Fatalf("accepted masks that fail the check: %v", err)
		}
		if again, err := m.MarshalBinary(); err != nil || !bytes.Equal(again, p) {
			t.Fatalf("accepted masks re-encode differently (%v)", err)
		}
	})
}

// TestUnreducedCoefficients: a key or ciphertext whose structure is valid
// but one of whose coefficients is not below its modulus is refused with an
// error that names the coefficient, for every decoder of peer bytes.
func TestUnreducedCoefficients(t *testing.T) {
	fc := newFuzzContext(t)
	q := fc.params.RingQ().ModuliChain()
	p := fc.params.RingP().ModuliChain()
	// seeded re-marshals a seeded key's b halves after f changed them.
	seeded := func(t *testing.T, key []byte, half interface {
		UnmarshalBinary([]byte) error
		MarshalBinary() ([]byte, error)
	}, f func()) []byte {
		t.Helper()
		if err := half.UnmarshalBinary(key[SeedSize:]); err != nil {
			t.Fatal(err)
		}
		f()
		b, err := half.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		return append(bytes.Clone(key[:SeedSize]), b...)
	}
	ctMatrix := func(t *testing.T, f func(*CtMatrix)) []byte {
		t.Helper()
		var m CtMatrix
		if err := m.UnmarshalBinary(fc.matrix); err != nil {
			t.Fatal(err)
		}
		f(&m)
		b, err := m.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	top := fc.params.MaxLevel()
	for _, tc := range []struct {
		name string
		run  func(t *testing.T) error
	}{
		{"public-key/Q/limb-0=q0", func(t *testing.T) error {
			pk := fc.keys.PK.CopyNew()
			pk.Value[0].Q.Coeffs[0][3] = q[0]
			b, err := pk.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			return fc.receiver(t).SetPublicKey(b)
		}},
		{"public-key/P/all-ones", func(t *testing.T) error {
			pk := fc.keys.PK.CopyNew()
			pk.Value[1].P.Coeffs[0][0] = ^uint64(0)
			b, err := pk.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			return fc.receiver(t).SetPublicKey(b)
		}},
		{"relin-key/last-limb", func(t *testing.T) error {
			half := &rlwe.RelinearizationKey{}
			b := seeded(t, fc.rlk, half, func() {
				v := half.Value[len(half.Value)-1][0][0].Q
				v.Coeffs[top][len(v.Coeffs[top])-1] = q[top] + 1
			})
			return fc.receiver(t).SetRelinKey(b)
		}},
		{"galois-key/P", func(t *testing.T) error {
			half := &rlwe.GaloisKey{}
			b := seeded(t, fc.gks[0], half, func() { half.Value[0][0][0].P.Coeffs[0][5] = p[0] })
			return fc.receiver(t).AddGaloisKey(b)
		}},
		{"ciphertext/c1", func(t *testing.T) error {
			b := ctMatrix(t, func(m *CtMatrix) { m.Cts[1].Value[1].Coeffs[2][7] = q[2] })
			_, err := DecodeCtMatrix(fc.params, fc.lay, top, b)
			return err
		}},
		{"attention-masks/query-weights", func(t *testing.T) error {
			var am AttentionMasks
			if err := am.UnmarshalBinary(fc.masks); err != nil {
				t.Fatal(err)
			}
			am.QueryWeights.Value[0].Coeffs[0][0] = q[0] + 12345
			b, err := am.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			_, err = DecodeAttentionMasks(fc.params, fc.lay, top, b)
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.run(t)
			if err == nil || !bytes.Contains([]byte(err.Error()), []byte("not below its modulus")) {
				t.Fatalf("err = %v, want an unreduced coefficient refused", err)
			}
			t.Log(err)
		})
	}
	// Coefficients of q-1 everywhere are reduced: the check is not too
	// strict at the boundary.
	b := ctMatrix(t, func(m *CtMatrix) {
		for _, ct := range m.Cts {
			for _, v := range ct.Value {
				for i, limb := range v.Coeffs {
					for j := range limb {
						limb[j] = q[i] - 1
					}
				}
			}
		}
	})
	if _, err := DecodeCtMatrix(fc.params, fc.lay, top, b); err != nil {
		t.Fatalf("coefficients q-1 refused: %v", err)
	}
}
