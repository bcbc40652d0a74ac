package engine

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime/debug"
	"sync"
	"time"

	"github.com/cipherprune/cipherprune/mpcbridge/wire"
)

// Defaults of the ServerConfig limits that bound what clients, honest or
// not, can make the server hold.
const (
	// DefaultSessionTimeout is the default ServerConfig.SessionTimeout,
	// the bound of one inference. A BERT-base layer at n = 128 takes 23 s on 2 cores
	// (mpcbridge/layers.BenchmarkLayer), so an unpruned inference about 5
	// minutes (extrapolated); attention grows as n², so n = 512 takes a
	// few times longer: an hour leaves a slow machine room.
	DefaultSessionTimeout = time.Hour
	// DefaultHandshakeTimeout is the default ServerConfig.HandshakeTimeout:
	// a handshake is a round trip or two (and TLS's), seconds on any link.
	DefaultHandshakeTimeout = 10 * time.Second
	// DefaultIdleTimeout is the default ServerConfig.IdleTimeout: well
	// above what a client computes between two messages (its keys, its
	// part of a pruning step: seconds at BERT-base sizes).
	DefaultIdleTimeout = 5 * time.Minute
	// DefaultMaxConns is the default ServerConfig.MaxConns. A connection in
	// the handshake holds a few KiB, one past it 128 KiB of buffers, and
	// its message at most twice what the client sent of it.
	DefaultMaxConns = 128
)

// limitLogEvery is how often Serve says, at most, that it is at MaxConns.
const limitLogEvery = time.Minute

// Serve accepts connections on ln and serves each in its own goroutine,
// until ctx ends or ln fails; then it closes ln, waits for the sessions
// in progress (which ctx's end also cancels) and returns. A session's
// failure is logged and never stops the server. Serve holds at most
// ServerConfig.MaxConns connections open: at the limit it accepts no more
// until one closes, and logs so (at most once a minute).
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	var logged time.Time // when Serve last said it was at the limit
	for {
		if !s.takeConnSlot(ctx, &logged) {
			return nil
		}
		nc, err := ln.Accept()
		if err != nil {
			<-s.conns
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			ln.Close()
			return fmt.Errorf("cannot Serve: %w", err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-s.conns }() // after ServeConn has closed nc
			peer := nc.RemoteAddr()
			if err := s.ServeConn(ctx, nc); err != nil {
				s.logf("session %v: %v", peer, err)
			}
		}()
	}
}

// takeConnSlot takes a connection slot, waiting for one to free up if all
// ServerConfig.MaxConns are taken, and reports whether it got one before
// ctx ended. logged is when it last logged that it waits.
func (s *Server) takeConnSlot(ctx context.Context, logged *time.Time) bool {
	select {
	case s.conns <- struct{}{}:
		return true
	default:
	}
	if now := time.Now(); now.Sub(*logged) >= limitLogEvery {
		*logged = now
		s.logf("serve: %d connections open (the MaxConns limit): accepting no more until one closes", s.cfg.MaxConns)
	}
	select {
	case s.conns <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

// ErrBusy is the reason given to a client that arrives when the server
// already serves ServerConfig.MaxSessions sessions.
var ErrBusy = errors.New("engine: server busy")

// ServeConn serves one session on nc and closes it: any number of
// inferences, the client's keys received with the first. It returns nil
// when the client ends the session with MsgClose (Session.Close), and the
// error that ended it otherwise. The handshake must be over within
// ServerConfig.HandshakeTimeout, each inference within SessionTimeout, and
// each next request must come within IdleTimeout of the last report; the
// session holds one of the MaxSessions slots throughout.
// ServerConfig.MaxConns is Serve's, not ServeConn's.
func (s *Server) ServeConn(ctx context.Context, nc net.Conn) (err error) {
	defer nc.Close()
	conn, err := wire.NewConn(nc, s.wireCfg)
	if err != nil {
		return fmt.Errorf("cannot ServeConn: %w", err)
	}
	defer conn.Close()
	if err := s.handshake(ctx, conn); err != nil {
		return fmt.Errorf("cannot ServeConn: %w", err)
	}
	select {
	case s.sem <- struct{}{}:
		defer func() { <-s.sem }()
	default:
		_ = conn.Abort(ctx, fmt.Sprintf("%v: %d sessions in progress, try again later", ErrBusy, s.cfg.MaxSessions))
		return fmt.Errorf("cannot ServeConn: %w", ErrBusy)
	}
	// A panic in a session is a bug, but it must not take the other
	// sessions down with it: report it as this session's error.
	defer func() {
		if r := recover(); r != nil {
			_ = conn.Abort(context.WithoutCancel(ctx), "server internal error")
			err = fmt.Errorf("cannot ServeConn: internal error: %v\n%s", r, debug.Stack())
		}
	}()
	ss := &serverSession{s: s, conn: conn}
	if s.sessionEnd != nil {
		defer s.sessionEnd(ss)
	}
	if err := ss.run(ctx); err != nil {
		return fmt.Errorf("cannot ServeConn: %w", err)
	}
	return nil
}

// handshake runs the wire handshake on conn within
// ServerConfig.HandshakeTimeout.
func (s *Server) handshake(ctx context.Context, conn *wire.Conn) error {
	hctx, cancel := context.WithTimeout(ctx, s.cfg.HandshakeTimeout)
	defer cancel()
	err := conn.Handshake(hctx)
	if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
		return fmt.Errorf("no handshake within %v (the HandshakeTimeout): %w", s.cfg.HandshakeTimeout, err)
	}
	return err
}
