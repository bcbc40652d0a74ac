package ckks

import (
	crand "crypto/rand"
	"errors"
	"fmt"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"
	"github.com/tuneinsight/lattigo/v5/he/hefloat"
	"github.com/tuneinsight/lattigo/v5/ring/ringqp"

	"github.com/cipherprune/cipherprune/internal/xof"
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
	// Total is everything the client sends before the first layer, with
	// Lattigo's full keys; SeededTotal with the seeded relinearization and
	// Galois keys the engine sends (SeededGaloisKeyBytes each: the b halves
	// and a 32-byte seed).
	Total, SeededTotal   int
	SeededGaloisKeyBytes int
}

// Keys measures the key and input sizes for shape s (serialized sizes of
// Lattigo's keys at the top level, and of the seeded keys the engine sends).
func Keys(params hefloat.Parameters, s Shape) (KeyReport, error) {
	galEls, err := GaloisElements(params, s)
	if err != nil {
		return KeyReport{}, fmt.Errorf("cannot Keys: %w", err)
	}
	block, err := BlockFor(params.MaxSlots(), s.Rows, s.Hidden/s.Heads, s.Heads)
	if err != nil {
		return KeyReport{}, fmt.Errorf("cannot Keys: %w", err)
	}
	lay := Layout{Rows: s.Rows, Cols: s.Hidden, Block: block, Slots: params.MaxSlots()}.WithHeadDim(s.Hidden / s.Heads)
	r := KeyReport{GaloisKeys: len(galEls)}
	r.GaloisKeyBytes = rlwe.NewGaloisKey(params).BinarySize()
	r.GaloisBytes = r.GaloisKeys * r.GaloisKeyBytes
	r.RelinBytes = rlwe.NewRelinearizationKey(params).BinarySize()
	r.PublicKeyBytes = rlwe.NewPublicKey(params).BinarySize()
	r.CiphertextBytes = hefloat.NewCiphertext(params, 1, params.MaxLevel()).BinarySize()
	r.InputBytes = lay.NumCts() * r.CiphertextBytes
	r.AttentionMaskBytes = (numDense(lay) + 1) * r.CiphertextBytes
	r.Total = r.GaloisBytes + r.RelinBytes + r.PublicKeyBytes + r.InputBytes + r.AttentionMaskBytes
	gk := rlwe.NewGaloisKey(params)
	half := &rlwe.GaloisKey{EvaluationKey: rlwe.EvaluationKey{GadgetCiphertext: bHalves(&gk.GadgetCiphertext)}}
	r.SeededGaloisKeyBytes = SeedSize + half.BinarySize()
	rlk := rlwe.NewRelinearizationKey(params)
	seededRlk := SeedSize + (&rlwe.RelinearizationKey{EvaluationKey: rlwe.EvaluationKey{GadgetCiphertext: bHalves(&rlk.GadgetCiphertext)}}).BinarySize()
	r.SeededTotal = r.GaloisKeys*r.SeededGaloisKeyBytes + seededRlk + r.PublicKeyBytes + r.InputBytes + r.AttentionMaskBytes
	return r, nil
}

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

// MarshalGaloisKey generates the Galois key of element g and returns its
// seeded binary form.
func (k *SecretKeys) MarshalGaloisKey(g uint64) ([]byte, error) {
	seed, kg, err := k.seededGenerator()
	if err != nil {
		return nil, fmt.Errorf("cannot MarshalGaloisKey: %w", err)
	}
	gk := kg.GenGaloisKeyNew(g, k.SK)
	half := &rlwe.GaloisKey{GaloisElement: gk.GaloisElement, NthRoot: gk.NthRoot,
		EvaluationKey: rlwe.EvaluationKey{GadgetCiphertext: bHalves(&gk.GadgetCiphertext)}}
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
// for one session: the public key, the relinearization key and the Galois
// keys of a rotation plan, in the plan's order. Every key is checked
// against the structure of the parameters' keys before Lattigo decodes it
// (see decode.go), and every coefficient against its modulus after, so a
// malformed key is an error, never a panic, an out-of-memory crash or a
// key with unreduced coefficients.
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

// AddGaloisKey decodes the next seeded Galois key of the plan, checks it is
// the plan's element, and expands it.
func (r *KeyReceiver) AddGaloisKey(p []byte) error {
	i := len(r.gks)
	if i >= len(r.plan) {
		return fmt.Errorf("cannot AddGaloisKey: the plan has %d keys", len(r.plan))
	}
	if len(p) < SeedSize {
		return fmt.Errorf("cannot AddGaloisKey: key %d of %d bytes", i, len(p))
	}
	tmpl, err := r.tmpl.galois(r.plan[i])
	if err != nil {
		return fmt.Errorf("cannot AddGaloisKey: %w", err)
	}
	half := &rlwe.GaloisKey{}
	if err := decodeChecked(p[SeedSize:], tmpl, half); err != nil {
		return fmt.Errorf("cannot AddGaloisKey: key %d (element %d): %w", i, r.plan[i], err)
	}
	if err := checkReducedGadget(r.tmpl.params, &half.GadgetCiphertext); err != nil {
		return fmt.Errorf("cannot AddGaloisKey: key %d (element %d): malformed key: %w", i, r.plan[i], err)
	}
	gk := rlwe.NewGaloisKey(r.tmpl.params)
	gk.GaloisElement, gk.NthRoot = half.GaloisElement, half.NthRoot
	if err := expandSeeded(r.tmpl.params, p[:SeedSize], &half.GadgetCiphertext, &gk.GadgetCiphertext); err != nil {
		return fmt.Errorf("cannot AddGaloisKey: %w", err)
	}
	r.gks = append(r.gks, gk)
	return nil
}

// Extend appends to the plan the elements of plan not already in it, in
// plan's order, and returns them: the Galois keys the client sends next
// (AddGaloisKey), when the bridge re-packed the rows into a block whose
// rotations need keys the first plan did not have.
func (r *KeyReceiver) Extend(plan []uint64) []uint64 {
	have := make(map[uint64]bool, len(r.plan))
	for _, g := range r.plan {
		have[g] = true
	}
	var added []uint64
	for _, g := range plan {
		if !have[g] {
			have[g] = true
			added = append(added, g)
		}
	}
	r.plan = append(r.plan, added...)
	return added
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

// EvaluationKeysFor returns the evaluation key set of the relinearization
// key and the Galois keys of plan, once they arrived. With retain, the
// receiver then forgets every other Galois key (the blocks only shrink, so
// keys of an earlier block's rotations are not needed again).
func (r *KeyReceiver) EvaluationKeysFor(plan []uint64, retain bool) (rlwe.EvaluationKeySet, error) {
	if r.rlk == nil {
		return nil, errors.New("cannot EvaluationKeysFor: no relinearization key")
	}
	byEl := make(map[uint64]*rlwe.GaloisKey, len(r.gks))
	for i, gk := range r.gks {
		byEl[r.plan[i]] = gk
	}
	gks := make([]*rlwe.GaloisKey, 0, len(plan))
	for _, g := range plan {
		gk, ok := byEl[g]
		if !ok {
			return nil, fmt.Errorf("cannot EvaluationKeysFor: no Galois key for element %d", g)
		}
		gks = append(gks, gk)
	}
	if retain && r.Remaining() == 0 {
		r.plan = append([]uint64(nil), plan...)
		r.gks = append([]*rlwe.GaloisKey(nil), gks...)
	}
	return rlwe.NewMemEvaluationKeySet(r.rlk, gks...), nil
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
