package prunestep

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"

	"github.com/cipherprune/cipherprune/ckks"
	"github.com/cipherprune/cipherprune/mpcbridge/internal/nettest"
	"github.com/cipherprune/cipherprune/mpcbridge/wire"
)

// TestReveal opens three slots of a ciphertext over loopback TCP: the
// client gets them to 2^-F, and the only bytes after the conversion are the
// server's shares of those three slots.
func TestReveal(t *testing.T) {
	defer noLeaks(t)()
	tc := newTestContext(t, ckks.InsecureTest11, defaultLiteral)
	r := rand.New(rand.NewPCG(9, 9))
	v := make([]float64, tc.params.MaxSlots())
	for i := range v {
		v[i] = 8 * (2*r.Float64() - 1)
	}
	ct, err := tc.he.EncryptVector(v, 3)
	if err != nil {
		t.Fatal(err)
	}
	slots := []int{0, 17, 512}
	srv, cli := connPair(t, "tcp")
	ctx := testCtx(t)
	var got []float64
	var gotSlots []int
	serr, cerr := nettest.Both(func() error {
		return tc.server.Reveal(ctx, srv, ct, slots)
	}, func() error {
		var err error
		got, gotSlots, err = tc.client.Reveal(ctx, cli)
		return err
	})
	if serr != nil || cerr != nil {
		t.Fatalf("server: %v; client: %v", serr, cerr)
	}
	tol := 2 * math.Ldexp(1, -tc.p.FracBits())
	for i, j := range gotSlots {
		if j != slots[i] {
			t.Fatalf("slots %v, want %v", gotSlots, slots)
		}
		if d := math.Abs(got[i] - v[j]); d > tol {
			t.Errorf("slot %d: revealed %g, want %g (error %g > %g)", j, got[i], v[j], d, tol)
		}
	}
}

// errorSetup returns what the reveal error tests share: a test context, a
// ciphertext, a pipe's two ends and a bounded context.
func errorSetup(t *testing.T) (*testContext, *rlwe.Ciphertext, *wire.Conn, *wire.Conn, context.Context) {
	t.Helper()
	tc := newTestContext(t, ckks.InsecureTest11, defaultLiteral)
	ct, err := tc.he.EncryptVector([]float64{1}, 3)
	if err != nil {
		t.Fatal(err)
	}
	srv, cli := connPair(t, "pipe")
	return tc, ct, srv, cli, testCtx(t)
}

// TestRevealErrors: bad slot lists are refused before any I/O, and a
// client whose server sends something else than a reveal fails clearly.
func TestRevealErrors(t *testing.T) {
	defer noLeaks(t)()
	tc, ct, srv, cli, ctx := errorSetup(t)
	for name, slots := range map[string][]int{
		"none":     nil,
		"repeated": {3, 3},
		"negative": {-1},
		"too big":  {tc.params.MaxSlots()},
	} {
		if err := tc.server.Reveal(ctx, srv, ct, slots); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if s := srv.Stats(); s.BytesSent != 0 {
		t.Errorf("refused reveals sent %d bytes", s.BytesSent)
	}
	serr, cerr := nettest.Both(func() error {
		return tc.server.Done(ctx, srv)
	}, func() error {
		_, _, err := tc.client.Reveal(ctx, cli)
		return err
	})
	if serr != nil || cerr == nil {
		t.Errorf("Done answered by Reveal: server %v, client %v", serr, cerr)
	}
}

// TestRevealLabel opens [x_1 > x_0] for pairs of slots over loopback TCP,
// including differences far below the logits' size and a tie, and checks
// that the server's side learns nothing it could return.
func TestRevealLabel(t *testing.T) {
	defer noLeaks(t)()
	tc := newTestContext(t, ckks.InsecureTest11, defaultLiteral)
	for _, c := range []struct {
		x0, x1 float64
		want   int
	}{
		{-3.24, 3.24, 1},
		{1.5, -0.5, 0},
		{0.25, 0.25 + 1.0/256, 1},
		{7.9, 7.9 - 1.0/256, 0},
		{-6, -6, 0}, // a tie: label 0, as the first maximum
	} {
		v := make([]float64, tc.params.MaxSlots())
		v[0], v[64] = c.x0, c.x1
		ct, err := tc.he.EncryptVector(v, 3)
		if err != nil {
			t.Fatal(err)
		}
		srv, cli := connPair(t, "tcp")
		ctx := testCtx(t)
		var label int
		var slots []int
		serr, cerr := nettest.Both(func() error {
			return tc.server.RevealLabel(ctx, srv, ct, []int{0, 64})
		}, func() error {
			var err error
			label, slots, err = tc.client.RevealLabel(ctx, cli)
			return err
		})
		if serr != nil || cerr != nil {
			t.Fatalf("(%g, %g): server: %v; client: %v", c.x0, c.x1, serr, cerr)
		}
		if label != c.want || len(slots) != 2 || slots[0] != 0 || slots[1] != 64 {
			t.Errorf("(%g, %g): label %d, slots %v; want %d, [0 64]", c.x0, c.x1, label, slots, c.want)
		}
		ss, cs := srv.Stats(), cli.Stats()
		t.Logf("(%g, %g): label %d; server sent %d B, client %d B, %d rounds", c.x0, c.x1, label, ss.BytesSent, cs.BytesSent, ss.Rounds)
	}
}

// TestRevealLabelErrors: anything but two distinct slots is refused before
// any I/O, and a client expecting a label fails clearly on another request.
func TestRevealLabelErrors(t *testing.T) {
	defer noLeaks(t)()
	tc, ct, srv, cli, ctx := errorSetup(t)
	for name, slots := range map[string][]int{
		"one":      {0},
		"three":    {0, 1, 2},
		"repeated": {3, 3},
		"too big":  {0, tc.params.MaxSlots()},
	} {
		if err := tc.server.RevealLabel(ctx, srv, ct, slots); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if s := srv.Stats(); s.BytesSent != 0 {
		t.Errorf("refused reveals sent %d bytes", s.BytesSent)
	}
	serr, cerr := nettest.Both(func() error {
		return tc.server.Reveal(ctx, srv, ct, []int{0, 1})
	}, func() error {
		_, _, err := tc.client.RevealLabel(ctx, cli)
		return err
	})
	if !errors.Is(cerr, ErrMalformed) || !strings.Contains(cerr.Error(), "got a reveal request") {
		t.Errorf("Reveal answered by RevealLabel: server %v, client %v", serr, cerr)
	}
}
