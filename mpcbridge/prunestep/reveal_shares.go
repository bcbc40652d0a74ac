package prunestep

import (
	"context"
	"fmt"
	"io"
	"math"

	"github.com/cipherprune/cipherprune/mpcbridge/gc"
	"github.com/cipherprune/cipherprune/mpcbridge/share"
	"github.com/cipherprune/cipherprune/mpcbridge/wire"
)

// MaxLabels bounds the labels one RevealLabelShares compares: the largest
// bucket of the garbled circuits.
const MaxLabels = gc.MaxBucket

// RevealShares opens the logits to the client, and to the client only:
// logits are the server's integer shares of the k logits (a + b =
// round(2^F·x) with the client's shares a, each below 2^MaxShareBits in
// magnitude, 1 <= k <= MaxRevealSlots). The server sends a request
// (RequestRevealShares, k) and its shares (MsgRevealShares, indices 0 to
// k-1) in one flight; the client adds its own. No round trip, and the
// server learns nothing. The client learns the logits to 2^-F.
//
// An argument error returns before any I/O; a failure to send aborts conn.
func (s *Server) RevealShares(ctx context.Context, conn *wire.Conn, logits share.Vector) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := checkLogits(conn, logits, 1, MaxRevealSlots); err != nil {
		return fmt.Errorf("cannot RevealShares: %w", err)
	}
	idx := make([]int, len(logits))
	for i := range idx {
		idx[i] = i
	}
	req := request{op: RequestRevealShares, fp: s.fp, count: len(logits)}
	err := conn.Send(ctx, MsgRequest, req.marshal())
	if err == nil {
		err = conn.Send(ctx, MsgRevealShares, encodeRevealShares(idx, logits))
	}
	if err != nil {
		abortConn(ctx, conn, "server failed to send the logits' shares")
		return fmt.Errorf("cannot RevealShares: %w", err)
	}
	return nil
}

// RevealShares runs the client's side of Server.RevealShares with the
// client's shares of the logits, and returns the logits. It refuses
// (ErrMismatch) a request for another number of logits. Any failure
// aborts conn.
func (c *Client) RevealShares(ctx context.Context, conn *wire.Conn, logits share.Vector) ([]float64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if conn == nil {
		return nil, fmt.Errorf("cannot RevealShares: %w", errNilConn)
	}
	values, err := c.revealShares(ctx, conn, logits)
	if err != nil {
		abortConn(ctx, conn, "client failed to open the logits")
		return nil, fmt.Errorf("cannot RevealShares: %w", err)
	}
	return values, nil
}

func (c *Client) revealShares(ctx context.Context, conn *wire.Conn, logits share.Vector) ([]float64, error) {
	if err := c.recvLogitsRequest(ctx, conn, RequestRevealShares, logits); err != nil {
		return nil, err
	}
	p, err := conn.Recv(ctx, MsgRevealShares)
	if err != nil {
		return nil, err
	}
	idx, shares, err := decodeRevealShares(p, len(logits), len(logits))
	if err != nil {
		return nil, err
	}
	scale := math.Ldexp(1, -c.p.FracBits())
	values := make([]float64, len(logits))
	for i, j := range idx {
		values[j] = logits[j].Add(shares[i]).Float64() * scale
	}
	return values, nil
}

// RevealLabelShares opens to the client the label of the largest logit
// (the first of equal ones), and nothing else: logits are the server's
// integer shares of k logits, 2 <= k <= MaxLabels, each below
// 2^MaxShareBits in magnitude, whose values must be below 2^(63-F) in
// magnitude (the circuit reads the low 64 bits of the shares). The server
// learns nothing.
//
// The server sends a request (RequestRevealLabelShares, k), and the parties
// run gc's top-K circuit (argmaxLiteral: KeepGroup 2, KeepBase 1, no score
// above θ, EvaluatorOnly) on the low words of their shares, with the label
// indices as tie orders: it keeps exactly the best logit, and only the
// client reads the bits, one-hot at the label. Two and a half round trips.
func (s *Server) RevealLabelShares(ctx context.Context, conn *wire.Conn, logits share.Vector) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := checkLogits(conn, logits, 2, MaxLabels); err != nil {
		return fmt.Errorf("cannot RevealLabelShares: %w", err)
	}
	ties := make([]uint64, len(logits))
	for i := range ties {
		ties[i] = uint64(i)
	}
	req := request{op: RequestRevealLabelShares, fp: s.fp, count: len(logits)}
	err := conn.Send(ctx, MsgRequest, req.marshal())
	if err == nil {
		const never = math.MaxInt64 // θ = β: no logit exceeds it
		err = withTunnel(ctx, conn, func(t io.ReadWriter) error {
			_, _, err := s.cache.GarbleTopK(ctx, t, s.p.argmax, lowWords(logits), ties, never, never)
			return err
		})
	}
	if err != nil {
		abortConn(ctx, conn, "server failed to open the label")
		return fmt.Errorf("cannot RevealLabelShares: %w", err)
	}
	return nil
}

// RevealLabelShares runs the client's side of Server.RevealLabelShares
// with the client's shares of the logits, and returns the label: the index
// of the largest logit, the first of equal ones. It refuses (ErrMismatch) a
// request for another number of labels. Any failure aborts conn.
func (c *Client) RevealLabelShares(ctx context.Context, conn *wire.Conn, logits share.Vector) (label int, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if conn == nil {
		return 0, fmt.Errorf("cannot RevealLabelShares: %w", errNilConn)
	}
	label, err = c.revealLabelShares(ctx, conn, logits)
	if err != nil {
		abortConn(ctx, conn, "client failed to open the label")
		return 0, fmt.Errorf("cannot RevealLabelShares: %w", err)
	}
	return label, nil
}

func (c *Client) revealLabelShares(ctx context.Context, conn *wire.Conn, logits share.Vector) (int, error) {
	if err := c.recvLogitsRequest(ctx, conn, RequestRevealLabelShares, logits); err != nil {
		return 0, err
	}
	var keep []bool
	err := withTunnel(ctx, conn, func(t io.ReadWriter) error {
		var err error
		keep, _, err = c.cache.EvaluateTopK(ctx, t, c.p.argmax, lowWords(logits), make([]uint64, len(logits)))
		return err
	})
	if err != nil {
		return 0, err
	}
	return oneHot(keep)
}

// recvLogitsRequest receives the request of a reveal on shares and checks
// it against the client's logits: operation op, as many logits.
func (c *Client) recvLogitsRequest(ctx context.Context, conn *wire.Conn, op Op, logits share.Vector) error {
	req, err := c.recvRequest(ctx, conn)
	if err != nil {
		return fmt.Errorf("request: %w", err)
	}
	if req.op != op {
		return fmt.Errorf("%w: got a %v request, want %v", ErrMismatch, req.op, op)
	}
	if req.count != len(logits) {
		return fmt.Errorf("%w: the request is for %d logits, the client holds %d", ErrMismatch, req.count, len(logits))
	}
	return checkWidths(logits)
}

// checkLogits checks the arguments of a reveal on shares: a connection,
// lo to hi logits, each share below 2^MaxShareBits.
func checkLogits(conn *wire.Conn, logits share.Vector, lo, hi int) error {
	if conn == nil {
		return errNilConn
	}
	if len(logits) < lo || len(logits) > hi {
		return fmt.Errorf("%d logits, want %d to %d", len(logits), lo, hi)
	}
	return checkWidths(logits)
}

// lowWords returns the shares modulo 2^64.
func lowWords(v share.Vector) []uint64 {
	out := make([]uint64, len(v))
	for i, x := range v {
		out[i] = x.Lo
	}
	return out
}

// oneHot returns the index of the only true bit of keep.
func oneHot(keep []bool) (int, error) {
	label := -1
	for i, k := range keep {
		if k && label >= 0 {
			return 0, fmt.Errorf("%w: the argmax kept labels %d and %d", ErrMalformed, label, i)
		}
		if k {
			label = i
		}
	}
	if label < 0 {
		return 0, fmt.Errorf("%w: the argmax kept no label", ErrMalformed)
	}
	return label, nil
}
