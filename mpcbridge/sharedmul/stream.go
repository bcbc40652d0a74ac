package sharedmul

import (
	"context"
	"errors"

	"github.com/cipherprune/cipherprune/ckks/polymat"
)

// produceSend runs produce(w, k) for k in [0, count) on workers goroutines
// and sends the messages in the order of k, each as soon as it and those
// before it are ready, so that the sending overlaps the work. It returns
// the first error and leaves no goroutine behind.
func produceSend(ctx context.Context, workers, count int, produce func(w, k int) ([]byte, error), send func(ctx context.Context, b []byte) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ready := make([]chan []byte, count)
	for k := range ready {
		ready[k] = make(chan []byte, 1)
	}
	var perr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		perr = polymat.Parallel(ctx, workers, count, func(w, k int) error {
			b, err := produce(w, k)
			if err != nil {
				return err
			}
			ready[k] <- b
			return nil
		})
	}()
	for k := 0; k < count; k++ {
		var b []byte
		select {
		case b = <-ready[k]:
		case <-done:
			select {
			case b = <-ready[k]:
			default:
				if perr == nil {
					perr = errors.New("a message was not produced")
				}
				return perr
			}
		}
		if err := send(ctx, b); err != nil {
			cancel()
			<-done
			return err
		}
	}
	<-done
	return perr
}

// recvProcess receives count messages in order with recv and runs
// process(w, k, b) on each on workers goroutines as they arrive, so that
// the work overlaps the receiving. It returns the first error and leaves
// no goroutine behind.
func recvProcess(ctx context.Context, workers, count int, recv func(ctx context.Context) ([]byte, error), process func(w, k int, b []byte) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ready := make([]chan []byte, count)
	for k := range ready {
		ready[k] = make(chan []byte, 1)
	}
	var perr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		perr = polymat.Parallel(ctx, workers, count, func(w, k int) error {
			select {
			case b := <-ready[k]:
				return process(w, k, b)
			case <-ctx.Done():
				return ctx.Err()
			}
		})
		if perr != nil {
			cancel() // stops the receiving below
		}
	}()
	for k := 0; k < count; k++ {
		b, err := recv(ctx)
		if err != nil {
			cancel()
			<-done
			if perr != nil && !errors.Is(perr, context.Canceled) {
				return perr // the cause, not the receive it cut short
			}
			return err
		}
		ready[k] <- b
	}
	<-done
	return perr
}
