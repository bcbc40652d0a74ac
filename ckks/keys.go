package ckks

import (
	"fmt"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"
	"github.com/tuneinsight/lattigo/v5/he/hefloat"
)

// GaloisElements returns the Galois elements of every rotation the server's
// plan uses for shape s (Rotations): the Galois keys the client generates
// and sends once per session.
func GaloisElements(params hefloat.Parameters, s Shape) ([]uint64, error) {
	rots, err := Rotations(s, params.MaxSlots())
	if err != nil {
		return nil, fmt.Errorf("cannot GaloisElements: %w", err)
	}
	return params.GaloisElements(rots), nil
}

// KeyReport gives the sizes the client sends for one session.
type KeyReport struct {
	// GaloisKeys is the number of Galois (rotation) keys.
	GaloisKeys int
	// GaloisKeyBytes is the size of one Galois key, GaloisBytes of all.
	GaloisKeyBytes, GaloisBytes int
	// RelinBytes is the size of the relinearization key.
	RelinBytes int
	// PublicKeyBytes is the size of the public key.
	PublicKeyBytes int
	// CiphertextBytes is the size of one fresh ciphertext at the top level.
	CiphertextBytes int
	// InputBytes is the size of the encrypted input matrix (n x d) and
	// AttentionMaskBytes of its attention masks.
	InputBytes, AttentionMaskBytes int
	// Total is everything the client sends before the first layer.
	Total int
}

// Keys measures the key and input sizes for shape s (serialized sizes of
// Lattigo's keys at the top level, no key compression).
func Keys(params hefloat.Parameters, s Shape) (KeyReport, error) {
	galEls, err := GaloisElements(params, s)
	if err != nil {
		return KeyReport{}, fmt.Errorf("cannot Keys: %w", err)
	}
	block, err := BlockFor(params.MaxSlots(), s.Rows, s.Hidden/s.Heads)
	if err != nil {
		return KeyReport{}, fmt.Errorf("cannot Keys: %w", err)
	}
	lay := Layout{Rows: s.Rows, Cols: s.Hidden, Block: block, Slots: params.MaxSlots()}
	r := KeyReport{GaloisKeys: len(galEls)}
	r.GaloisKeyBytes = rlwe.NewGaloisKey(params).BinarySize()
	r.GaloisBytes = r.GaloisKeys * r.GaloisKeyBytes
	r.RelinBytes = rlwe.NewRelinearizationKey(params).BinarySize()
	r.PublicKeyBytes = rlwe.NewPublicKey(params).BinarySize()
	r.CiphertextBytes = hefloat.NewCiphertext(params, 1, params.MaxLevel()).BinarySize()
	r.InputBytes = lay.NumCts() * r.CiphertextBytes
	r.AttentionMaskBytes = (numDense(lay) + 1) * r.CiphertextBytes
	r.Total = r.GaloisBytes + r.RelinBytes + r.PublicKeyBytes + r.InputBytes + r.AttentionMaskBytes
	return r, nil
}

// Parameters are the CKKS parameters of a preset (Lattigo's), named here so
// that packages above ckks need not import Lattigo (DESIGN.md section 2).
type Parameters = hefloat.Parameters

// SecretKeys are the key owner's keys for one session: a fresh secret key
// and its public key, and the generator of the evaluation keys it hands
// out. They never leave the client.
type SecretKeys struct {
	params hefloat.Parameters
	kgen   *rlwe.KeyGenerator
	// SK is the secret key and PK its public key.
	SK *rlwe.SecretKey
	PK *rlwe.PublicKey
}

// GenSecretKeys generates a fresh key pair for params (Lattigo's key
// generator, seeded from crypto/rand).
func GenSecretKeys(params Parameters) *SecretKeys {
	kgen := rlwe.NewKeyGenerator(params)
	sk, pk := kgen.GenKeyPairNew()
	return &SecretKeys{params: params, kgen: kgen, SK: sk, PK: pk}
}

// Client returns the encryptor and decryptor of the keys.
func (k *SecretKeys) Client() (*Client, error) { return NewClient(k.params, k.PK, k.SK) }

// MarshalPublicKey returns the public key's binary form.
func (k *SecretKeys) MarshalPublicKey() ([]byte, error) { return k.PK.MarshalBinary() }

// MarshalRelinKey generates the relinearization key and returns its binary
// form.
func (k *SecretKeys) MarshalRelinKey() ([]byte, error) {
	return k.kgen.GenRelinearizationKeyNew(k.SK).MarshalBinary()
}

// MarshalGaloisKey generates the Galois key of element g and returns its
// binary form.
func (k *SecretKeys) MarshalGaloisKey(g uint64) ([]byte, error) {
	return k.kgen.GenGaloisKeyNew(g, k.SK).MarshalBinary()
}

// KeyReceiver collects and checks, on the server, the keys a client sends
// for one session: the public key, the relinearization key and the Galois
// keys of a rotation plan, in the plan's order. Every key is checked
// against the structure of the parameters' keys before Lattigo decodes it
// (see decode.go), so a malformed key is an error, never a panic or an
// out-of-memory crash.
type KeyReceiver struct {
	tmpl *keyTemplates
	plan []uint64
	pk   *rlwe.PublicKey
	rlk  *rlwe.RelinearizationKey
	gks  []*rlwe.GaloisKey
}

// NewKeyReceiver returns a receiver for the Galois elements plan.
func NewKeyReceiver(params Parameters, plan []uint64) (*KeyReceiver, error) {
	t, err := newKeyTemplates(params)
	if err != nil {
		return nil, fmt.Errorf("cannot NewKeyReceiver: %w", err)
	}
	return &KeyReceiver{tmpl: t, plan: append([]uint64(nil), plan...)}, nil
}

// SetPublicKey decodes and checks the public key.
func (r *KeyReceiver) SetPublicKey(p []byte) error {
	pk := rlwe.NewPublicKey(r.tmpl.params)
	if err := decodeChecked(p, r.tmpl.pk, pk); err != nil {
		return fmt.Errorf("cannot SetPublicKey: %w", err)
	}
	r.pk = pk
	return nil
}

// SetRelinKey decodes and checks the relinearization key.
func (r *KeyReceiver) SetRelinKey(p []byte) error {
	rlk := rlwe.NewRelinearizationKey(r.tmpl.params)
	if err := decodeChecked(p, r.tmpl.rlk, rlk); err != nil {
		return fmt.Errorf("cannot SetRelinKey: %w", err)
	}
	r.rlk = rlk
	return nil
}

// AddGaloisKey decodes the next Galois key of the plan and checks it is the
// plan's element.
func (r *KeyReceiver) AddGaloisKey(p []byte) error {
	i := len(r.gks)
	if i >= len(r.plan) {
		return fmt.Errorf("cannot AddGaloisKey: the plan has %d keys", len(r.plan))
	}
	tmpl, err := r.tmpl.galois(r.plan[i])
	if err != nil {
		return fmt.Errorf("cannot AddGaloisKey: %w", err)
	}
	gk := rlwe.NewGaloisKey(r.tmpl.params)
	if err := decodeChecked(p, tmpl, gk); err != nil {
		return fmt.Errorf("cannot AddGaloisKey: key %d (element %d): %w", i, r.plan[i], err)
	}
	r.gks = append(r.gks, gk)
	return nil
}

// Remaining returns the number of Galois keys still expected.
func (r *KeyReceiver) Remaining() int { return len(r.plan) - len(r.gks) }

// PublicKey returns the public key (nil before SetPublicKey).
func (r *KeyReceiver) PublicKey() *rlwe.PublicKey { return r.pk }

// EvaluationKeys returns the evaluation key set once every key arrived.
func (r *KeyReceiver) EvaluationKeys() (rlwe.EvaluationKeySet, error) {
	if r.pk == nil || r.rlk == nil || r.Remaining() != 0 {
		return nil, fmt.Errorf("cannot EvaluationKeys: incomplete (public key %v, relinearization key %v, %d Galois keys missing)", r.pk != nil, r.rlk != nil, r.Remaining())
	}
	return rlwe.NewMemEvaluationKeySet(r.rlk, r.gks...), nil
}

// decodeChecked checks p against tmpl and decodes it into v.
func decodeChecked(p []byte, tmpl shapeTemplate, v interface{ UnmarshalBinary([]byte) error }) (err error) {
	if err := tmpl.check(p); err != nil {
		return fmt.Errorf("malformed key: %w", err)
	}
	defer func() { // a structurally valid key should never panic; be safe anyway
		if r := recover(); r != nil {
			err = fmt.Errorf("malformed key: %v", r)
		}
	}()
	return v.UnmarshalBinary(p)
}

// Ciphertext is Lattigo's ciphertext, named here for packages above ckks.
type Ciphertext = rlwe.Ciphertext
