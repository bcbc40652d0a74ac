package prunestep

import (
	"context"
	"fmt"
	"io"

	"github.com/cipherprune/cipherprune/mpcbridge/share"
	"github.com/cipherprune/cipherprune/mpcbridge/shuffle"
	"github.com/cipherprune/cipherprune/mpcbridge/wire"
)

// The steps of PruneShares (package documentation, steps 2-6). Each
// returns the kept rows' integer shares, CLS first (its
// input shares as they are), then the high-degree rows, then the
// low-degree rows, and the high count, CLS included; on failure, the name
// of the step that failed.

// shuffleRows draws this party's factor of σ and shuffles the ring shares
// of rows 1..n-1 of in (n >= 2) with the peer over stream (the
// connection's raw stream): S as shuffle.First, C as shuffle.Second.
func shuffleRows(ctx context.Context, stream io.ReadWriter, in Rows, ties bool, role shuffle.Role, rnd io.Reader) (perm []int, rows [][]uint64, err error) {
	perm, err = shuffle.RandomPermutation(in.Len()-1, rnd)
	if err != nil {
		return nil, nil, err
	}
	rows, err = shuffle.Config{Ring: shuffleRing}.ShuffleWith(ctx, stream, role, perm, ringRows(in, ties, role == shuffle.First), rnd)
	if err != nil {
		return nil, nil, err
	}
	return perm, rows, nil
}

// pruneRows runs the server's steps 2-6 on its integer shares in, with the
// thresholds in the comparison's fixed point; the shuffle runs over stream.
func (s *Server) pruneRows(ctx context.Context, conn *wire.Conn, stream io.ReadWriter, in Rows, theta, beta uint64) ([][]share.Int128, int, string, error) {
	kept := [][]share.Int128{in.Row(0)}
	if in.Len() == 1 {
		return kept, 1, "", nil
	}
	perm, rows, err := shuffleRows(ctx, stream, in, s.p.group > 0, shuffle.First, s.rnd)
	if err != nil {
		return nil, 0, "shuffle", err
	}
	// Sent right behind the shuffle's last flight.
	ints, sent, err := s.toIntegers(rows, in.Cols)
	if err != nil {
		return nil, 0, "integer shares", err
	}
	if err := conn.SendUint64s(ctx, MsgIntShares, sent); err != nil {
		return nil, 0, "integer shares", err
	}
	keep, high, err := s.compare(ctx, conn, rows, in.Cols, theta, beta)
	if err != nil {
		return nil, 0, "comparisons", err
	}
	if s.observe != nil {
		s.observe(perm, keep, high)
	}
	order, h := keptOrder(keep, high)
	for _, i := range order {
		kept = append(kept, ints[i])
	}
	return kept, 1 + h, "", nil
}

// pruneRows runs the client's steps 2-6 on its integer shares in.
func (c *Client) pruneRows(ctx context.Context, conn *wire.Conn, in Rows) ([][]share.Int128, int, string, error) {
	kept := [][]share.Int128{in.Row(0)}
	n, d := in.Len(), in.Cols
	if n == 1 {
		return kept, 1, "", nil
	}
	perm, rows, err := shuffleRows(ctx, conn.Raw(ctx), in, c.p.group > 0, shuffle.Second, c.rnd)
	if err != nil {
		return nil, 0, "shuffle", err
	}
	recv := make([]uint64, 2*(n-1)*d)
	if err := conn.RecvUint64sInto(ctx, MsgIntShares, recv); err != nil {
		return nil, 0, "integer shares", err
	}
	keep, high, err := c.compare(ctx, conn, rows, d)
	if err != nil {
		return nil, 0, "comparisons", err
	}
	if c.observe != nil {
		c.observe(perm, keep, high)
	}
	order, h := keptOrder(keep, high)
	return append(kept, addIntegers(rows, recv, order, d)...), 1 + h, "", nil
}

// addIntegers returns the client's integer shares of the shuffled rows
// order: a + (b - b') mod 2^128 for each feature, read as signed, which is
// v - b' exactly, since |v| < 2^22 and 0 <= b' < 2^88.
func addIntegers(rows [][]uint64, recv []uint64, order []int, d int) [][]share.Int128 {
	flat := make([]share.Int128, len(order)*d)
	out := make([][]share.Int128, len(order))
	for r, i := range order {
		row := flat[r*d : (r+1)*d : (r+1)*d]
		for j := range row {
			k := 2 * (i*d + j)
			a := share.Int128{Lo: rows[i][2*j], Hi: rows[i][2*j+1]}
			row[j] = a.Add(share.Int128{Lo: recv[k], Hi: recv[k+1]})
		}
		out[r] = row
	}
	return out
}

// withTunnel runs f on a tunnel of conn (the garbled circuits' stream) and
// closes it.
func withTunnel(ctx context.Context, conn *wire.Conn, f func(io.ReadWriter) error) error {
	t, err := conn.OpenTunnel(ctx)
	if err != nil {
		return err
	}
	err = f(t)
	if cerr := t.Close(); err == nil {
		err = cerr
	}
	return err
}

// acceptStream is the server's shuffle stream of a step on shares: the raw
// stream of conn, whose first Read first receives the client's MsgAccept
// (empty). The client sends it right before its first shuffle bytes, so it
// costs no flight, and its refusal (an Abort) or a malformed message fails
// the server's shuffle with the client's reason.
type acceptStream struct {
	ctx      context.Context
	conn     *wire.Conn
	accepted bool // read by the shuffle's one reading goroutine only
}

// Read reads the raw stream, after MsgAccept.
func (a *acceptStream) Read(p []byte) (int, error) {
	if !a.accepted {
		m, err := a.conn.Recv(a.ctx, MsgAccept)
		if err != nil {
			return 0, err
		}
		if err := decodeAccept(m); err != nil {
			return 0, err
		}
		a.accepted = true
	}
	return a.conn.Raw(a.ctx).Read(p)
}

// Write writes to the raw stream.
func (a *acceptStream) Write(p []byte) (int, error) { return a.conn.Raw(a.ctx).Write(p) }

// decodeAccept checks a MsgAccept payload: empty.
func decodeAccept(p []byte) error {
	if len(p) != 0 {
		return fmt.Errorf("%w: accept of %d bytes, want 0", ErrMalformed, len(p))
	}
	return nil
}
