package elementwise

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/cipherprune/cipherprune/mpcbridge/share"
)

// pipeline processes the ciphertexts [0, k) of one call in messages of
// chunk ciphertexts: recv (if set) makes message m's ciphertexts ready,
// in order, on one goroutine (the receiving one); work runs on the
// workers for every ready ciphertext, each worker with its own state;
// send (if set) runs in order for message m once all its ciphertexts are
// done, on the calling goroutine. So the server receives, computes and
// sends at the same time, and a party never waits for a whole call's
// ciphertexts before it starts. The first error cancels everything.
type pipeline struct {
	k, chunk, workers int
	recv              func(ctx context.Context, m, first, count int) error
	work              func(ctx context.Context, w, t int) error
	send              func(ctx context.Context, m, first, count int) error
}

// messages returns the number of messages of the call.
func (pl *pipeline) messages() int { return (pl.k + pl.chunk - 1) / pl.chunk }

// span returns the first ciphertext and the count of message m.
func (pl *pipeline) span(m int) (first, count int) {
	first = m * pl.chunk
	return first, min(pl.chunk, pl.k-first)
}

func (pl *pipeline) run(parent context.Context) error {
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)
	msgs := pl.messages()
	remaining := make([]atomic.Int32, msgs)
	done := make([]chan struct{}, msgs)
	for m := range done {
		_, c := pl.span(m)
		remaining[m].Store(int32(c))
		done[m] = make(chan struct{})
	}
	ready := make(chan int, pl.k)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(ready)
		for m := 0; m < msgs; m++ {
			first, count := pl.span(m)
			if pl.recv != nil {
				if err := pl.recv(ctx, m, first, count); err != nil {
					cancel(err)
					return
				}
			}
			for t := first; t < first+count; t++ {
				ready <- t
			}
		}
	}()
	for w := 0; w < max(1, pl.workers); w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for t := range ready {
				if ctx.Err() != nil {
					continue // drain
				}
				if err := pl.work(ctx, w, t); err != nil {
					cancel(err)
					continue
				}
				if m := t / pl.chunk; remaining[m].Add(-1) == 0 {
					close(done[m])
				}
			}
		}(w)
	}
	for m := 0; m < msgs; m++ {
		select {
		case <-done[m]:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		if pl.send != nil {
			first, count := pl.span(m)
			if err := pl.send(ctx, m, first, count); err != nil {
				cancel(err)
				break
			}
		}
	}
	wg.Wait()
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	return nil
}

// piece returns the values of ciphertext t: x[t·slots, min((t+1)·slots,
// len(x))), densely packed.
func piece(x share.Vector, t, slots int) share.Vector {
	return x[t*slots : min((t+1)*slots, len(x))]
}
