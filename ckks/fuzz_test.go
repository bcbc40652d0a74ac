package ckks

import (
	"bytes"
	"sync"
	"testing"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"
	"github.com/tuneinsight/lattigo/v5/he/hefloat"

	"github.com/cipherprune/cipherprune/internal/fuzzedit"
)

// The fuzz targets of the decoders of peer bytes (the keys the server
// receives) run at N = 2^4 with Interactive14's modulus chain: a valid key
// is a few kilobytes and one run takes microseconds, and the decoders'
// code does not depend on N.

// fuzzContext is the fuzz targets' shared state: parameters, a key set and
// its serialized keys.
type fuzzContext struct {
	params  hefloat.Parameters
	tmpl    *keyTemplates
	keys    *SecretKeys
	pk, rlk []byte
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
	fc := &fuzzContext{params: params, keys: GenSecretKeys(params)}
	if fc.tmpl, err = newKeyTemplates(params); err != nil {
		return nil, err
	}
	if fc.pk, err = fc.keys.MarshalPublicKey(); err != nil {
		return nil, err
	}
	if fc.rlk, err = fc.keys.MarshalRelinKey(); err != nil {
		return nil, err
	}
	return fc, nil
}

// receiver returns a fresh receiver (NewKeyReceiver without rebuilding the
// templates).
func (fc *fuzzContext) receiver(testing.TB) *KeyReceiver {
	return &KeyReceiver{tmpl: fc.tmpl}
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

// TestUnreducedCoefficients: a key whose structure is valid but one of
// whose coefficients is not below its modulus is refused with an error
// that names the coefficient, for every decoder of peer bytes.
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
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.run(t)
			if err == nil || !bytes.Contains([]byte(err.Error()), []byte("not below its modulus")) {
				t.Fatalf("err = %v, want an unreduced coefficient refused", err)
			}
			t.Log(err)
		})
	}
	// Coefficients of q-1 (and p-1) everywhere are reduced: the check is
	// not too strict at the boundary.
	pk := fc.keys.PK.CopyNew()
	for _, v := range pk.Value {
		for _, x := range []struct {
			coeffs [][]uint64
			moduli []uint64
		}{{v.Q.Coeffs, q}, {v.P.Coeffs, p}} {
			for i, limb := range x.coeffs {
				for j := range limb {
					limb[j] = x.moduli[i] - 1
				}
			}
		}
	}
	b, err := pk.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if err := fc.receiver(t).SetPublicKey(b); err != nil {
		t.Fatalf("coefficients q-1 refused: %v", err)
	}
}
