package prunestep

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"

	"github.com/cipherprune/cipherprune/mpcbridge/share"
	"github.com/cipherprune/cipherprune/mpcbridge/wire"
)

// MaxRevealSlots bounds the slots one Reveal opens.
const MaxRevealSlots = 1 << 12

// Reveal opens chosen slots of one ciphertext to the client, and nothing
// else of it: the output step of an inference (the logits sit in a few
// slots of a ciphertext whose other slots hold the server's intermediate
// sums, which the client must not see).
//
// The server announces it (RequestReveal, the slot count in the request),
// runs share's HE-to-shares conversion on ct (masked in the coefficient
// domain, statistically hiding every slot, 2^-(λ+1)), and sends its integer
// shares of the chosen slots only (MsgRevealShares: the slot indices and
// the shares); the client adds its own shares of those slots. One round
// trip. The client learns the chosen slots rounded to 2^-F, with the
// rounding dithered by the mask; see mpcbridge/README.md for what that
// leaves of the ciphertext's noise.
func (s *Server) Reveal(ctx context.Context, conn *wire.Conn, ct *rlwe.Ciphertext, slots []int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if conn == nil || ct == nil {
		return errors.New("cannot Reveal: nil connection or ciphertext")
	}
	if err := checkRevealSlots(slots, s.params.MaxSlots()); err != nil {
		return fmt.Errorf("cannot Reveal: %w", err)
	}
	req := request{op: RequestReveal, fp: s.fp, stage: len(slots)}
	if err := conn.Send(ctx, MsgRequest, req.marshal()); err != nil {
		abortConn(ctx, conn, "server failed to send a reveal request")
		return fmt.Errorf("cannot Reveal: %w", err)
	}
	vecs, err := s.share.EncToShares(ctx, shareConn{conn}, []*rlwe.Ciphertext{ct})
	if err != nil {
		abortConn(ctx, conn, "server failed to convert the revealed ciphertext")
		return fmt.Errorf("cannot Reveal: %w", err)
	}
	if err := conn.Send(ctx, MsgRevealShares, encodeRevealShares(slots, vecs[0])); err != nil {
		return fmt.Errorf("cannot Reveal: %w", err)
	}
	return nil
}

// revealWordSize is one entry of MsgRevealShares: the slot (uint32) and the
// server's share (Int128: high then low word), big-endian.
const revealWordSize = 4 + 16

// encodeRevealShares encodes MsgRevealShares: each slot j of slots and the
// server's share v[j].
func encodeRevealShares(slots []int, v share.Vector) []byte {
	p := make([]byte, 0, len(slots)*revealWordSize)
	for _, j := range slots {
		p = binary.BigEndian.AppendUint32(p, uint32(j))
		p = binary.BigEndian.AppendUint64(p, v[j].Hi)
		p = binary.BigEndian.AppendUint64(p, v[j].Lo)
	}
	return p
}

// decodeRevealShares decodes MsgRevealShares for a request of k slots of a
// vector of maxSlots: the slots (in range and distinct) and the server's
// shares of them.
func decodeRevealShares(p []byte, k, maxSlots int) ([]int, []share.Int128, error) {
	if len(p) != k*revealWordSize {
		return nil, nil, fmt.Errorf("%w: reveal shares of %d bytes for %d slots", ErrMalformed, len(p), k)
	}
	slots := make([]int, k)
	shares := make([]share.Int128, k)
	for i := range slots {
		o := i * revealWordSize
		slots[i] = int(binary.BigEndian.Uint32(p[o:]))
		shares[i] = share.Int128{Hi: binary.BigEndian.Uint64(p[o+4:]), Lo: binary.BigEndian.Uint64(p[o+12:])}
	}
	if err := checkRevealSlots(slots, maxSlots); err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return slots, shares, nil
}

// encodeRevealLabel encodes MsgRevealLabel: the two slots compared.
func encodeRevealLabel(slots []int) []byte {
	p := binary.BigEndian.AppendUint32(nil, uint32(slots[0]))
	return binary.BigEndian.AppendUint32(p, uint32(slots[1]))
}

// decodeRevealLabel decodes MsgRevealLabel for a vector of maxSlots: two
// distinct slots in range.
func decodeRevealLabel(p []byte, maxSlots int) ([]int, error) {
	if len(p) != 8 {
		return nil, fmt.Errorf("%w: reveal-label slots of %d bytes, want 8", ErrMalformed, len(p))
	}
	slots := []int{int(binary.BigEndian.Uint32(p)), int(binary.BigEndian.Uint32(p[4:]))}
	if err := checkRevealSlots(slots, maxSlots); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return slots, nil
}

func checkRevealSlots(slots []int, maxSlots int) error {
	if len(slots) < 1 || len(slots) > MaxRevealSlots {
		return fmt.Errorf("%d slots to reveal, want 1 to %d", len(slots), MaxRevealSlots)
	}
	seen := make(map[int]bool, len(slots))
	for _, j := range slots {
		if j < 0 || j >= maxSlots || seen[j] {
			return fmt.Errorf("slot %d out of range or repeated (%d slots)", j, maxSlots)
		}
		seen[j] = true
	}
	return nil
}

// Reveal runs the client's side of Server.Reveal: it receives the request,
// and returns the opened slots (in the server's order) and their indices.
// Any failure aborts conn.
func (c *Client) Reveal(ctx context.Context, conn *wire.Conn) (values []float64, slots []int, err error) {
	if conn == nil {
		return nil, nil, errors.New("cannot Reveal: nil connection")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	req, err := c.recvRequest(ctx, conn)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot Reveal: request: %w", err)
	}
	if req.op != RequestReveal {
		abortConn(ctx, conn, fmt.Sprintf("client expected a reveal request, got %v", req.op))
		return nil, nil, fmt.Errorf("cannot Reveal: %w: got a %v request", ErrMalformed, req.op)
	}
	values, slots, err = c.reveal(ctx, conn, req)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot Reveal: %w", err)
	}
	return values, slots, nil
}

func (c *Client) reveal(ctx context.Context, conn *wire.Conn, req request) ([]float64, []int, error) {
	vecs, err := c.share.EncToShares(ctx, shareConn{conn})
	if err != nil {
		abortConn(ctx, conn, "client failed to convert the revealed ciphertext")
		return nil, nil, err
	}
	if len(vecs) != 1 {
		abortConn(ctx, conn, "client expected one revealed ciphertext")
		return nil, nil, fmt.Errorf("%w: %d revealed ciphertexts, want 1", ErrMalformed, len(vecs))
	}
	p, err := conn.Recv(ctx, MsgRevealShares)
	if err != nil {
		return nil, nil, err
	}
	slots, shares, err := decodeRevealShares(p, req.stage, len(vecs[0]))
	if err != nil {
		abortConn(ctx, conn, "client received malformed reveal shares")
		return nil, nil, err
	}
	scale := math.Ldexp(1, -c.p.FracBits())
	values := make([]float64, len(slots))
	for i, j := range slots {
		values[i] = vecs[0][j].Add(shares[i]).Float64() * scale
	}
	return values, slots, nil
}

// RevealLabel opens to the client which of two slots of ct is larger, and
// nothing else: the label of a two-label classifier, without its logits.
// slots are label 0's slot and label 1's; the client learns the bit
// [x_1 > x_0] (so label 0 on a tie, as an argmax that takes the first
// maximum), and the server learns nothing.
//
// The server announces it (RequestRevealLabel), runs share's HE-to-shares
// conversion on ct (as Reveal), and sends the two slot indices
// (MsgRevealLabel). Each party subtracts its integer share of slot 0 from
// its share of slot 1, and the low 64 bits of the differences, additive
// shares modulo 2^64 of round(2^F·(x_1 - x_0)) ± 2, go into one garbled
// comparison with 0 (gc, K = 64, ParamsLiteral.EvaluatorOnly: the server
// garbles and does not read the result back). Two and a half round trips.
//
// Unlike Reveal, which opens the logits rounded to 2^-F and so leaks a
// trace of the ciphertext's noise (mpcbridge/README.md section 7), this
// leaks the noise only through inputs whose two logits are closer than it
// (about 2^-23 at Interactive14), and those only in which label they get.
func (s *Server) RevealLabel(ctx context.Context, conn *wire.Conn, ct *rlwe.Ciphertext, slots []int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if conn == nil || ct == nil {
		return errors.New("cannot RevealLabel: nil connection or ciphertext")
	}
	if len(slots) != 2 {
		return fmt.Errorf("cannot RevealLabel: %d slots, want 2 (a two-label classifier)", len(slots))
	}
	if err := checkRevealSlots(slots, s.params.MaxSlots()); err != nil {
		return fmt.Errorf("cannot RevealLabel: %w", err)
	}
	fail := func(step string, err error) error {
		abortConn(ctx, conn, "server failed at "+step)
		return fmt.Errorf("cannot RevealLabel: %s: %w", step, err)
	}
	req := request{op: RequestRevealLabel, fp: s.fp, stage: len(slots)}
	if err := conn.Send(ctx, MsgRequest, req.marshal()); err != nil {
		return fail("request", err)
	}
	vecs, err := s.share.EncToShares(ctx, shareConn{conn}, []*rlwe.Ciphertext{ct})
	if err != nil {
		return fail("HE to shares", err)
	}
	if err := conn.Send(ctx, MsgRevealLabel, encodeRevealLabel(slots)); err != nil {
		return fail("slots", err)
	}
	diff := vecs[0][slots[1]].Sub(vecs[0][slots[0]]).Lo
	err = withTunnel(ctx, conn, func(t io.ReadWriter) error {
		_, _, err := s.cache.Garble(ctx, t, s.p.label, []uint64{diff}, 0, 0)
		return err
	})
	if err != nil {
		return fail("comparison", err)
	}
	return nil
}

// RevealLabel runs the client's side of Server.RevealLabel: it receives
// the request and returns the label (1 if the second slot's value is
// larger, else 0) and the two slots compared. Any failure aborts conn.
func (c *Client) RevealLabel(ctx context.Context, conn *wire.Conn) (label int, slots []int, err error) {
	if conn == nil {
		return 0, nil, errors.New("cannot RevealLabel: nil connection")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	req, err := c.recvRequest(ctx, conn)
	if err != nil {
		return 0, nil, fmt.Errorf("cannot RevealLabel: request: %w", err)
	}
	if req.op != RequestRevealLabel {
		abortConn(ctx, conn, fmt.Sprintf("client expected a reveal-label request, got %v", req.op))
		return 0, nil, fmt.Errorf("cannot RevealLabel: %w: got a %v request", ErrMalformed, req.op)
	}
	label, slots, err = c.revealLabel(ctx, conn)
	if err != nil {
		abortConn(ctx, conn, "client failed to open the label")
		return 0, nil, fmt.Errorf("cannot RevealLabel: %w", err)
	}
	return label, slots, nil
}

func (c *Client) revealLabel(ctx context.Context, conn *wire.Conn) (int, []int, error) {
	vecs, err := c.share.EncToShares(ctx, shareConn{conn})
	if err != nil {
		return 0, nil, err
	}
	if len(vecs) != 1 {
		return 0, nil, fmt.Errorf("%w: %d converted ciphertexts, want 1", ErrMalformed, len(vecs))
	}
	p, err := conn.Recv(ctx, MsgRevealLabel)
	if err != nil {
		return 0, nil, err
	}
	slots, err := decodeRevealLabel(p, len(vecs[0]))
	if err != nil {
		return 0, nil, err
	}
	diff := vecs[0][slots[1]].Sub(vecs[0][slots[0]]).Lo
	var greater []bool
	err = withTunnel(ctx, conn, func(t io.ReadWriter) error {
		var err error
		greater, _, err = c.cache.Evaluate(ctx, t, c.p.label, []uint64{diff})
		return err
	})
	if err != nil {
		return 0, nil, err
	}
	if greater[0] {
		return 1, slots, nil
	}
	return 0, slots, nil
}
