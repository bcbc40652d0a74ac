package elementwise

import (
	"context"
	"errors"
	"fmt"
	"runtime"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"

	"github.com/cipherprune/cipherprune/mpcbridge/share"
)

// Client is the key owner's side. It encrypts only under its secret key
// (seeded) and decrypts only what the server masked. It runs one call at
// a time.
type Client struct {
	p       Parameters
	workers []*share.Client
}

// NewClient returns the client side for the secret key sk, on workers
// goroutines (runtime.GOMAXPROCS(0) if workers <= 0). Seeds and noise
// come from crypto/rand.
func NewClient(p Parameters, sk *rlwe.SecretKey, workers int) (*Client, error) {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	c := &Client{p: p}
	for w := 0; w < workers; w++ {
		sc, err := share.NewClient(p.params, sk, p.share, nil)
		if err != nil {
			return nil, fmt.Errorf("cannot NewClient: %w", err)
		}
		c.workers = append(c.workers, sc)
	}
	return c, nil
}

// Params returns the protocol parameters.
func (c *Client) Params() Parameters { return c.p }

// Poly runs the client's side of Server.Poly: x is its share (n values,
// the same layout as the server's), level the input level of the server's
// recipe (Server.PolyLevel, public). It returns the client's share of
// round(2^F·fn(x)).
func (c *Client) Poly(ctx context.Context, conn Conn, level int, x share.Vector) (share.Vector, error) {
	if level < c.p.maskLevel || level > c.p.params.MaxLevel() {
		return nil, fmt.Errorf("cannot Poly: level %d not in [%d, %d]", level, c.p.maskLevel, c.p.params.MaxLevel())
	}
	out, err := c.run(ctx, conn, opPoly, []int{level}, true, []share.Vector{x})
	if err != nil {
		return nil, fmt.Errorf("cannot Poly: %w", err)
	}
	return out, nil
}

// Mul runs the client's side of Server.Mul: x and y are its shares.
func (c *Client) Mul(ctx context.Context, conn Conn, x, y share.Vector) (share.Vector, error) {
	l := c.p.MulLevel()
	out, err := c.run(ctx, conn, opMul, []int{l, l}, false, []share.Vector{x, y})
	if err != nil {
		return nil, fmt.Errorf("cannot Mul: %w", err)
	}
	return out, nil
}

// Square runs the client's side of Server.Square: x is its share.
func (c *Client) Square(ctx context.Context, conn Conn, x share.Vector) (share.Vector, error) {
	out, err := c.run(ctx, conn, opSquare, []int{c.p.MulLevel()}, false, []share.Vector{x})
	if err != nil {
		return nil, fmt.Errorf("cannot Square: %w", err)
	}
	return out, nil
}

// MulScaled runs the client's side of Server.MulScaled (w ⊙ x ⊙ y, w the
// server's): x and y are its shares.
func (c *Client) MulScaled(ctx context.Context, conn Conn, x, y share.Vector) (share.Vector, error) {
	lx, err := c.p.MulScaledLevel()
	if err != nil {
		return nil, fmt.Errorf("cannot MulScaled: %w", err)
	}
	out, err := c.run(ctx, conn, opMulScaled, []int{lx, c.p.MulLevel()}, false, []share.Vector{x, y})
	if err != nil {
		return nil, fmt.Errorf("cannot MulScaled: %w", err)
	}
	return out, nil
}

// MulPoly runs the client's side of Server.MulPoly (x ⊙ fn(y)): level is
// y's (Server.MulPolyLevel, public).
func (c *Client) MulPoly(ctx context.Context, conn Conn, level int, x, y share.Vector) (share.Vector, error) {
	if level < c.p.MulLevel()+1 || level > c.p.params.MaxLevel() {
		return nil, fmt.Errorf("cannot MulPoly: level %d not in [%d, %d]", level, c.p.MulLevel()+1, c.p.params.MaxLevel())
	}
	out, err := c.run(ctx, conn, opMulPoly, []int{c.p.MulLevel(), level}, true, []share.Vector{x, y})
	if err != nil {
		return nil, fmt.Errorf("cannot MulPoly: %w", err)
	}
	return out, nil
}

// run is the client's side of every operation: receive the operands'
// encoding factors first when scaled (MsgScales: Poly and MulPoly),
// encrypt every operand's share densely, ceil(n/Slots) seeded ciphertexts
// each at its level and at Δ·factor (share.Client.SharesToEnc), send them
// (MsgInput), then receive the masked outputs (MsgOutput) and decrypt them
// into shares (share.Client.EncToShares), pipelined over the workers.
func (c *Client) run(ctx context.Context, conn Conn, o op, levels []int, scaled bool, xs []share.Vector) (share.Vector, error) {
	n, err := c.p.checkVectors(xs)
	if err != nil {
		return nil, err
	}
	var factors []float64
	if scaled {
		payload, err := conn.Recv(ctx, MsgScales)
		if err != nil {
			return nil, fmt.Errorf("receive: %w", err)
		}
		if factors, err = c.p.decodeScales(payload, o, n, len(levels)); err != nil {
			return nil, fmt.Errorf("bad scales message: %w", err)
		}
	}
	slots := c.p.Slots()
	k := c.p.Ciphertexts(n)
	m := len(levels)
	scale := c.p.params.DefaultScale()

	// Encrypt and send.
	inputs := make([][]byte, k*m)
	up := &pipeline{k: k, chunk: c.p.lit.Chunk, workers: len(c.workers)}
	up.work = func(ctx context.Context, w, t int) error {
		for j := 0; j < m; j++ {
			sc := &shareConn{}
			if err := c.workers[w].SharesToEnc(ctx, sc, []share.Vector{piece(xs[j], t, slots)}, levels[j], encodingScale(scale, factors, j)); err != nil {
				return fmt.Errorf("ciphertext %d, operand %d: %w", t, j, err)
			}
			inputs[t*m+j] = sc.out
		}
		return nil
	}
	up.send = func(ctx context.Context, _, first, count int) error {
		msg := c.p.appendMessage(nil, header{op: o, values: n, first: first, count: count, levels: levels}, inputs[first*m:(first+count)*m])
		for i := first * m; i < (first+count)*m; i++ {
			inputs[i] = nil
		}
		if err := conn.Send(ctx, MsgInput, msg); err != nil {
			return fmt.Errorf("send: %w", err)
		}
		return nil
	}
	if err := up.run(ctx); err != nil {
		return nil, err
	}

	// Receive and decrypt.
	outputs := make([][]byte, k)
	res := make(share.Vector, n)
	down := &pipeline{k: k, chunk: c.p.lit.Chunk, workers: len(c.workers)}
	down.recv = func(ctx context.Context, _, first, count int) error {
		payload, err := conn.Recv(ctx, MsgOutput)
		if err != nil {
			return fmt.Errorf("receive: %w", err)
		}
		entries, err := c.p.decodeMessage(payload, header{op: o, values: n, first: first, count: count, levels: []int{c.p.maskLevel}})
		if err != nil {
			return fmt.Errorf("bad output message: %w", err)
		}
		copy(outputs[first:], entries)
		return nil
	}
	down.work = func(ctx context.Context, w, t int) error {
		sc := &shareConn{in: outputs[t]}
		outputs[t] = nil
		vs, err := c.workers[w].EncToShares(ctx, sc)
		if err != nil {
			return fmt.Errorf("ciphertext %d: %w", t, err)
		}
		want := len(piece(res, t, slots))
		if len(vs) != 1 || len(vs[0]) < want {
			return fmt.Errorf("ciphertext %d: %w", t, errShortOutput)
		}
		copy(res[t*slots:], vs[0][:want])
		return nil
	}
	if err := down.run(ctx); err != nil {
		return nil, err
	}
	return res, nil
}

var errShortOutput = errors.New("masked ciphertext holds fewer slots than its values")
