package prunestep

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/cipherprune/cipherprune/mpcbridge/internal/nettest"
	"github.com/cipherprune/cipherprune/mpcbridge/share"
	"github.com/cipherprune/cipherprune/mpcbridge/wire"
)

// TestPruneWrongParameters: a client with other step parameters refuses the
// request (the fingerprint differs); both sides fail, neither hangs.
func TestPruneWrongParameters(t *testing.T) {
	defer noLeaks(t)()
	tc := newTestContext(t, defaultLiteral)
	sIn, cIn := sharesInput(t, tc)
	for _, lit := range otherLiterals() {
		t.Run(fmt.Sprintf("%+v", lit), func(t *testing.T) {
			p, err := NewParameters(lit)
			if err != nil {
				t.Fatal(err)
			}
			other, err := NewClient(p, nil)
			if err != nil {
				t.Fatal(err)
			}
			ctx := testCtx(t)
			srv, cli := connPair(t, "tcp")
			serr, cerr := nettest.Both(func() error {
				_, _, err := tc.server.PruneShares(ctx, srv, sIn, 0.1, 0.3)
				return err
			}, func() error {
				_, _, err := other.PruneShares(ctx, cli, cIn)
				return err
			})
			if !errors.Is(cerr, ErrMismatch) {
				t.Errorf("client: %v, want ErrMismatch", cerr)
			}
			if serr == nil {
				t.Error("server succeeded")
			}
			t.Logf("server: %v\nclient: %v", serr, cerr)
		})
	}
}

// otherLiterals returns step literals that each differ from defaultLiteral
// in one field of the fingerprint.
func otherLiterals() []ParametersLiteral {
	return []ParametersLiteral{
		{Share: shareLiteral(4, 12)},
		{Share: shareLiteral(3, 16)},
		{Share: share.ParametersLiteral{LogBound: 4, FracBits: 16, Lambda: 41}},
		{Share: shareLiteral(4, 16), CompareBits: 32},
		{Share: shareLiteral(4, 16), KeepGroup: 2},
		{Share: shareLiteral(4, 16), ScoreFracBits: 18},
	}
}

// TestFingerprint: parties of equal step Parameters, made independently,
// have equal fingerprints; parties of Parameters that differ in any field
// have different ones.
func TestFingerprint(t *testing.T) {
	seen := map[[32]byte]ParametersLiteral{}
	for _, lit := range append(otherLiterals(), defaultLiteral) {
		t.Run(fmt.Sprintf("%+v", lit), func(t *testing.T) {
			p, err := NewParameters(lit)
			if err != nil {
				t.Fatal(err)
			}
			q, err := NewParameters(p.Literal())
			if err != nil {
				t.Fatal(err)
			}
			s, err := NewServer(p, nil)
			if err != nil {
				t.Fatal(err)
			}
			c, err := NewClient(q, nil)
			if err != nil {
				t.Fatal(err)
			}
			fp := s.Fingerprint()
			if c.Fingerprint() != fp {
				t.Errorf("client's fingerprint %x, server's %x", c.Fingerprint(), fp)
			}
			if prev, ok := seen[fp]; ok {
				t.Errorf("same fingerprint %x as %+v", fp, prev)
			}
			seen[fp] = lit
		})
	}
}

// TestNewPartiesInvalid: both parties refuse Parameters not made by
// NewParameters.
func TestNewPartiesInvalid(t *testing.T) {
	if _, err := NewServer(Parameters{}, nil); err == nil {
		t.Error("NewServer accepted zero Parameters")
	}
	if _, err := NewClient(Parameters{}, nil); err == nil {
		t.Error("NewClient accepted zero Parameters")
	}
}

// cutConn is a net.Conn that fails, closing the connection, once limit
// bytes have been written through it: the party disconnects mid-protocol.
type cutConn struct {
	net.Conn
	mu      sync.Mutex
	limit   int64
	written int64
}

var errCut = errors.New("test: connection cut")

func (c *cutConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	left := c.limit - c.written
	if int64(len(p)) <= left {
		c.written += int64(len(p))
		c.mu.Unlock()
		return c.Conn.Write(p)
	}
	c.written = c.limit
	c.mu.Unlock()
	n := 0
	if left > 0 {
		n, _ = c.Conn.Write(p[:left])
	}
	c.Conn.Close()
	return n, errCut
}

// sidesFunc runs one protocol between the two ends of a connection and
// returns each side's error.
type sidesFunc func(ctx context.Context, srv, cli *wire.Conn) (serr, cerr error)

// checkDisconnects measures each side's bytes in a complete run of run,
// then cuts either side's connection at several fractions of them over
// both transports: both sides must return errors, neither by waiting for
// the deadline.
func checkDisconnects(t *testing.T, run sidesFunc) {
	t.Helper()
	srv, cli := connPair(t, "pipe")
	if serr, cerr := run(testCtx(t), srv, cli); serr != nil || cerr != nil {
		t.Fatalf("server: %v; client: %v", serr, cerr)
	}
	total := map[string]int64{"server": srv.Stats().BytesSent, "client": cli.Stats().BytesSent}
	for _, transport := range []string{"pipe", "tcp"} {
		for _, side := range []string{"server", "client"} {
			for _, frac := range []float64{0.001, 0.05, 0.3, 0.6, 0.9, 0.999} {
				limit := int64(frac * float64(total[side]))
				t.Run(fmt.Sprintf("%s/%s/%d", transport, side, limit), func(t *testing.T) {
					cutRun(t, transport, side, limit, run)
				})
			}
		}
	}
}

// cutRun runs run with side's connection cut after limit bytes.
func cutRun(t *testing.T, transport, side string, limit int64, run sidesFunc) {
	a, b := nettest.Pair(t, transport)
	if side == "server" {
		a = &cutConn{Conn: a, limit: limit}
	} else {
		b = &cutConn{Conn: b, limit: limit}
	}
	params := []byte("prunestep-test")
	srv, _ := wire.NewConn(a, wire.Config{Role: wire.RoleServer, Version: 1, Params: params})
	cli, _ := wire.NewConn(b, wire.Config{Role: wire.RoleClient, Version: 1, Params: params})
	defer srv.Close()
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	serr, cerr := run(ctx, srv, cli)
	if serr == nil || cerr == nil {
		t.Errorf("server: %v; client: %v", serr, cerr)
	}
	if errors.Is(serr, context.DeadlineExceeded) || errors.Is(cerr, context.DeadlineExceeded) {
		t.Errorf("a side waited for the deadline: server: %v; client: %v", serr, cerr)
	}
	t.Logf("%v\nserver: %v\nclient: %v", time.Since(start).Round(time.Millisecond), serr, cerr)
}
