package polymat

import (
	"errors"
	"fmt"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"
	"github.com/tuneinsight/lattigo/v5/ring"
	"github.com/tuneinsight/lattigo/v5/ring/ringqp"

	"github.com/cipherprune/cipherprune/internal/xof"
)

// SeedSize is the size of the seed of a seeded ciphertext.
const SeedSize = xof.SeedSize

// Encryptor encrypts encoded input blocks under the client's secret key as
// seeded ciphertexts: c1 is expanded from a 32-byte seed (internal/xof), so
// only c0 and the seed travel. It is not safe for concurrent use: give
// each goroutine its own (ShallowCopy).
type Encryptor struct {
	params Parameters
	enc    *rlwe.Encryptor
	pt     *rlwe.Plaintext
	ct     *rlwe.Ciphertext
}

// NewEncryptor returns an encryptor for the secret key sk.
func NewEncryptor(params Parameters, sk *rlwe.SecretKey) (*Encryptor, error) {
	if sk == nil {
		return nil, errors.New("cannot NewEncryptor: nil secret key")
	}
	if sk.Value.Q.N() != params.N() || sk.LevelQ() != params.Limbs()-1 {
		return nil, fmt.Errorf("cannot NewEncryptor: secret key of degree %d at level %d, parameters %v", sk.Value.Q.N(), sk.LevelQ(), params)
	}
	return &Encryptor{
		params: params,
		enc:    rlwe.NewEncryptor(params.rlwe, sk),
		pt:     rlwe.NewPlaintext(params.rlwe, params.Limbs()-1),
		ct:     rlwe.NewCiphertext(params.rlwe, 1, params.Limbs()-1),
	}, nil
}

// ShallowCopy returns an encryptor with the same key and its own buffers
// and noise source.
func (e *Encryptor) ShallowCopy() *Encryptor {
	return &Encryptor{
		params: e.params,
		enc:    e.enc.ShallowCopy(),
		pt:     rlwe.NewPlaintext(e.params.rlwe, e.params.Limbs()-1),
		ct:     rlwe.NewCiphertext(e.params.rlwe, 1, e.params.Limbs()-1),
	}
}

// EncryptSeeded encrypts the coefficient-domain polynomial m (every limb;
// it is transformed in place to the NTT domain) with c1 expanded from seed
// and writes c0 = -c1·s + e + m (NTT domain) into c0. The noise e comes from
// the encryptor's own source, never from seed.
func (e *Encryptor) EncryptSeeded(m ring.Poly, seed []byte, c0 ring.Poly) error {
	prng, err := xof.New(seed)
	if err != nil {
		return fmt.Errorf("cannot EncryptSeeded: %w", err)
	}
	ringQ := e.params.RingQ()
	ringQ.NTT(m, m)
	e.pt.Value = m
	e.pt.IsNTT = true
	e.pt.IsBatched = false
	if err := e.enc.WithPRNG(prng).Encrypt(e.pt, e.ct); err != nil {
		return fmt.Errorf("cannot EncryptSeeded: %w", err)
	}
	c0.Copy(e.ct.Value[0])
	return nil
}

// ExpandC1 writes into c1 the uniform polynomial (NTT domain, every limb)
// that EncryptSeeded draws from seed.
func ExpandC1(params Parameters, seed []byte, c1 ring.Poly) error {
	prng, err := xof.New(seed)
	if err != nil {
		return fmt.Errorf("cannot ExpandC1: %w", err)
	}
	ringqp.NewUniformSampler(prng, *params.rlwe.RingQP()).AtLevel(params.Limbs()-1, -1).Read(ringqp.Poly{Q: c1})
	return nil
}

// NewCiphertext returns a zero degree-1 ciphertext at the top level in
// the NTT domain, as the products want their inputs.
func NewCiphertext(params Parameters) *rlwe.Ciphertext {
	ct := rlwe.NewCiphertext(params.rlwe, 1, params.Limbs()-1)
	ct.IsNTT = true
	ct.IsBatched = false
	return ct
}
