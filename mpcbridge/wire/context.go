package wire

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"
)

// aLongTimeAgo is a deadline in the past: setting it makes blocked I/O
// return at once.
var aLongTimeAgo = time.Unix(1, 0)

// deadline governs the deadline of one direction of a net.Conn. Three
// things set it: the context of the call in progress (bind), a grace period
// while aborting (reset), and the idle timeout, which renew restarts before
// each read or write of the connection. The deadline in force is the
// earliest of the context's (or grace period's) and the idle timeout's.
// All changes go through deadline, so that a renewal can never undo a
// cancellation.
type deadline struct {
	set  func(time.Time) error // the direction's SetDeadline method
	idle time.Duration         // Config.IdleTimeout; zero: none

	mu      sync.Mutex
	hard    time.Time // the context's deadline or the grace period's end; zero: none
	stopped bool      // cancelled: the deadline stays in the past until the next reset
}

// bind makes ctx govern the direction: the deadline is ctx's (or none),
// shortened by the idle timeout, and cancelling ctx sets a deadline in the
// past, which unblocks the I/O. The caller must call release when its I/O
// is done; release waits for a cancellation already under way, so that its
// deadline cannot land on a later call. bind fails without touching the
// connection if ctx is done.
func (d *deadline) bind(ctx context.Context) (release func(), err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	hard, _ := ctx.Deadline()
	if err := d.reset(hard); err != nil {
		return nil, fmt.Errorf("cannot set deadline: %w", err)
	}
	if ctx.Done() == nil {
		return func() {}, nil
	}
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		d.stop()
		close(fired)
	})
	return func() {
		if !stop() {
			<-fired
		}
	}, nil
}

// reset sets the hard deadline (zero: none) and applies it with a fresh
// idle timeout.
func (d *deadline) reset(hard time.Time) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.hard, d.stopped = hard, false
	return d.applyLocked()
}

// stop sets a deadline in the past, until the next reset.
func (d *deadline) stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stopped = true
	_ = d.set(aLongTimeAgo)
}

// renew restarts the idle timeout, if there is one, unless the direction
// was stopped. Call it before each read or write of the connection.
func (d *deadline) renew() error {
	if d.idle <= 0 {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stopped {
		return nil
	}
	return d.applyLocked()
}

// applyLocked sets the earliest of the hard deadline and the idle
// timeout's end. The caller holds mu.
func (d *deadline) applyLocked() error {
	t := d.hard
	if d.idle > 0 {
		if end := time.Now().Add(d.idle); t.IsZero() || end.Before(t) {
			t = end
		}
	}
	return d.set(t)
}

// ctxError turns a timeout caused by bind into ctx's error, so that callers
// can test for context.Canceled and context.DeadlineExceeded. Other errors
// are returned as they are.
func ctxError(ctx context.Context, err error) error {
	if err == nil || !isTimeout(err) {
		return err
	}
	if cerr := ctxTimeout(ctx); cerr != nil {
		return cerr
	}
	return err
}

// ctxTimeout returns ctx's error if ctx is done or its deadline has passed,
// and nil otherwise.
func ctxTimeout(ctx context.Context) error {
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	// The connection's timer can fire a moment before the context's.
	if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
		return context.DeadlineExceeded
	}
	return nil
}

func isTimeout(err error) bool {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
