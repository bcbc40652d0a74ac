package layers

import (
	"context"
	"errors"
	"fmt"
	"runtime"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"

	"github.com/cipherprune/cipherprune/mpcbridge/elementwise"
	"github.com/cipherprune/cipherprune/mpcbridge/matmul"
	"github.com/cipherprune/cipherprune/mpcbridge/sharedmul"
	"github.com/cipherprune/cipherprune/mpcbridge/wire"
)

// Conn is the connection between the parties: *wire.Conn implements it.
// The stages run their calls on it one after the other; every message type
// belongs to the call that sends it (matmul's 0x06xx, elementwise's 0x07xx).
type Conn interface {
	Send(ctx context.Context, t wire.Type, payload []byte) error
	Recv(ctx context.Context, t wire.Type) ([]byte, error)
}

// ServerKeys are the client's public keys the server holds: a public key of
// the products' ring and one of the shared products' ring
// (re-randomization of their outputs), and the CKKS public and
// relinearization keys of the calls in slots. No Galois key.
type ServerKeys struct {
	MatMul    *rlwe.PublicKey
	SharedMul *rlwe.PublicKey
	PK        *rlwe.PublicKey
	RLK       *rlwe.RelinearizationKey
}

// ClientKeys are the client's secret keys: one of the products' ring, one
// of the shared products' ring, one of the CKKS preset.
type ClientKeys struct {
	MatMul    *rlwe.SecretKey
	SharedMul *rlwe.SecretKey
	CKKS      *rlwe.SecretKey
}

// Server is the model owner's side of the stages. It holds one products
// server and one elementwise server for the session (each counts what it
// masks) and runs one stage at a time.
type Server struct {
	p              Parameters
	mm, sums       *matmul.Server
	scores, values *sharedmul.Server
	ew             *elementwise.Server
	// trace, if set, is called as each step of a stage ends (the
	// benchmark's breakdown by step).
	trace func(step string)
}

// Masked counts the values a Server's primitives have masked so far, one
// count per budget (each primitive's LogMaxValues): the products by
// weights' outputs, the softmax row sums', the scores' and the context's
// shared products' outputs, and the elementwise calls' output coefficients.
type Masked struct {
	Products, Sums, Scores, Context, Elementwise int64
}

// Masked returns what the server has masked since NewServer (its session).
func (s *Server) Masked() Masked {
	return Masked{
		Products: s.mm.Masked(), Sums: s.sums.Masked(),
		Scores: s.scores.Masked(), Context: s.values.Masked(),
		Elementwise: s.ew.Masked(),
	}
}

func (s *Server) mark(step string) {
	if s.trace != nil {
		s.trace(step)
	}
}

// NewServer returns the server side with the client's keys, on workers
// goroutines per call (runtime.GOMAXPROCS(0) if workers <= 0). Masks and
// re-randomizations draw from crypto/rand.
func NewServer(p Parameters, keys ServerKeys, workers int) (*Server, error) {
	if keys.MatMul == nil || keys.SharedMul == nil || keys.PK == nil || keys.RLK == nil {
		return nil, errors.New("cannot NewServer: a nil key")
	}
	if p.reg == nil {
		return nil, errors.New("cannot NewServer: client parameters (no registry)")
	}
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	s := &Server{p: p}
	var err error
	if s.mm, err = matmul.NewServer(p.mm, keys.MatMul, workers, nil); err != nil {
		return nil, fmt.Errorf("cannot NewServer: %w", err)
	}
	if s.sums, err = matmul.NewServer(p.sums, keys.MatMul, workers, nil); err != nil {
		return nil, fmt.Errorf("cannot NewServer: %w", err)
	}
	if s.scores, err = sharedmul.NewServer(p.scores, keys.SharedMul, workers, nil); err != nil {
		return nil, fmt.Errorf("cannot NewServer: %w", err)
	}
	if s.values, err = sharedmul.NewServer(p.values, keys.SharedMul, workers, nil); err != nil {
		return nil, fmt.Errorf("cannot NewServer: %w", err)
	}
	if s.ew, err = elementwise.NewServer(p.ew, keys.PK, keys.RLK, p.reg, workers); err != nil {
		return nil, fmt.Errorf("cannot NewServer: %w", err)
	}
	return s, nil
}

// Params returns the parameters.
func (s *Server) Params() Parameters { return s.p }

// Client is the key owner's side of the stages. It runs one stage at a
// time.
type Client struct {
	p              Parameters
	mm, sums       *matmul.Client
	scores, values *sharedmul.Client
	ew             *elementwise.Client
}

// NewClient returns the client side with its secret keys, on workers
// goroutines per call (runtime.GOMAXPROCS(0) if workers <= 0).
func NewClient(p Parameters, keys ClientKeys, workers int) (*Client, error) {
	if keys.MatMul == nil || keys.SharedMul == nil || keys.CKKS == nil {
		return nil, errors.New("cannot NewClient: a nil key")
	}
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	c := &Client{p: p}
	var err error
	if c.mm, err = matmul.NewClient(p.mm, keys.MatMul, workers, nil); err != nil {
		return nil, fmt.Errorf("cannot NewClient: %w", err)
	}
	if c.sums, err = matmul.NewClient(p.sums, keys.MatMul, workers, nil); err != nil {
		return nil, fmt.Errorf("cannot NewClient: %w", err)
	}
	if c.scores, err = sharedmul.NewClient(p.scores, keys.SharedMul, workers, nil); err != nil {
		return nil, fmt.Errorf("cannot NewClient: %w", err)
	}
	if c.values, err = sharedmul.NewClient(p.values, keys.SharedMul, workers, nil); err != nil {
		return nil, fmt.Errorf("cannot NewClient: %w", err)
	}
	if c.ew, err = elementwise.NewClient(p.ew, keys.CKKS, workers); err != nil {
		return nil, fmt.Errorf("cannot NewClient: %w", err)
	}
	return c, nil
}

// Params returns the parameters.
func (c *Client) Params() Parameters { return c.p }
