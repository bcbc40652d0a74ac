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
	out, err := c.Polys(ctx, conn, []int{level}, []share.Vector{x})
	if err != nil {
		return nil, err
	}
	return out[0], nil
}

// Polys runs the client's side of Server.Polys: xs are its shares of the
// items, in the server's order, levels their recipes' input levels
// (Server.PolyLevel, public). It returns the client's share of each item.
func (c *Client) Polys(ctx context.Context, conn Conn, levels []int, xs []share.Vector) ([]share.Vector, error) {
	name := "Poly"
	if len(xs) > 1 {
		name = "Polys"
	}
	if len(levels) != len(xs) {
		return nil, fmt.Errorf("cannot %s: %d levels for %d items", name, len(levels), len(xs))
	}
	gs := make([]clientGroup, len(xs))
	for i, l := range levels {
		if l < c.p.maskLevel || l > c.p.params.MaxLevel() {
			return nil, fmt.Errorf("cannot %s: level %d not in [%d, %d]", name, l, c.p.maskLevel, c.p.params.MaxLevel())
		}
		gs[i] = clientGroup{xs: []share.Vector{xs[i]}, levels: []int{l}}
	}
	out, err := c.run(ctx, conn, opPoly, true, gs)
	if err != nil {
		return nil, fmt.Errorf("cannot %s: %w", name, err)
	}
	return out, nil
}

// Mul runs the client's side of Server.Mul: x and y are its shares.
func (c *Client) Mul(ctx context.Context, conn Conn, x, y share.Vector) (share.Vector, error) {
	l := c.p.MulLevel()
	out, err := c.run1(ctx, conn, opMul, false, clientGroup{xs: []share.Vector{x, y}, levels: []int{l, l}})
	if err != nil {
		return nil, fmt.Errorf("cannot Mul: %w", err)
	}
	return out, nil
}

// Square runs the client's side of Server.Square: x is its share.
func (c *Client) Square(ctx context.Context, conn Conn, x share.Vector) (share.Vector, error) {
	out, err := c.run1(ctx, conn, opSquare, false, clientGroup{xs: []share.Vector{x}, levels: []int{c.p.MulLevel()}})
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
	out, err := c.run1(ctx, conn, opMulScaled, false, clientGroup{xs: []share.Vector{x, y}, levels: []int{lx, c.p.MulLevel()}})
	if err != nil {
		return nil, fmt.Errorf("cannot MulScaled: %w", err)
	}
	return out, nil
}

// MulScaledPolys runs the client's side of Server.MulScaledPolys: xs and
// ys are its shares of the items' x and y, in the server's order, levels
// the items' y levels (Server.MulPolyLevel, public); x is at
// Parameters.MulScaledLevel.
func (c *Client) MulScaledPolys(ctx context.Context, conn Conn, levels []int, xs, ys []share.Vector) ([]share.Vector, error) {
	lx, err := c.p.MulScaledLevel()
	if err != nil {
		return nil, fmt.Errorf("cannot MulScaledPolys: %w", err)
	}
	if len(levels) != len(xs) || len(ys) != len(xs) {
		return nil, fmt.Errorf("cannot MulScaledPolys: %d levels and %d y for %d items", len(levels), len(ys), len(xs))
	}
	gs := make([]clientGroup, len(xs))
	for i, l := range levels {
		if l < c.p.MulLevel()+1 || l > c.p.params.MaxLevel() {
			return nil, fmt.Errorf("cannot MulScaledPolys: level %d not in [%d, %d]", l, c.p.MulLevel()+1, c.p.params.MaxLevel())
		}
		gs[i] = clientGroup{xs: []share.Vector{xs[i], ys[i]}, levels: []int{lx, l}}
	}
	out, err := c.run(ctx, conn, opMulScaledPoly, true, gs)
	if err != nil {
		return nil, fmt.Errorf("cannot MulScaledPolys: %w", err)
	}
	return out, nil
}

// MulPoly runs the client's side of Server.MulPoly (x ⊙ fn(y)): level is
// y's (Server.MulPolyLevel, public).
func (c *Client) MulPoly(ctx context.Context, conn Conn, level int, x, y share.Vector) (share.Vector, error) {
	if level < c.p.MulLevel()+1 || level > c.p.params.MaxLevel() {
		return nil, fmt.Errorf("cannot MulPoly: level %d not in [%d, %d]", level, c.p.MulLevel()+1, c.p.params.MaxLevel())
	}
	out, err := c.run1(ctx, conn, opMulPoly, true, clientGroup{xs: []share.Vector{x, y}, levels: []int{c.p.MulLevel(), level}})
	if err != nil {
		return nil, fmt.Errorf("cannot MulPoly: %w", err)
	}
	return out, nil
}

// clientGroup is one group of a client's call: its operands (the
// client's shares) and their levels.
type clientGroup struct {
	xs     []share.Vector
	levels []int
}

// run is the client's side of every operation, on one group or several
// (Polys): receive the operands' encoding factors first when scaled
// (MsgScales: Poly, Polys and MulPoly), encrypt every operand's share
// densely, ceil(n/Slots) seeded ciphertexts each at its level and at
// Δ·factor (share.Client.SharesToEnc), the groups one after the other,
// send them (MsgInput), then receive the masked outputs (MsgOutput) and
// decrypt them into shares (share.Client.EncToShares), pipelined over the
// workers. It returns the client's output share of each group.
func (c *Client) run(ctx context.Context, conn Conn, o op, scaled bool, gs []clientGroup) ([]share.Vector, error) {
	xs, levels := make([][]share.Vector, len(gs)), make([][]int, len(gs))
	for g, gr := range gs {
		xs[g], levels[g] = gr.xs, gr.levels
	}
	sh, err := c.p.newShape(o, xs, levels)
	if err != nil {
		return nil, err
	}
	m := o.operands()
	factors := make([][]float64, len(gs)) // nil: all 1
	if scaled {
		payload, err := conn.Recv(ctx, MsgScales)
		if err != nil {
			return nil, fmt.Errorf("receive: %w", err)
		}
		if factors, err = c.p.decodeScales(payload, o, sh.values(), m); err != nil {
			return nil, fmt.Errorf("bad scales message: %w", err)
		}
	}
	slots := c.p.Slots()
	k := sh.ciphertexts()
	scale := c.p.params.DefaultScale()

	// Encrypt and send.
	inputs := make([][]byte, k*m)
	up := &pipeline{k: k, chunk: c.p.lit.Chunk, workers: len(c.workers)}
	up.work = func(ctx context.Context, w, t int) error {
		g, lt := sh.locate(t)
		for j := 0; j < m; j++ {
			sc := &shareConn{}
			if err := c.workers[w].SharesToEnc(ctx, sc, []share.Vector{piece(xs[g][j], lt, slots)}, levels[g][j], encodingScale(scale, factors[g], j)); err != nil {
				return fmt.Errorf("ciphertext %d, operand %d: %w", t, j, err)
			}
			inputs[t*m+j] = sc.out
		}
		return nil
	}
	up.send = func(ctx context.Context, _, first, count int) error {
		msg := c.p.appendMessage(nil, sh.input(first, count), inputs[first*m:(first+count)*m])
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
	res := make([]share.Vector, len(gs))
	for g, gr := range sh.groups {
		res[g] = make(share.Vector, gr.values)
	}
	down := &pipeline{k: k, chunk: c.p.lit.Chunk, workers: len(c.workers)}
	down.recv = func(ctx context.Context, _, first, count int) error {
		payload, err := conn.Recv(ctx, MsgOutput)
		if err != nil {
			return fmt.Errorf("receive: %w", err)
		}
		entries, err := c.p.decodeMessage(payload, sh.output(c.p.maskLevel, first, count))
		if err != nil {
			return fmt.Errorf("bad output message: %w", err)
		}
		copy(outputs[first:], entries)
		return nil
	}
	down.work = func(ctx context.Context, w, t int) error {
		g, lt := sh.locate(t)
		sc := &shareConn{in: outputs[t]}
		outputs[t] = nil
		vs, err := c.workers[w].EncToShares(ctx, sc)
		if err != nil {
			return fmt.Errorf("ciphertext %d: %w", t, err)
		}
		want := len(piece(res[g], lt, slots))
		if len(vs) != 1 || len(vs[0]) < want {
			return fmt.Errorf("ciphertext %d: %w", t, errShortOutput)
		}
		copy(res[g][lt*slots:], vs[0][:want])
		return nil
	}
	if err := down.run(ctx); err != nil {
		return nil, err
	}
	return res, nil
}

// run1 is run on one group: the single-group operations.
func (c *Client) run1(ctx context.Context, conn Conn, o op, scaled bool, gr clientGroup) (share.Vector, error) {
	out, err := c.run(ctx, conn, o, scaled, []clientGroup{gr})
	if err != nil {
		return nil, err
	}
	return out[0], nil
}

var errShortOutput = errors.New("masked ciphertext holds fewer slots than its values")
