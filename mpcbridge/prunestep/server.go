package prunestep

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"
	"github.com/tuneinsight/lattigo/v5/he/hefloat"

	"github.com/cipherprune/cipherprune/ckks"
	"github.com/cipherprune/cipherprune/models/approx"
	"github.com/cipherprune/cipherprune/mpcbridge/gc"
	"github.com/cipherprune/cipherprune/mpcbridge/share"
	"github.com/cipherprune/cipherprune/mpcbridge/wire"
)

// Counts are what one pruning step reveals, to both parties: the public
// numbers of rows in, rows kept and high-degree rows kept. The CLS row is
// counted in all three (it is always kept, at the high degree).
type Counts struct {
	// Layer is the encoder layer of the step.
	Layer int
	// In is the number of rows entering the step, n.
	In int
	// Kept is the number of rows kept, CLS included.
	Kept int
	// High is the number of kept rows with the high degree, CLS included.
	High int
}

// Low returns the number of kept rows with the low degree.
func (c Counts) Low() int { return c.Kept - c.High }

// String returns a one-line summary.
func (c Counts) String() string {
	return fmt.Sprintf("layer %d: %d rows in, %d kept (%d high, %d low)", c.Layer, c.In, c.Kept, c.High, c.Low())
}

// Server is the model owner's side of the pruning step. It holds the
// client's public key and never a secret key. Its methods serialize: one
// protocol runs at a time.
type Server struct {
	mu     sync.Mutex
	params hefloat.Parameters
	p      Parameters
	share  *share.Server
	masks  *ckks.Client // public-key encryption of the next layer's masks
	cache  *gc.Cache
	rnd    io.Reader
	fp     [32]byte

	// observe, if set (tests only), sees the server's factor π_S of the
	// shuffle's order σ = π_C ∘ π_S and the keep and degree bits the server
	// learns in each step, in the shuffled order.
	observe func(perm []int, keep, high []bool)
}

// NewServer returns the server side for the CKKS parameters params, the
// client's public key pk and the step parameters p. rnd is the random source
// of every mask, permutation and OT of the server (nil: crypto/rand; only
// tests should pass anything else, and it must be safe to read from one
// goroutine at a time).
func NewServer(params hefloat.Parameters, pk *rlwe.PublicKey, p Parameters, rnd io.Reader) (*Server, error) {
	if !p.valid() {
		return nil, errors.New("cannot NewServer: invalid Parameters (use NewParameters)")
	}
	if rnd == nil {
		rnd = crand.Reader
	}
	ss, err := share.NewServer(params, pk, p.share, rnd)
	if err != nil {
		return nil, fmt.Errorf("cannot NewServer: %w", err)
	}
	enc, err := ckks.NewClient(params, pk, nil)
	if err != nil {
		return nil, fmt.Errorf("cannot NewServer: %w", err)
	}
	fp, err := fingerprint(params, p)
	if err != nil {
		return nil, fmt.Errorf("cannot NewServer: %w", err)
	}
	return &Server{params: params, p: p, share: ss, masks: enc, cache: gc.NewCache(), rnd: rnd, fp: fp}, nil
}

// Params returns the step parameters.
func (s *Server) Params() Parameters { return s.p }

// Fingerprint returns the SHA-256 digest of the step and CKKS parameters
// that every request carries; a session may also put it in its
// wire.Config.Params so that a mismatch fails the handshake.
func (s *Server) Fingerprint() [32]byte { return s.fp }

// MinLevel returns the lowest level a ciphertext may have to be converted
// or refreshed (share.Server.MinLevel): run the evaluator with
// ckks.WithReserve(MinLevel()).
func (s *Server) MinLevel() int { return s.share.MinLevel() }

// shareConn adapts a *wire.Conn to share.Conn.
type shareConn struct{ c *wire.Conn }

// Send sends one message of type typ.
func (a shareConn) Send(ctx context.Context, typ uint16, payload []byte) error {
	return a.c.Send(ctx, wire.Type(typ), payload)
}

// Recv receives the next message, which must be of type typ.
func (a shareConn) Recv(ctx context.Context, typ uint16) ([]byte, error) {
	return a.c.Recv(ctx, wire.Type(typ))
}

// abortConn ends conn after a failure that left it out of step, telling the
// peer (best effort) so that it does not wait. reason must hold no secret.
func abortConn(ctx context.Context, conn *wire.Conn, reason string) {
	_ = conn.Abort(context.WithoutCancel(ctx), "prunestep: "+reason)
}

// checkOutput checks the attention output the server prunes and returns
// its layout.
func (s *Server) checkOutput(out *ckks.AttentionOutput) (ckks.Layout, error) {
	if out == nil {
		return ckks.Layout{}, errors.New("nil attention output")
	}
	if err := out.Hidden.Validate(); err != nil {
		return ckks.Layout{}, fmt.Errorf("hidden state: %w", err)
	}
	if out.Scores == nil {
		return ckks.Layout{}, errors.New("nil score ciphertext")
	}
	lay := out.Hidden.Layout
	if lay.Slots != s.params.MaxSlots() {
		return ckks.Layout{}, fmt.Errorf("layout of %d slots, the parameters have %d", lay.Slots, s.params.MaxSlots())
	}
	if lay.Rows > s.p.MaxRows() {
		return ckks.Layout{}, fmt.Errorf("%d rows exceed the limit of %d", lay.Rows, s.p.MaxRows())
	}
	if want := lay.WithHeadDim(s.p.headDim).HeadDim; lay.HeadDim != want {
		return ckks.Layout{}, fmt.Errorf("layout for heads of %d columns, the parameters give %d", lay.HeadDim, want)
	}
	if lay.NumCts()+1 > s.p.share.MaxBatch() {
		return ckks.Layout{}, fmt.Errorf("%d ciphertexts exceed the batch limit %d", lay.NumCts()+1, s.p.share.MaxBatch())
	}
	if err := s.p.checkConversion(lay.Rows, lay.Cols); err != nil {
		return ckks.Layout{}, err
	}
	if out.Layer < 0 || out.Layer >= maxLayer {
		return ckks.Layout{}, fmt.Errorf("layer %d not in [0, %d)", out.Layer, maxLayer)
	}
	return lay, nil
}

// Prune runs the server's side of one pruning step over conn on the
// attention output out, with the layer's private thresholds θ (prune: keep
// the rows with score > θ) and β (degree: high for the kept rows with score >
// β). θ must exceed MinTheta. The client runs Client.Prune (or ServeBridge).
//
// It returns the fresh top-level encryption of the kept rows (CLS first,
// then the high-degree rows, then the low-degree rows, each group in an
// order unknown to both parties), their degrees, the all-valid attention
// masks of the kept rows, and the public counts. The inputs are not
// modified.
//
// An argument error returns before any I/O and leaves conn usable. Any
// later failure aborts conn (the peer's pending call fails too): the
// parties are out of step.
func (s *Server) Prune(ctx context.Context, conn *wire.Conn, out *ckks.AttentionOutput, theta, beta float64) (*ckks.BridgeResult, Counts, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if conn == nil {
		return nil, Counts{}, errors.New("cannot Prune: nil connection")
	}
	if s.p.scoreF != s.p.FracBits() {
		return nil, Counts{}, fmt.Errorf("cannot Prune: ciphertext scores are at FracBits %d, the parameters compare at ScoreFracBits %d", s.p.FracBits(), s.p.scoreF)
	}
	lay, err := s.checkOutput(out)
	if err != nil {
		return nil, Counts{}, fmt.Errorf("cannot Prune: %w", err)
	}
	th, bt, err := s.p.encodeThresholds(theta, beta)
	if err != nil {
		return nil, Counts{}, fmt.Errorf("cannot Prune: %w", err)
	}
	res, counts, step, err := s.prune(ctx, conn, out, lay, th, bt)
	if err != nil {
		abortConn(ctx, conn, "server failed at "+step)
		return nil, Counts{}, fmt.Errorf("cannot Prune: %s: %w", step, err)
	}
	return res, counts, nil
}

// prune runs the steps of Prune after its argument checks.
func (s *Server) prune(ctx context.Context, conn *wire.Conn, out *ckks.AttentionOutput, lay ckks.Layout, theta, beta uint64) (*ckks.BridgeResult, Counts, string, error) {
	// 1. The request, then HE to shares of the hidden state and the scores
	// (one flight).
	req := request{op: RequestPrune, fp: s.fp, layer: out.Layer, layout: lay, level: s.params.MaxLevel(), scale: s.params.DefaultScale().Float64()}
	if err := conn.Send(ctx, MsgRequest, req.marshal()); err != nil {
		return nil, Counts{}, "request", err
	}
	cts := append(append([]*rlwe.Ciphertext(nil), out.Hidden.Cts...), out.Scores)
	vecs, err := s.share.EncToShares(ctx, shareConn{conn}, cts)
	if err != nil {
		return nil, Counts{}, "HE to shares", err
	}
	if err := checkVectors(lay, vecs); err != nil {
		return nil, Counts{}, "HE to shares", err
	}
	// 2-6. Shuffle, integer shares, comparisons, drop and group.
	kept, nHigh, step, err := s.pruneRows(ctx, conn, conn.Raw(ctx), slotsToRows(lay, out.Layer, vecs), theta, beta)
	if err != nil {
		return nil, Counts{}, step, err
	}
	counts := Counts{Layer: out.Layer, In: lay.Rows, Kept: len(kept), High: nHigh}
	res, step, err := s.encryptKept(ctx, conn, lay, kept, counts)
	return res, counts, step, err
}

// encryptKept runs steps 7 and 8 of Prune: shares to HE of the kept rows
// in the next layout, and the public masks and degrees.
func (s *Server) encryptKept(ctx context.Context, conn *wire.Conn, lay ckks.Layout, kept [][]share.Int128, counts Counts) (*ckks.BridgeResult, string, error) {
	next, err := s.p.NextLayout(lay, len(kept))
	if err != nil {
		return nil, "next layout", err
	}
	fresh, err := s.share.SharesToEnc(ctx, shareConn{conn}, packRows(next, kept), s.params.MaxLevel(), s.params.DefaultScale())
	if err != nil {
		return nil, "shares to HE", err
	}
	// The masks of the next layer are public: every kept row is a real
	// token (θ > MinTheta). Encrypt them under the client's public key.
	valid := make([]bool, len(kept))
	for i := range valid {
		valid[i] = true
	}
	masks, err := s.masks.EncryptAttentionMasks(valid, next)
	if err != nil {
		return nil, "attention masks", err
	}
	return &ckks.BridgeResult{
		Hidden:  &ckks.CtMatrix{Layout: next, Cts: fresh},
		Degrees: degrees(counts),
		Masks:   masks,
	}, "", nil
}

// degrees returns the degree of each kept row: High for CLS and the high
// group, Low for the rest.
func degrees(c Counts) ckks.DegreeSet {
	degs := make(ckks.DegreeSet, c.Kept)
	for i := range degs {
		if i < c.High {
			degs[i] = approx.High
		} else {
			degs[i] = approx.Low
		}
	}
	return degs
}

// convHiMask keeps the convBits-64 low bits of a conversion mask's high
// word: the masks b' are uniform in [0, 2^convBits).
const convHiMask = 1<<(convBits-64) - 1

// toIntegers draws b' for every feature value of the shuffled ring rows (S's
// shares b modulo 2^128, two words per value) and returns the server's
// integer shares b' (per row) and the words of b - b' mod 2^128 to send,
// two per value, low word first.
func (s *Server) toIntegers(rows [][]uint64, d int) ([][]share.Int128, []uint64, error) {
	buf := make([]byte, 16*len(rows)*d)
	if _, err := io.ReadFull(s.rnd, buf); err != nil {
		return nil, nil, fmt.Errorf("cannot draw masks: %w", err)
	}
	sent := make([]uint64, 2*len(rows)*d)
	flat := make([]share.Int128, len(rows)*d)
	ints := make([][]share.Int128, len(rows))
	for i, row := range rows {
		ints[i] = flat[i*d : (i+1)*d : (i+1)*d]
		for j := 0; j < d; j++ {
			k := i*d + j
			bp := share.Int128{
				Lo: binary.LittleEndian.Uint64(buf[16*k:]),
				Hi: binary.LittleEndian.Uint64(buf[16*k+8:]) & convHiMask,
			}
			c := share.Int128{Lo: row[2*j], Hi: row[2*j+1]}.Sub(bp)
			sent[2*k], sent[2*k+1] = c.Lo, c.Hi
			ints[i][j] = bp
		}
	}
	return ints, sent, nil
}

// compare runs the garbler's side of the comparisons of the shuffled rows
// (d features each) in a tunnel: with a KeepGroup the top-K comparison,
// with the rank offset added to our score shares (the thresholds have it).
func (s *Server) compare(ctx context.Context, conn *wire.Conn, rows [][]uint64, d int, theta, beta uint64) (keep, high []bool, err error) {
	scores := scoreColumn(rows, d)
	err = withTunnel(ctx, conn, func(t io.ReadWriter) error {
		if s.p.group == 0 {
			keep, high, err = s.cache.Garble(ctx, t, s.p.cmp, scores, theta, beta)
			return err
		}
		for i := range scores {
			scores[i] += s.p.rankOffset()
		}
		keep, high, err = s.cache.GarbleTopK(ctx, t, s.p.topk, scores, tieColumn(rows, d), theta, beta)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	return keep, high, nil
}

// Refresh refreshes cts to the top level through the client (share's
// protocol C, announced by a request so that a client in ServeBridge knows
// what follows). The client answers in ServeBridge.
func (s *Server) Refresh(ctx context.Context, conn *wire.Conn, cts []*rlwe.Ciphertext) ([]*rlwe.Ciphertext, error) {
	return s.RefreshTo(ctx, conn, cts, s.params.MaxLevel())
}

// RefreshTo is Refresh to level, between MinLevel and the top
// (share.Server.RefreshTo). More ciphertexts than the share parameters'
// MaxBatch go in several requests of at most MaxBatch each (one round
// trip each), in order.
func (s *Server) RefreshTo(ctx context.Context, conn *wire.Conn, cts []*rlwe.Ciphertext, level int) ([]*rlwe.Ciphertext, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if conn == nil {
		return nil, errors.New("cannot Refresh: nil connection")
	}
	batch := s.p.share.MaxBatch()
	fresh := make([]*rlwe.Ciphertext, 0, len(cts))
	for start := 0; ; start += batch {
		end := min(start+batch, len(cts))
		req := request{op: RequestRefresh, fp: s.fp}
		if err := conn.Send(ctx, MsgRequest, req.marshal()); err != nil {
			abortConn(ctx, conn, "server failed to send a refresh request")
			return nil, fmt.Errorf("cannot Refresh: %w", err)
		}
		out, err := s.share.RefreshTo(ctx, shareConn{conn}, cts[start:end], level)
		if err != nil {
			abortConn(ctx, conn, "server failed to refresh")
			return nil, fmt.Errorf("cannot Refresh: %w", err)
		}
		fresh = append(fresh, out...)
		if end >= len(cts) {
			return fresh, nil
		}
	}
}

// Progress tells a client in ServeBridge that the server has reached stage
// of layer (both chosen by the caller, below 2^16); the client passes them to
// its event function. It costs one small message and no round trip: the
// client does not answer.
func (s *Server) Progress(ctx context.Context, conn *wire.Conn, layer, stage int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if conn == nil {
		return errors.New("cannot Progress: nil connection")
	}
	if layer < 0 || layer >= maxLayer || stage < 0 || stage >= maxStage {
		return fmt.Errorf("cannot Progress: layer %d, stage %d out of range", layer, stage)
	}
	req := request{op: RequestProgress, fp: s.fp, layer: layer, stage: stage}
	if err := conn.Send(ctx, MsgRequest, req.marshal()); err != nil {
		return fmt.Errorf("cannot Progress: %w", err)
	}
	return nil
}

// Done tells a client in ServeBridge that the session's bridge work is
// over; its ServeBridge returns.
func (s *Server) Done(ctx context.Context, conn *wire.Conn) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if conn == nil {
		return errors.New("cannot Done: nil connection")
	}
	req := request{op: RequestDone, fp: s.fp}
	if err := conn.Send(ctx, MsgRequest, req.marshal()); err != nil {
		return fmt.Errorf("cannot Done: %w", err)
	}
	return nil
}
