package engine

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/cipherprune/cipherprune/models"
	"github.com/cipherprune/cipherprune/mpcbridge/layers"
	"github.com/cipherprune/cipherprune/mpcbridge/prunestep"
	"github.com/cipherprune/cipherprune/mpcbridge/wire"
)

// ErrSessionClosed means an inference was asked of a Session after Close.
var ErrSessionClosed = errors.New("engine: session closed")

// closeTimeout bounds how long Session.Close waits to hand MsgClose to the
// connection.
const closeTimeout = 10 * time.Second

// Session is one connection to a Server that carries any number of
// inferences, one at a time: its first inference generates the session's
// keys and sends them (Report.KeyBytes), the later ones reuse them and send
// only their request, so a client with several texts pays the keys once.
// The keys, the parameters the server announced and the options of the
// Client (pruning, degree reduction, the opening, HideLength) are fixed for
// the session; each inference has its own padded length n and plan. The
// server serves a session while the statistical masks' budget of its keys
// lasts (docs/design.md, "Sessions"): past it, it refuses the next
// inference and the client opens a new session, with new keys.
//
// A Session's methods are safe for concurrent use; the inferences run one
// after the other. An inference that fails ends the session: the later
// ones return its error. An inference that the session's mask budget
// could not cover is refused before any message (ErrSessionSpent): the
// session stays open, to be closed.
type Session struct {
	c     *Client
	mu    sync.Mutex
	conn  *wire.Conn
	keys  *clientKeys // nil until the first inference has sent them
	mark  wire.Stats  // the traffic when the last inference ended
	spent maskCounts  // the masked values of the done inferences, bounded (inferenceMasks)
	err   error       // the failure that ended the session
	done  bool        // closed
}

// clientKeys are a session's secret keys, held by the client's parties,
// and what its first inference settled: the server's answer and the plan.
type clientKeys struct {
	opening sessionAccept
	plan    sessionPlan
	limits  maskCounts // the session's budgets
	party   *layers.Client
	step    *prunestep.Client
}

// NewSession runs the wire handshake on nc and returns the session it
// opens; Close closes nc. On failure nc is closed.
func (c *Client) NewSession(ctx context.Context, nc net.Conn) (*Session, error) {
	conn, err := wire.NewConn(nc, c.wireCfg)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("cannot NewSession: %w", err)
	}
	if err := conn.Handshake(ctx); err != nil {
		conn.Close()
		nc.Close()
		return nil, fmt.Errorf("cannot NewSession: %w", err)
	}
	return &Session{c: c, conn: conn}, nil
}

// Infer runs a private inference of text in the session.
func (s *Session) Infer(ctx context.Context, text string) (*Result, error) {
	enc, err := s.c.Encode(text)
	if err != nil {
		return nil, fmt.Errorf("cannot Infer: %w", err)
	}
	res, err := s.infer(ctx, enc)
	if err != nil {
		return nil, fmt.Errorf("cannot Infer: %w", err)
	}
	return res, nil
}

// InferEncoding is Infer on an already tokenized and padded input, as
// Client.InferEncoding.
func (s *Session) InferEncoding(ctx context.Context, enc models.Encoding) (*Result, error) {
	enc, err := s.c.checkEncoding(enc)
	if err != nil {
		return nil, fmt.Errorf("cannot InferEncoding: %w", err)
	}
	res, err := s.infer(ctx, enc)
	if err != nil {
		return nil, fmt.Errorf("cannot InferEncoding: %w", err)
	}
	return res, nil
}

// Stats returns the session's traffic so far, the handshake's included.
func (s *Session) Stats() wire.Stats { return s.conn.Stats() }

// Close ends the session: unless an inference failed, it tells the server
// that the session is over (MsgClose, which the server takes as the normal
// end), then closes the connection. It returns the error of the former. It
// waits for an inference in progress (cancel its context to stop it).
func (s *Session) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done {
		return nil
	}
	s.done = true
	var err error
	if s.err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
		defer cancel()
		if err = s.conn.Send(ctx, MsgClose, closeMessage()); err != nil {
			err = fmt.Errorf("cannot Close: %w", err)
		}
	}
	s.conn.Close()
	return err
}

// infer is the client's side of one inference: the phases of session.go,
// in order, the keys only in the session's first.
func (s *Session) infer(ctx context.Context, enc models.Encoding) (*Result, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.done:
		return nil, ErrSessionClosed
	case s.err != nil:
		return nil, fmt.Errorf("the session failed earlier: %w", s.err)
	}
	if s.keys != nil {
		// Refused before any message: the session stays open.
		if err := checkBudget(s.keys.plan, enc.Len(), s.spent, s.keys.limits); err != nil {
			return nil, err
		}
	}
	res, err := s.run(ctx, enc)
	if err != nil {
		s.err = err
		return nil, err
	}
	s.spent = s.spent.add(inferenceMasks(s.keys.plan, rowsOf(res.Report.Layers)))
	s.mark = s.conn.Stats()
	return res, nil
}

func (s *Session) run(ctx context.Context, enc models.Encoding) (*Result, error) {
	ci := &clientInference{c: s.c, s: s, conn: s.conn, start: time.Now(), enc: enc}
	ci.phaseStart = ci.start
	acc, pl, err := ci.plan(ctx)
	if err != nil {
		return nil, err
	}
	if s.keys == nil {
		if s.keys, err = ci.sendKeys(ctx, acc, pl); err != nil {
			return nil, err
		}
	}
	sd := ci.newSide(s.keys, pl)
	x, err := ci.input(pl.layers.FracBits())
	if err != nil {
		return nil, err
	}
	logits, err := encoder(ctx, sd, pl, acc.prunes, x)
	if err != nil {
		_ = s.conn.Abort(ctx, "client failed: "+err.Error())
		return nil, err
	}
	ci.endPhase(PhaseLayer)
	return ci.output(ctx, sd, pl, logits)
}
