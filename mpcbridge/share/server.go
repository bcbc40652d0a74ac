package share

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"sync"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"
	"github.com/tuneinsight/lattigo/v5/he/hefloat"
	"github.com/tuneinsight/lattigo/v5/ring"
	"github.com/tuneinsight/lattigo/v5/ring/ringqp"

	"github.com/cipherprune/cipherprune/internal/xof"
	statmask "github.com/cipherprune/cipherprune/mpcbridge/internal/mask"
)

// Server is the model owner's side of the conversions. It holds the
// client's public key (to re-randomize) and never a secret key. A Server
// runs one protocol at a time (its methods serialize on a mutex); its
// ShallowCopy copies run beside it. It counts the coefficients it and its
// copies mask against the session's budget (ParametersLiteral.LogMaxValues)
// and refuses to mask more: use one Server, with its copies, per session.
type Server struct {
	mu     sync.Mutex
	params hefloat.Parameters
	p      Parameters
	pk     *rlwe.PublicKey
	ri     *ringInfo
	enc    *rlwe.Encryptor
	codec  *slotCodec
	rnd    io.Reader
	used   *budget // shared with the copies
}

// budget counts the coefficients a Server and its copies have masked in
// their session.
type budget struct {
	mu          sync.Mutex
	used, limit int64
}

// take reserves n more coefficients, or fails without reserving.
func (b *budget) take(n int64) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if n > b.limit-b.used {
		return fmt.Errorf("%d more masked coefficients would exceed the session's %d (%d used): the masks' statistical bound covers no more; start a new session", n, b.limit, b.used)
	}
	b.used += n
	return nil
}

func (b *budget) masked() (used, limit int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used, b.limit
}

// NewServer returns the server side for params, the client's public key pk
// and the protocol parameters p. rnd seeds the masks; nil means
// crypto/rand (pass a deterministic reader only in tests).
func NewServer(params hefloat.Parameters, pk *rlwe.PublicKey, p Parameters, rnd io.Reader) (*Server, error) {
	if pk == nil {
		return nil, errors.New("cannot NewServer: nil public key")
	}
	if pk.Value[0].Q.N() != params.N() || pk.Value[1].Q.N() != params.N() {
		return nil, fmt.Errorf("cannot NewServer: public key of degree %d, parameters of degree %d", pk.Value[0].Q.N(), params.N())
	}
	if pk.LevelQ() != params.MaxLevelQ() || pk.LevelP() != params.MaxLevelP() {
		return nil, fmt.Errorf("cannot NewServer: public key at levels (%d, %d), parameters at (%d, %d)", pk.LevelQ(), pk.LevelP(), params.MaxLevelQ(), params.MaxLevelP())
	}
	if err := checkParams(params, p); err != nil {
		return nil, fmt.Errorf("cannot NewServer: %w", err)
	}
	return &Server{
		params: params,
		p:      p,
		pk:     pk,
		ri:     newRingInfo(params),
		enc:    rlwe.NewEncryptor(params, pk),
		codec:  newSlotCodec(params, p),
		rnd:    &lockedReader{r: randReader(rnd)},
		used:   &budget{limit: int64(1) << p.logMaxValues},
	}, nil
}

// ShallowCopy returns a Server for another goroutine: the same parameters,
// public key, random source (its reads serialized) and session budget
// (what either masks counts against the one budget), its own encryptor,
// codec and mask streams.
func (s *Server) ShallowCopy() *Server {
	return &Server{
		params: s.params,
		p:      s.p,
		pk:     s.pk,
		ri:     s.ri,
		enc:    rlwe.NewEncryptor(s.params, s.pk),
		codec:  newSlotCodec(s.params, s.p),
		rnd:    s.rnd,
		used:   s.used,
	}
}

// Masked returns the number of coefficients masked so far in this
// session, by s and its copies.
func (s *Server) Masked() int64 {
	used, _ := s.used.masked()
	return used
}

// Remaining returns the number of coefficients s and its copies may still
// mask in this session (N per ciphertext): a caller that masks several
// batches for one answer checks it first, so as to refuse before any
// message rather than halfway.
func (s *Server) Remaining() int64 {
	used, limit := s.used.masked()
	return limit - used
}

// checkParams checks that p suits params at the default scale: the mask
// fits some level and the shares fit the encoder's precision.
func checkParams(params hefloat.Parameters, p Parameters) error {
	scale := params.DefaultScale()
	_, b, err := p.MaskLevel(params, scale, params.MaxLevel())
	if err != nil {
		return err
	}
	return p.checkShareBits(params.LogN(), b, scale)
}

// Params returns the protocol parameters.
func (s *Server) Params() Parameters { return s.p }

// mask is what the server keeps of one masked ciphertext.
type mask struct {
	meta rlwe.MetaData // of the input ciphertext
	ct   maskedCt      // as sent (without the polynomials once sent)
	bits int           // mask width β
	m    []Int128      // the mask M, N coefficients
}

// maskBatch drops, re-randomizes and masks every ciphertext (steps A.1 and
// A.2). slots requires slot-encoded ciphertexts.
func (s *Server) maskBatch(ctx context.Context, cts []*rlwe.Ciphertext, slots bool) ([]maskedCt, []mask, error) {
	if len(cts) > s.p.maxBatch {
		return nil, nil, fmt.Errorf("%d ciphertexts exceed the batch limit %d", len(cts), s.p.maxBatch)
	}
	if err := s.used.take(int64(len(cts)) * int64(s.params.N())); err != nil {
		return nil, nil, err
	}
	out := make([]maskedCt, len(cts))
	masks := make([]mask, len(cts))
	for i, ct := range cts {
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		if err := s.maskOne(ct, slots, &out[i], &masks[i]); err != nil {
			return nil, nil, fmt.Errorf("ciphertext %d: %w", i, err)
		}
	}
	return out, masks, nil
}

func (s *Server) maskOne(ct *rlwe.Ciphertext, slots bool, out *maskedCt, mk *mask) error {
	if ct == nil || ct.MetaData == nil {
		return errors.New("nil ciphertext")
	}
	if ct.Degree() != 1 {
		return fmt.Errorf("degree %d, want 1 (relinearize first)", ct.Degree())
	}
	if ct.IsMontgomery {
		return errors.New("ciphertext in the Montgomery domain")
	}
	if ct.Value[0].N() != s.params.N() {
		return fmt.Errorf("ring degree %d, want %d", ct.Value[0].N(), s.params.N())
	}
	if ct.Level() > s.params.MaxLevel() {
		return fmt.Errorf("level %d above the maximum %d", ct.Level(), s.params.MaxLevel())
	}
	if slots && (!ct.IsBatched || ct.LogDimensions.Rows != 0) {
		return errors.New("not a slot-encoded ciphertext")
	}
	if ct.LogDimensions.Cols < 0 || ct.LogDimensions.Cols > s.params.LogMaxSlots() {
		return fmt.Errorf("log slots %d not in [0, %d]", ct.LogDimensions.Cols, s.params.LogMaxSlots())
	}
	// Both parties work with the scale rounded to float64 (the message
	// carries it), so that they derive the same mask width and level.
	scale := ct.Scale.Float64()
	if !(scale >= 1) || math.IsInf(scale, 0) {
		return fmt.Errorf("scale %v is not finite and >= 1", scale)
	}
	fscale := rlwe.NewScale(scale)
	level, b, err := s.p.MaskLevel(s.params, fscale, ct.Level())
	if err != nil {
		return err
	}
	if slots {
		if err := s.p.checkShareBits(s.params.LogN(), b, fscale); err != nil {
			return err
		}
	}
	ringQ := s.params.RingQ().AtLevel(level)

	// A.1: drop to the mask level (a copy; the input is not modified).
	c0, c1 := ringQ.NewPoly(), ringQ.NewPoly()
	c0.CopyLvl(level, ct.Value[0])
	c1.CopyLvl(level, ct.Value[1])
	if !ct.IsNTT {
		ringQ.NTT(c0, c0)
		ringQ.NTT(c1, c1)
	}

	// A.2: add a fresh public-key encryption of zero, so that c1 is a fresh
	// RLWE sample and no longer a function of the client's ciphertexts and
	// the weights ...
	zero := rlwe.NewCiphertext(s.params, 1, level)
	zero.IsNTT = true
	if err := s.enc.EncryptZero(zero); err != nil {
		return fmt.Errorf("cannot re-randomize: %w", err)
	}
	ringQ.Add(c0, zero.Value[0], c0)
	ringQ.Add(c1, zero.Value[1], c1)

	// ... and the mask M, every coefficient the sum of three integers
	// uniform in [-2^β, 2^β), to c0.
	sampler, err := statmask.NewSampler[Int128](s.rnd, b)
	if err != nil {
		return fmt.Errorf("cannot mask: %w", err)
	}
	m := make([]Int128, s.params.N())
	sampler.Sample(m)
	mp := ringQ.NewPoly()
	s.ri.lift(level, m, mp)
	ringQ.NTT(mp, mp)
	ringQ.Add(c0, mp, c0)

	*out = maskedCt{level: level, logSlots: ct.LogDimensions.Cols, batched: ct.IsBatched, maskBits: b, scale: scale, c0: c0, c1: c1}
	*mk = mask{meta: cloneMeta(ct.MetaData), ct: *out, bits: b, m: m}
	mk.ct.c0, mk.ct.c1 = ring.Poly{}, ring.Poly{}
	return nil
}

// maskShares decodes -M into the server's slot shares (step A.3, server).
func (s *Server) maskShares(mk *mask) (Vector, error) {
	neg := make([]Int128, len(mk.m))
	for j, x := range mk.m {
		neg[j] = x.Neg()
	}
	out := make(Vector, 1<<mk.ct.logSlots)
	maxBits := s.p.shareBits(slotTermsLog(s.params), mk.bits, rlwe.NewScale(mk.ct.scale))
	if err := s.codec.decodeShares(neg, mk.ct.scale, out, maxBits); err != nil {
		return nil, err
	}
	return out, nil
}

// EncToShares turns every ciphertext of cts into additive slot shares
// (protocol A): the ciphertexts are masked and sent to the client in one
// message (MsgEncToShares), and the server's shares are returned, one
// Vector of 2^LogSlots values per ciphertext, in order. The client calls
// Client.EncToShares. The inputs are not modified.
func (s *Server) EncToShares(ctx context.Context, conn Conn, cts []*rlwe.Ciphertext) ([]Vector, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sent, masks, err := s.maskBatch(ctx, cts, true)
	if err != nil {
		return nil, fmt.Errorf("cannot EncToShares: %w", err)
	}
	if err := conn.Send(ctx, MsgEncToShares, s.ri.encodeMasked(sent)); err != nil {
		return nil, fmt.Errorf("cannot EncToShares: send: %w", err)
	}
	out := make([]Vector, len(masks))
	for i := range masks {
		if out[i], err = s.maskShares(&masks[i]); err != nil {
			return nil, fmt.Errorf("cannot EncToShares: ciphertext %d: %w", i, err)
		}
	}
	return out, nil
}

// expandC1 expands the uniform c1 of a seeded ciphertext at level, exactly
// as Lattigo's secret-key encryptor samples it from the same seed stream.
func expandC1(params hefloat.Parameters, seed [seedSize]byte, level int) (ring.Poly, error) {
	prng, err := xof.New(seed[:])
	if err != nil {
		return ring.Poly{}, fmt.Errorf("cannot expand c1: %w", err)
	}
	c1 := params.RingQ().AtLevel(level).NewPoly()
	ringqp.NewUniformSampler(prng, *params.RingQP()).AtLevel(level, -1).Read(ringqp.Poly{Q: c1})
	return c1, nil
}

// SharesToEnc receives the client's seeded encryptions of its shares
// (MsgSharesToEnc, one ciphertext per Vector) and adds the server's shares
// (protocol B), returning fresh ciphertexts of the shared vectors at level
// and scale with all slots (LogMaxSlots), zero beyond each vector's length.
// Both parties pass the same level and scale; the scale is used as its
// nearest float64. The client calls Client.SharesToEnc.
func (s *Server) SharesToEnc(ctx context.Context, conn Conn, shares []Vector, level int, scale rlwe.Scale) ([]*rlwe.Ciphertext, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkSharesArgs(shares, level, scale); err != nil {
		return nil, fmt.Errorf("cannot SharesToEnc: %w", err)
	}
	payload, err := conn.Recv(ctx, MsgSharesToEnc)
	if err != nil {
		return nil, fmt.Errorf("cannot SharesToEnc: receive: %w", err)
	}
	got, err := s.ri.decodeSeeded(payload, s.p.maxBatch)
	if err != nil {
		return nil, fmt.Errorf("cannot SharesToEnc: bad message: %w", err)
	}
	out, err := s.combine(ctx, got, shares, level, scale.Float64())
	if err != nil {
		return nil, fmt.Errorf("cannot SharesToEnc: %w", err)
	}
	return out, nil
}

// checkEncodeBits checks that shares of up to bits bits keep the codec
// error small and the encoded coefficients (about scale·|v|/2^F) in Int128.
func checkEncodeBits(logN, bits, fracBits int, scale float64) error {
	if bits > maxShareBits {
		return fmt.Errorf("a %d-bit share exceeds the %d-bit limit", bits, maxShareBits)
	}
	if _, e := math.Frexp(scale); bits-fracBits+e+1 > 126 {
		return fmt.Errorf("%d-bit shares at scale 2^%d exceed 128-bit coefficients", bits, e)
	}
	return checkCodecBits(logN, bits)
}

// encodePlaintext returns the plaintext (level, NTT domain, all slots) that
// encodes v/2^F at scale.
func encodePlaintext(params hefloat.Parameters, ri *ringInfo, codec *slotCodec, v Vector, level int, scale float64) (*rlwe.Plaintext, error) {
	coeffs := make([]Int128, params.N())
	if err := codec.encodeShares(v, scale, coeffs); err != nil {
		return nil, err
	}
	ringQ := params.RingQ().AtLevel(level)
	poly := ringQ.NewPoly()
	ri.lift(level, coeffs, poly)
	ringQ.NTT(poly, poly)
	return slotPlaintext(level, params.LogMaxSlots(), scale, poly, true), nil
}

// checkSharesArgs checks the arguments of SharesToEnc (either party).
func checkSharesArgs(params hefloat.Parameters, p Parameters, shares []Vector, level int, scale rlwe.Scale) error {
	if len(shares) > p.maxBatch {
		return fmt.Errorf("%d vectors exceed the batch limit %d", len(shares), p.maxBatch)
	}
	if level < 0 || level > params.MaxLevel() {
		return fmt.Errorf("level %d not in [0, %d]", level, params.MaxLevel())
	}
	f := scale.Float64()
	if !(f >= 1) || f > 1e300 {
		return fmt.Errorf("scale %v not in [1, 1e300]", f)
	}
	for i, v := range shares {
		if len(v) > params.MaxSlots() {
			return fmt.Errorf("vector %d has %d values, more than %d slots", i, len(v), params.MaxSlots())
		}
		if err := checkEncodeBits(params.LogN(), maxBitLen(v), p.fracBits, f); err != nil {
			return fmt.Errorf("vector %d: %w", i, err)
		}
	}
	return nil
}

func (s *Server) checkSharesArgs(shares []Vector, level int, scale rlwe.Scale) error {
	return checkSharesArgs(s.params, s.p, shares, level, scale)
}

// combine adds the server's encoded shares to the client's seeded
// ciphertexts (step B, server).
func (s *Server) combine(ctx context.Context, got []seededCt, shares []Vector, level int, scale float64) ([]*rlwe.Ciphertext, error) {
	if len(got) != len(shares) {
		return nil, fmt.Errorf("message holds %d ciphertexts for %d vectors", len(got), len(shares))
	}
	logSlots := s.params.LogMaxSlots()
	ringQ := s.params.RingQ().AtLevel(level)
	out := make([]*rlwe.Ciphertext, len(got))
	for i := range got {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		g := &got[i]
		if g.level != level || g.logSlots != logSlots || g.scale != scale {
			return nil, fmt.Errorf("ciphertext %d: level %d, log slots %d, scale %v; want %d, %d, %v", i, g.level, g.logSlots, g.scale, level, logSlots, scale)
		}
		pt, err := encodePlaintext(s.params, s.ri, s.codec, shares[i], level, scale)
		if err != nil {
			return nil, fmt.Errorf("ciphertext %d: %w", i, err)
		}
		c0 := g.c0
		ringQ.Add(c0, pt.Value, c0)
		c1, err := expandC1(s.params, g.seed, level)
		if err != nil {
			return nil, err
		}
		ct := &rlwe.Ciphertext{Element: rlwe.Element[ring.Poly]{Value: []ring.Poly{c0, c1}}}
		meta := cloneMeta(pt.MetaData)
		ct.MetaData = &meta
		out[i] = ct
	}
	return out, nil
}

// cloneMeta returns a deep copy of m (a big.Float must not be copied by
// value and then used on both sides).
func cloneMeta(m *rlwe.MetaData) rlwe.MetaData {
	out := *m
	out.Scale = rlwe.Scale{}
	out.Scale.Value.SetPrec(m.Scale.Value.Prec()).Set(&m.Scale.Value)
	if m.Scale.Mod != nil {
		out.Scale.Mod = new(big.Int).Set(m.Scale.Mod)
	}
	return out
}
