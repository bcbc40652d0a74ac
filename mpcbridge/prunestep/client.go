package prunestep

import (
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/cipherprune/cipherprune/mpcbridge/gc"
	"github.com/cipherprune/cipherprune/mpcbridge/wire"
)

// Client is the client's side of the pruning step. Like the Server, it
// holds additive shares only, no key of any encryption scheme. Its methods
// serialize: one protocol runs at a time.
type Client struct {
	mu    sync.Mutex
	p     Parameters
	cache *gc.Cache
	rnd   io.Reader
	fp    [32]byte

	// observe, if set (tests only), sees the client's factor π_C of the
	// shuffle's order σ = π_C ∘ π_S and the keep and degree bits the client
	// learns in each step, in the shuffled order.
	observe func(perm []int, keep, high []bool)
}

// NewClient returns the client side for the step parameters p, which must
// equal the server's. rnd is the random source of the client's
// permutations and OTs (nil: crypto/rand; only tests should pass anything
// else).
func NewClient(p Parameters, rnd io.Reader) (*Client, error) {
	if !p.valid() {
		return nil, errors.New("cannot NewClient: invalid Parameters (use NewParameters)")
	}
	if rnd == nil {
		rnd = crand.Reader
	}
	return &Client{p: p, cache: gc.NewCache(), rnd: rnd, fp: fingerprint(p)}, nil
}

// Params returns the step parameters.
func (c *Client) Params() Parameters { return c.p }

// Fingerprint returns the digest of the step parameters (see
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
		return fmt.Errorf("%w: the server's request is for other step parameters (fingerprint %x, ours %x)", ErrMismatch, r.fp[:6], c.fp[:6])
	}
	return nil
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
