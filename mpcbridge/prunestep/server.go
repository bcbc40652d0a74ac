package prunestep

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

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

// Server is the model owner's side of the pruning step. It holds additive
// shares only, no key of any encryption scheme. Its methods serialize: one
// protocol runs at a time.
type Server struct {
	mu    sync.Mutex
	p     Parameters
	cache *gc.Cache
	rnd   io.Reader
	fp    [32]byte

	// observe, if set (tests only), sees the server's factor π_S of the
	// shuffle's order σ = π_C ∘ π_S and the keep and degree bits the server
	// learns in each step, in the shuffled order.
	observe func(perm []int, keep, high []bool)
}

// NewServer returns the server side for the step parameters p. rnd is the
// random source of every mask, permutation and OT of the server (nil:
// crypto/rand; only tests should pass anything else, and it must be safe
// to read from one goroutine at a time).
func NewServer(p Parameters, rnd io.Reader) (*Server, error) {
	if !p.valid() {
		return nil, errors.New("cannot NewServer: invalid Parameters (use NewParameters)")
	}
	if rnd == nil {
		rnd = crand.Reader
	}
	return &Server{p: p, cache: gc.NewCache(), rnd: rnd, fp: fingerprint(p)}, nil
}

// Params returns the step parameters.
func (s *Server) Params() Parameters { return s.p }

// Fingerprint returns the SHA-256 digest of the step parameters that every
// request carries; a session may also put it in its wire.Config.Params so
// that a mismatch fails the handshake. It covers the step's own parameters
// only: the step encrypts nothing, and the session's agreement on its CKKS
// parameters is the session's to check.
func (s *Server) Fingerprint() [32]byte { return s.fp }

// abortConn ends conn after a failure that left it out of step, telling the
// peer (best effort) so that it does not wait. reason must hold no secret.
func abortConn(ctx context.Context, conn *wire.Conn, reason string) {
	_ = conn.Abort(context.WithoutCancel(ctx), "prunestep: "+reason)
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
