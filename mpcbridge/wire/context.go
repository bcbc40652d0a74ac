package wire

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"time"
)

// aLongTimeAgo is a deadline in the past: setting it makes blocked I/O
// return at once.
var aLongTimeAgo = time.Unix(1, 0)

// bind makes ctx govern I/O in one direction of a net.Conn, given that
// direction's SetDeadline method: the deadline is ctx's (or none), and
// cancelling ctx sets a deadline in the past, which unblocks the I/O. The
// caller must call release when its I/O is done; release waits for a
// cancellation already under way, so that its deadline cannot land on a
// later call. bind fails without touching the connection if ctx is done.
func bind(ctx context.Context, setDeadline func(time.Time) error) (release func(), err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	d, _ := ctx.Deadline()
	if err := setDeadline(d); err != nil {
		return nil, fmt.Errorf("cannot set deadline: %w", err)
	}
	if ctx.Done() == nil {
		return func() {}, nil
	}
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		_ = setDeadline(aLongTimeAgo)
		close(fired)
	})
	return func() {
		if !stop() {
			<-fired
		}
	}, nil
}

// ctxError turns a timeout caused by bind into ctx's error, so that callers
// can test for context.Canceled and context.DeadlineExceeded. Other errors
// are returned as they are.
func ctxError(ctx context.Context, err error) error {
	if err == nil || !isTimeout(err) {
		return err
	}
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	// The connection's timer can fire a moment before the context's.
	if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
		return context.DeadlineExceeded
	}
	return err
}

func isTimeout(err error) bool {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
