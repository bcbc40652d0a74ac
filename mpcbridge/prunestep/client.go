package prunestep

import (
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"
	"github.com/tuneinsight/lattigo/v5/he/hefloat"

	"github.com/cipherprune/cipherprune/mpcbridge/gc"
	"github.com/cipherprune/cipherprune/mpcbridge/share"
	"github.com/cipherprune/cipherprune/mpcbridge/wire"
)

// Client is the key owner's side of the pruning step. It decrypts only
// masked values. Its methods serialize: one protocol runs at a time.
type Client struct {
	mu     sync.Mutex
	params hefloat.Parameters
	p      Parameters
	share  *share.Client
	cache  *gc.Cache
	rnd    io.Reader
	fp     [32]byte

	// observe, if set (tests only), sees the client's factor π_C of the
	// shuffle's order σ = π_C ∘ π_S and the keep and degree bits the client
	// learns in each step, in the shuffled order.
	observe func(perm []int, keep, high []bool)
}

// NewClient returns the client side for the CKKS parameters params, the
// secret key sk and the step parameters p, which must equal the server's.
// rnd is the random source of the client's permutations, OTs and
// encryption seeds (nil: crypto/rand; only tests should pass anything else).
func NewClient(params hefloat.Parameters, sk *rlwe.SecretKey, p Parameters, rnd io.Reader) (*Client, error) {
	if !p.valid() {
		return nil, errors.New("cannot NewClient: invalid Parameters (use NewParameters)")
	}
	if rnd == nil {
		rnd = crand.Reader
	}
	sc, err := share.NewClient(params, sk, p.share, rnd)
	if err != nil {
		return nil, fmt.Errorf("cannot NewClient: %w", err)
	}
	fp, err := fingerprint(params, p)
	if err != nil {
		return nil, fmt.Errorf("cannot NewClient: %w", err)
	}
	return &Client{params: params, p: p, share: sc, cache: gc.NewCache(), rnd: rnd, fp: fp}, nil
}

// Params returns the step parameters.
func (c *Client) Params() Parameters { return c.p }

// Fingerprint returns the digest of the step and CKKS parameters (see
// Server.Fingerprint).
func (c *Client) Fingerprint() [32]byte { return c.fp }

// recvRequest receives and checks the next request. A request the client
// cannot serve aborts conn with the reason.
func (c *Client) recvRequest(ctx context.Context, conn *wire.Conn) (request, error) {
	p, err := conn.Recv(ctx, MsgRequest)
	if err != nil {
		return request{}, err
	}
	req, err := decodeRequest(p)
	if err == nil {
		err = c.checkRequest(&req)
	}
	if err != nil {
		abortConn(ctx, conn, "client refused the request: "+err.Error())
		return request{}, err
	}
	return req, nil
}

// checkRequest checks a decoded request against the client's parameters.
// Every field is public, so its error may travel to the peer.
func (c *Client) checkRequest(r *request) error {
	if r.fp != c.fp {
		return fmt.Errorf("%w: the server's request is for other step or CKKS parameters (fingerprint %x, ours %x)", ErrMismatch, r.fp[:6], c.fp[:6])
	}
	if r.op != RequestPrune {
		return nil
	}
	// The head dimension is not on the wire: it is the parameters' (the
	// fingerprint covers them).
	r.layout = r.layout.WithHeadDim(c.p.headDim)
	lay := r.layout
	switch {
	case lay.Slots != c.params.MaxSlots():
		return fmt.Errorf("%w: layout of %d slots, the parameters have %d", ErrMismatch, lay.Slots, c.params.MaxSlots())
	case lay.Rows > c.p.MaxRows():
		return fmt.Errorf("%w: %d rows exceed the limit of %d", ErrMalformed, lay.Rows, c.p.MaxRows())
	case lay.NumCts()+1 > c.p.share.MaxBatch():
		return fmt.Errorf("%w: %d ciphertexts exceed the batch limit %d", ErrMalformed, lay.NumCts()+1, c.p.share.MaxBatch())
	case r.level > c.params.MaxLevel():
		return fmt.Errorf("%w: level %d above the top level %d", ErrMalformed, r.level, c.params.MaxLevel())
	}
	if err := c.p.checkConversion(lay.Rows, lay.Cols); err != nil {
		return fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return nil
}

// Prune runs the client's side of one pruning step over conn (the server
// runs Server.Prune) and returns the public counts. The client learns the
// counts and nothing else: every value it decrypts is masked, and the
// keep and degree bits it sees are in an order unknown to it.
//
// Any failure aborts conn: the parties are out of step.
func (c *Client) Prune(ctx context.Context, conn *wire.Conn) (Counts, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if conn == nil {
		return Counts{}, errors.New("cannot Prune: nil connection")
	}
	req, err := c.recvRequest(ctx, conn)
	if err != nil {
		return Counts{}, fmt.Errorf("cannot Prune: request: %w", err)
	}
	if req.op != RequestPrune {
		err := fmt.Errorf("%w: got a %v request, want prune", ErrMismatch, req.op)
		abortConn(ctx, conn, "client expected a prune request")
		return Counts{}, fmt.Errorf("cannot Prune: %w", err)
	}
	return c.prune(ctx, conn, req)
}

// prune serves a prune request; the caller holds c.mu.
func (c *Client) prune(ctx context.Context, conn *wire.Conn, req request) (Counts, error) {
	counts, step, err := c.pruneSteps(ctx, conn, req)
	if err != nil {
		abortConn(ctx, conn, "client failed at "+step)
		return Counts{}, fmt.Errorf("cannot Prune: %s: %w", step, err)
	}
	return counts, nil
}

// pruneSteps serves the steps of a prune request.
func (c *Client) pruneSteps(ctx context.Context, conn *wire.Conn, req request) (Counts, string, error) {
	lay := req.layout
	vecs, err := c.share.EncToShares(ctx, shareConn{conn})
	if err != nil {
		return Counts{}, "HE to shares", err
	}
	if err := checkVectors(lay, vecs); err != nil {
		return Counts{}, "HE to shares", err
	}
	kept, nHigh, step, err := c.pruneRows(ctx, conn, slotsToRows(lay, req.layer, vecs))
	if err != nil {
		return Counts{}, step, err
	}
	next, err := c.p.NextLayout(lay, len(kept))
	if err != nil {
		return Counts{}, "next layout", err
	}
	if err := c.share.SharesToEnc(ctx, shareConn{conn}, packRows(next, kept), req.level, rlwe.NewScale(req.scale)); err != nil {
		return Counts{}, "shares to HE", err
	}
	return Counts{Layer: req.layer, In: lay.Rows, Kept: len(kept), High: nHigh}, "", nil
}

// compare runs the evaluator's side of the comparisons of the shuffled rows
// (d features each) in a tunnel.
func (c *Client) compare(ctx context.Context, conn *wire.Conn, rows [][]uint64, d int) (keep, high []bool, err error) {
	err = withTunnel(ctx, conn, func(t io.ReadWriter) error {
		if c.p.group == 0 {
			keep, high, err = c.cache.Evaluate(ctx, t, c.p.cmp, scoreColumn(rows, d))
			return err
		}
		keep, high, err = c.cache.EvaluateTopK(ctx, t, c.p.topk, scoreColumn(rows, d), tieColumn(rows, d))
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	return keep, high, nil
}

// ServeBridge serves the server's bridge (Bridge, or the Server's Prune,
// Refresh and Done called directly) over conn: it answers every refresh
// and prune request in the order the server sends them until the server
// sends Done, and returns the counts of every pruning step, in order. A
// failure aborts conn.
func (c *Client) ServeBridge(ctx context.Context, conn *wire.Conn) ([]Counts, error) {
	return c.ServeBridgeEvents(ctx, conn, nil)
}

// Event is one request the client served, as ServeBridgeEvents reports it.
type Event struct {
	// Op is the request's operation (never RequestDone).
	Op Op
	// Layer is the layer of a prune or progress request (zero for a
	// refresh, whose request carries none).
	Layer int
	// Stage is the stage of a progress request.
	Stage int
	// Counts are the counts of a pruning step (Op == RequestPrune).
	Counts Counts
}

// ServeBridgeEvents is ServeBridge that also calls fn, if not nil, after
// each request it served (progress requests included), from the calling
// goroutine. fn must not block for long: the server may be waiting.
func (c *Client) ServeBridgeEvents(ctx context.Context, conn *wire.Conn, fn func(Event)) ([]Counts, error) {
	if conn == nil {
		return nil, errors.New("cannot ServeBridge: nil connection")
	}
	var all []Counts
	for {
		ev, done, err := c.serveOne(ctx, conn)
		if err != nil {
			return all, fmt.Errorf("cannot ServeBridge: %w", err)
		}
		if done {
			return all, nil
		}
		if ev.Op == RequestPrune {
			all = append(all, ev.Counts)
		}
		if fn != nil {
			fn(ev)
		}
	}
}

// serveOne serves one request.
func (c *Client) serveOne(ctx context.Context, conn *wire.Conn) (ev Event, done bool, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	req, err := c.recvRequest(ctx, conn)
	if err != nil {
		return ev, false, fmt.Errorf("request: %w", err)
	}
	ev = Event{Op: req.op, Layer: req.layer, Stage: req.stage}
	switch req.op {
	case RequestDone:
		return ev, true, nil
	case RequestProgress:
		return ev, false, nil
	case RequestReveal, RequestRevealLabel, RequestPruneShares, RequestRevealShares, RequestRevealLabelShares:
		// Served by their own calls (the ones on shares need the client's
		// shares), never inside a bridge session.
		abortConn(ctx, conn, fmt.Sprintf("client got a %v request inside the bridge session", req.op))
		return ev, false, fmt.Errorf("%w: %v request before Done", ErrMalformed, req.op)
	case RequestRefresh:
		if err := c.share.Refresh(ctx, shareConn{conn}); err != nil {
			abortConn(ctx, conn, "client failed to refresh")
			return ev, false, err
		}
		return ev, false, nil
	default: // RequestPrune: decodeRequest admits no other op
		k, err := c.prune(ctx, conn, req)
		if err != nil {
			return ev, false, err
		}
		ev.Counts = k
		return ev, false, nil
	}
}
