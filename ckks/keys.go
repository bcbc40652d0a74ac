package ckks

import (
	crand "crypto/rand"
	"fmt"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"
	"github.com/tuneinsight/lattigo/v5/he/hefloat"
	"github.com/tuneinsight/lattigo/v5/ring/ringqp"

	"github.com/cipherprune/cipherprune/internal/xof"
)

// Parameters are the CKKS parameters of a preset (Lattigo's), named here so
// that packages above ckks need not import Lattigo (docs/design.md, "Packages and who imports whom").
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

// SeedSize is the size of the seed that replaces the uniform half of a
// seeded evaluation key.
const SeedSize = 32

// Evaluation keys travel seeded: a key is a gadget matrix of RLWE samples
// (b, a) with a uniform; the client draws every a from the seed's stream
// (internal/xof: AES-256-CTR, 16x faster here than Lattigo's blake2b
// KeyedPRNG) on a fresh 32-byte seed and sends the seed and the b halves
// only, the server expands the a halves from the seed in the same order.
// The key is exactly the one Lattigo's generator makes with that stream as
// its uniform source, at half the bytes (the a halves are public
// randomness either way).

// MarshalRelinKey generates the relinearization key and returns its seeded
// binary form.
func (k *SecretKeys) MarshalRelinKey() ([]byte, error) {
	seed, kg, err := k.seededGenerator()
	if err != nil {
		return nil, fmt.Errorf("cannot MarshalRelinKey: %w", err)
	}
	rlk := kg.GenRelinearizationKeyNew(k.SK)
	half := &rlwe.RelinearizationKey{EvaluationKey: rlwe.EvaluationKey{GadgetCiphertext: bHalves(&rlk.GadgetCiphertext)}}
	return appendMarshal(seed, half)
}

// seededGenerator returns a fresh seed and a key generator whose uniform
// samples come from it.
func (k *SecretKeys) seededGenerator() ([]byte, *rlwe.KeyGenerator, error) {
	seed := make([]byte, SeedSize)
	if _, err := crand.Read(seed); err != nil {
		return nil, nil, err
	}
	kg, err := k.generatorFor(seed)
	return seed, kg, err
}

// generatorFor returns a key generator whose uniform samples come from seed.
func (k *SecretKeys) generatorFor(seed []byte) (*rlwe.KeyGenerator, error) {
	prng, err := xof.New(seed)
	if err != nil {
		return nil, err
	}
	return &rlwe.KeyGenerator{Encryptor: k.kgen.Encryptor.WithPRNG(prng)}, nil
}

func appendMarshal(seed []byte, v interface{ MarshalBinary() ([]byte, error) }) ([]byte, error) {
	p, err := v.MarshalBinary()
	if err != nil {
		return nil, err
	}
	return append(seed, p...), nil
}

// bHalves returns the gadget matrix of the b halves of g (shared, not
// copied).
func bHalves(g *rlwe.GadgetCiphertext) rlwe.GadgetCiphertext {
	out := rlwe.GadgetCiphertext{BaseTwoDecomposition: g.BaseTwoDecomposition, Value: make([][]rlwe.VectorQP, len(g.Value))}
	for i, row := range g.Value {
		out.Value[i] = make([]rlwe.VectorQP, len(row))
		for j, v := range row {
			out.Value[i][j] = rlwe.VectorQP{v[0]}
		}
	}
	return out
}

// expandSeeded rebuilds the full gadget matrix into full from its b halves
// and the seed: a_ij drawn in the order Lattigo's key generator draws them.
func expandSeeded(params hefloat.Parameters, seed []byte, half, full *rlwe.GadgetCiphertext) error {
	prng, err := xof.New(seed)
	if err != nil {
		return err
	}
	us := ringqp.NewUniformSampler(prng, *params.RingQP())
	for i := range full.Value {
		for j := range full.Value[i] {
			v := full.Value[i][j]
			v[0].Q.Copy(half.Value[i][j][0].Q)
			v[0].P.Copy(half.Value[i][j][0].P)
			us.AtLevel(v[1].LevelQ(), v[1].LevelP()).Read(v[1])
		}
	}
	return nil
}

// KeyReceiver collects and checks, on the server, the keys a client sends
// for one session: the public key and the relinearization key (the
// rotation-free layers need no Galois key). Every key is checked
// against the structure of the parameters' keys before Lattigo decodes it
// (see decode.go), and every coefficient against its modulus after, so a
// malformed key is an error, never a panic, an out-of-memory crash or a
// key with unreduced coefficients.
type KeyReceiver struct {
	tmpl *keyTemplates
	pk   *rlwe.PublicKey
	rlk  *rlwe.RelinearizationKey
}

// NewKeyReceiver returns a receiver for the public key and the
// relinearization key of params.
func NewKeyReceiver(params Parameters) (*KeyReceiver, error) {
	t, err := newKeyTemplates(params)
	if err != nil {
		return nil, fmt.Errorf("cannot NewKeyReceiver: %w", err)
	}
	return &KeyReceiver{tmpl: t}, nil
}

// SetPublicKey decodes and checks the public key.
func (r *KeyReceiver) SetPublicKey(p []byte) error {
	pk := rlwe.NewPublicKey(r.tmpl.params)
	if err := decodeChecked(p, r.tmpl.pk, pk); err != nil {
		return fmt.Errorf("cannot SetPublicKey: %w", err)
	}
	if err := checkReducedQP(r.tmpl.params, pk.Value[:]...); err != nil {
		return fmt.Errorf("cannot SetPublicKey: malformed key: %w", err)
	}
	r.pk = pk
	return nil
}

// SetRelinKey decodes and checks the seeded relinearization key and
// expands it.
func (r *KeyReceiver) SetRelinKey(p []byte) error {
	if len(p) < SeedSize {
		return fmt.Errorf("cannot SetRelinKey: %d bytes", len(p))
	}
	half := &rlwe.RelinearizationKey{}
	if err := decodeChecked(p[SeedSize:], r.tmpl.rlk, half); err != nil {
		return fmt.Errorf("cannot SetRelinKey: %w", err)
	}
	if err := checkReducedGadget(r.tmpl.params, &half.GadgetCiphertext); err != nil {
		return fmt.Errorf("cannot SetRelinKey: malformed key: %w", err)
	}
	rlk := rlwe.NewRelinearizationKey(r.tmpl.params)
	if err := expandSeeded(r.tmpl.params, p[:SeedSize], &half.GadgetCiphertext, &rlk.GadgetCiphertext); err != nil {
		return fmt.Errorf("cannot SetRelinKey: %w", err)
	}
	r.rlk = rlk
	return nil
}

// PublicKey returns the public key (nil before SetPublicKey).
func (r *KeyReceiver) PublicKey() *rlwe.PublicKey { return r.pk }

// EvaluationKeys returns the evaluation key set once every key arrived.
func (r *KeyReceiver) EvaluationKeys() (rlwe.EvaluationKeySet, error) {
	if r.pk == nil || r.rlk == nil {
		return nil, fmt.Errorf("cannot EvaluationKeys: incomplete (public key %v, relinearization key %v)", r.pk != nil, r.rlk != nil)
	}
	return rlwe.NewMemEvaluationKeySet(r.rlk), nil
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

// EvaluationKeySet is Lattigo's evaluation key set, named here for
// packages above ckks.
type EvaluationKeySet = rlwe.EvaluationKeySet

// Ciphertext is Lattigo's ciphertext, named here for packages above ckks.
type Ciphertext = rlwe.Ciphertext

// DecodePublicKey decodes a peer's public key for params (any ring of
// Lattigo's rlwe, the products' rings included) after checking its binary
// form against the expected structure: a malformed key is an error, never
// a panic or an absurd allocation.
func DecodePublicKey(params rlwe.ParameterProvider, p []byte) (*rlwe.PublicKey, error) {
	tmpl, err := newShapeTemplate(func(v uint64) ([]byte, error) {
		pk := rlwe.NewPublicKey(params)
		for _, q := range pk.Value {
			fillPolyQP(q, v)
		}
		return pk.MarshalBinary()
	})
	if err != nil {
		return nil, fmt.Errorf("cannot DecodePublicKey: %w", err)
	}
	pk := rlwe.NewPublicKey(params)
	if err := decodeChecked(p, tmpl, pk); err != nil {
		return nil, fmt.Errorf("cannot DecodePublicKey: %w", err)
	}
	return pk, nil
}
