package share

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"
	"github.com/tuneinsight/lattigo/v5/he/hefloat"
	"github.com/tuneinsight/lattigo/v5/ring"

	"github.com/cipherprune/cipherprune/internal/xof"
)

// Client is the key owner's side of the conversions. It decrypts only
// masked ciphertexts and encrypts only with its secret key, as seeded
// ciphertexts. A Client runs one protocol at a time (its methods serialize
// on a mutex).
type Client struct {
	mu     sync.Mutex
	params hefloat.Parameters
	p      Parameters
	ri     *ringInfo
	sk     *rlwe.SecretKey
	dec    *rlwe.Decryptor
	enc    *rlwe.Encryptor
	codec  *slotCodec
	rnd    io.Reader
}

// NewClient returns the client side for params, the client's secret key sk
// and the protocol parameters p (the same as the server's). rnd draws the
// seeds of the seeded ciphertexts; nil means crypto/rand. The encryption
// noise always comes from crypto/rand.
func NewClient(params hefloat.Parameters, sk *rlwe.SecretKey, p Parameters, rnd io.Reader) (*Client, error) {
	if sk == nil {
		return nil, errors.New("cannot NewClient: nil secret key")
	}
	if sk.Value.Q.N() != params.N() || sk.LevelQ() != params.MaxLevelQ() {
		return nil, fmt.Errorf("cannot NewClient: secret key of degree %d at level %d, parameters of degree %d at level %d", sk.Value.Q.N(), sk.LevelQ(), params.N(), params.MaxLevelQ())
	}
	if err := checkParams(params, p); err != nil {
		return nil, fmt.Errorf("cannot NewClient: %w", err)
	}
	return &Client{
		params: params,
		p:      p,
		ri:     newRingInfo(params),
		sk:     sk,
		dec:    rlwe.NewDecryptor(params, sk),
		enc:    rlwe.NewEncryptor(params, sk),
		codec:  newSlotCodec(params, p),
		rnd:    randReader(rnd),
	}, nil
}

// Params returns the protocol parameters.
func (c *Client) Params() Parameters { return c.p }

// opened is a masked ciphertext after decryption: the plaintext at the mask
// level (NTT domain) and its centred coefficients p = m + e + M.
type opened struct {
	ct   *maskedCt
	bits int
	pt   *rlwe.Plaintext
	p    []Int128
}

// open checks that a masked ciphertext is at the level the parameters
// prescribe for its scale, decrypts it and reconstructs the centred
// coefficients, checking |p_j| <= 3·2^β + 2^V (step A.3, client).
func (c *Client) open(mc *maskedCt) (*opened, error) {
	scale := rlwe.NewScale(mc.scale)
	level, b, err := c.p.MaskLevel(c.params, scale, c.params.MaxLevel())
	if err != nil {
		return nil, err
	}
	if mc.level != level || mc.maskBits != b {
		return nil, fmt.Errorf("masked with %d bits at level %d, but scale %v, LogBound %d, Lambda %d and LogMaxValues %d give %d bits at level %d (different parameters?)", mc.maskBits, mc.level, mc.scale, c.p.logBound, c.p.lambda, c.p.logMaxValues, b, level)
	}
	ct, err := rlwe.NewCiphertextAtLevelFromPoly(level, []ring.Poly{mc.c0, mc.c1})
	if err != nil {
		return nil, err
	}
	ct.IsNTT = true
	pt := rlwe.NewPlaintext(c.params, level)
	c.dec.Decrypt(ct, pt)
	coeffs := c.params.RingQ().AtLevel(level).NewPoly()
	c.params.RingQ().AtLevel(level).INTT(pt.Value, coeffs)
	p := make([]Int128, c.params.N())
	if err := c.ri.toInt128(level, coeffs, p); err != nil {
		return nil, fmt.Errorf("masked value out of range: %w", err)
	}
	v, err := c.p.ValueBits(scale)
	if err != nil {
		return nil, err
	}
	most := maskedBound(b, v)
	for j, x := range p {
		if x.Cmp(most) > 0 || x.Neg().Cmp(most) > 0 {
			return nil, fmt.Errorf("masked coefficient %d out of range: %v beyond 3·2^%d + 2^%d (wrong key or parameters?)", j, x, b, v)
		}
	}
	return &opened{ct: mc, bits: b, pt: pt, p: p}, nil
}

// slotShares decodes the client's slot shares from an opened ciphertext.
func (c *Client) slotShares(o *opened) (Vector, error) {
	if !o.ct.batched {
		return nil, errors.New("not a slot-encoded ciphertext")
	}
	out := make(Vector, 1<<o.ct.logSlots)
	maxBits := c.p.shareBits(slotTermsLog(c.params), o.bits, rlwe.NewScale(o.ct.scale))
	if err := c.codec.decodeShares(o.p, o.ct.scale, out, maxBits); err != nil {
		return nil, err
	}
	return out, nil
}

// EncToShares receives one batch of masked ciphertexts (MsgEncToShares)
// and returns the client's slot shares, one Vector per ciphertext, in the
// server's order (protocol A).
func (c *Client) EncToShares(ctx context.Context, conn Conn) ([]Vector, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	payload, err := conn.Recv(ctx, MsgEncToShares)
	if err != nil {
		return nil, fmt.Errorf("cannot EncToShares: receive: %w", err)
	}
	cts, err := c.ri.decodeMasked(payload, c.p.maxBatch)
	if err != nil {
		return nil, fmt.Errorf("cannot EncToShares: bad message: %w", err)
	}
	out := make([]Vector, len(cts))
	for i := range cts {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("cannot EncToShares: %w", err)
		}
		o, err := c.open(&cts[i])
		if err != nil {
			return nil, fmt.Errorf("cannot EncToShares: ciphertext %d: %w", i, err)
		}
		if out[i], err = c.slotShares(o); err != nil {
			return nil, fmt.Errorf("cannot EncToShares: ciphertext %d: %w", i, err)
		}
	}
	return out, nil
}

// seededEncrypt encrypts pt (NTT domain, at its level) under the secret key
// with c1 drawn from a fresh seed.
func (c *Client) seededEncrypt(pt *rlwe.Plaintext) (ring.Poly, [seedSize]byte, error) {
	var seed [seedSize]byte
	if _, err := io.ReadFull(c.rnd, seed[:]); err != nil {
		return ring.Poly{}, seed, fmt.Errorf("cannot draw a seed: %w", err)
	}
	prng, err := xof.New(seed[:])
	if err != nil {
		return ring.Poly{}, seed, err
	}
	ct := rlwe.NewCiphertext(c.params, 1, pt.Level())
	if err := c.enc.WithPRNG(prng).Encrypt(pt, ct); err != nil {
		return ring.Poly{}, seed, err
	}
	return ct.Value[0], seed, nil
}

// encryptShares encodes a/2^F at level and scale (all slots) and encrypts
// it as a seeded ciphertext (step B, client).
func (c *Client) encryptShares(a Vector, level int, scale float64) (seededCt, error) {
	logSlots := c.params.LogMaxSlots()
	pt, err := encodePlaintext(c.params, c.ri, c.codec, a, level, scale)
	if err != nil {
		return seededCt{}, err
	}
	c0, seed, err := c.seededEncrypt(pt)
	if err != nil {
		return seededCt{}, err
	}
	return seededCt{level: level, logSlots: logSlots, scale: scale, seed: seed, c0: c0}, nil
}

// SharesToEnc encrypts the client's shares, one seeded ciphertext per
// Vector at level and scale, and sends them in one message
// (MsgSharesToEnc), protocol B. The server, calling Server.SharesToEnc with
// the same level and scale and its own shares in the same order, obtains
// fresh encryptions of the shared vectors.
func (c *Client) SharesToEnc(ctx context.Context, conn Conn, shares []Vector, level int, scale rlwe.Scale) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := checkSharesArgs(c.params, c.p, shares, level, scale); err != nil {
		return fmt.Errorf("cannot SharesToEnc: %w", err)
	}
	out := make([]seededCt, len(shares))
	for i, a := range shares {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("cannot SharesToEnc: %w", err)
		}
		var err error
		if out[i], err = c.encryptShares(a, level, scale.Float64()); err != nil {
			return fmt.Errorf("cannot SharesToEnc: vector %d: %w", i, err)
		}
	}
	if err := conn.Send(ctx, MsgSharesToEnc, c.ri.encodeSeeded(out)); err != nil {
		return fmt.Errorf("cannot SharesToEnc: send: %w", err)
	}
	return nil
}
