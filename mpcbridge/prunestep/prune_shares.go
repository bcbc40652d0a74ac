package prunestep

import (
	"context"
	"fmt"

	"github.com/cipherprune/cipherprune/mpcbridge/share"
	"github.com/cipherprune/cipherprune/mpcbridge/wire"
)

// PruneShares runs the server's side of one pruning step on integer shares
// (the package documentation, "The step") over conn: in holds the
// server's shares of the hidden state and the scores of layer in.Layer,
// θ and β are the layer's private thresholds (LayerRule). The client runs
// Client.PruneShares with its own shares of the same rows.
//
// It returns the server's integer shares of the kept rows (CLS first, then
// the high-degree rows, then the low-degree rows, each group in an order
// unknown to both parties; the first Counts.High have the high degree) and
// the public counts. in is not modified.
//
// An argument error (a bad shape, a share beyond 2^MaxShareBits, θ <=
// MinTheta) returns before any I/O and leaves conn usable. Any later
// failure aborts conn.
func (s *Server) PruneShares(ctx context.Context, conn *wire.Conn, in Rows, theta, beta float64) (Rows, Counts, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if conn == nil {
		return Rows{}, Counts{}, fmt.Errorf("cannot PruneShares: %w", errNilConn)
	}
	if err := in.check(s.p); err != nil {
		return Rows{}, Counts{}, fmt.Errorf("cannot PruneShares: %w", err)
	}
	th, bt, err := s.p.encodeThresholds(theta, beta)
	if err != nil {
		return Rows{}, Counts{}, fmt.Errorf("cannot PruneShares: %w", err)
	}
	req := request{op: RequestPruneShares, fp: s.fp, layer: in.Layer, rows: in.Len(), cols: in.Cols}
	step := "request"
	var kept [][]share.Int128
	var nHigh int
	if err = conn.Send(ctx, MsgRequest, req.marshal()); err == nil {
		kept, nHigh, step, err = s.pruneRows(ctx, conn, &acceptStream{ctx: ctx, conn: conn}, in, th, bt)
	}
	if err != nil {
		abortConn(ctx, conn, "server failed at "+step)
		return Rows{}, Counts{}, fmt.Errorf("cannot PruneShares: %s: %w", step, err)
	}
	return keptRows(in, kept), Counts{Layer: in.Layer, In: in.Len(), Kept: len(kept), High: nHigh}, nil
}

// PruneShares runs the client's side of Server.PruneShares over conn with
// the client's shares in of the same rows, and returns the client's
// integer shares of the kept rows, in the server's order, and the public
// counts. It refuses (ErrMismatch) a request whose n, d or layer differ
// from in's, and any input Server.PruneShares would refuse, telling the
// server why. The client learns the counts and nothing else.
//
// Any failure aborts conn: the parties are out of step.
func (c *Client) PruneShares(ctx context.Context, conn *wire.Conn, in Rows) (Rows, Counts, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if conn == nil {
		return Rows{}, Counts{}, fmt.Errorf("cannot PruneShares: %w", errNilConn)
	}
	req, err := c.recvRequest(ctx, conn)
	if err != nil {
		return Rows{}, Counts{}, fmt.Errorf("cannot PruneShares: request: %w", err)
	}
	if err := c.matchRows(req, in); err != nil {
		abortConn(ctx, conn, "client refused the request: "+err.Error())
		return Rows{}, Counts{}, fmt.Errorf("cannot PruneShares: %w", err)
	}
	step := "accept"
	if in.Len() > 1 { // the server reads it before the shuffle's first bytes
		err = conn.Send(ctx, MsgAccept, nil)
	}
	var kept [][]share.Int128
	var nHigh int
	if err == nil {
		kept, nHigh, step, err = c.pruneRows(ctx, conn, in)
	}
	if err != nil {
		abortConn(ctx, conn, "client failed at "+step)
		return Rows{}, Counts{}, fmt.Errorf("cannot PruneShares: %s: %w", step, err)
	}
	return keptRows(in, kept), Counts{Layer: in.Layer, In: in.Len(), Kept: len(kept), High: nHigh}, nil
}

// matchRows checks a request against the client's input in. Its error
// holds only public values.
func (c *Client) matchRows(req request, in Rows) error {
	if req.op != RequestPruneShares {
		return fmt.Errorf("%w: got a %v request, want prune on shares", ErrMismatch, req.op)
	}
	if err := in.check(c.p); err != nil {
		return fmt.Errorf("client input: %w", err)
	}
	if req.layer != in.Layer || req.rows != in.Len() || req.cols != in.Cols {
		return fmt.Errorf("%w: the request is for layer %d, %d x %d rows; the client's input is layer %d, %d x %d",
			ErrMismatch, req.layer, req.rows, req.cols, in.Layer, in.Len(), in.Cols)
	}
	return nil
}
