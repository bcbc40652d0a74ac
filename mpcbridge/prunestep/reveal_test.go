package prunestep

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/cipherprune/cipherprune/ckks"
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
	serr, cerr := runPair(func() error {
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

// TestRevealErrors: bad slot lists are refused before any I/O, and a
// client whose server sends something else than a reveal fails clearly.
func TestRevealErrors(t *testing.T) {
	defer noLeaks(t)()
	tc := newTestContext(t, ckks.InsecureTest11, defaultLiteral)
	ct, err := tc.he.EncryptVector([]float64{1}, 3)
	if err != nil {
		t.Fatal(err)
	}
	srv, cli := connPair(t, "pipe")
	ctx := testCtx(t)
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
	serr, cerr := runPair(func() error {
		return tc.server.Done(ctx, srv)
	}, func() error {
		_, _, err := tc.client.Reveal(ctx, cli)
		return err
	})
	if serr != nil || cerr == nil {
		t.Errorf("Done answered by Reveal: server %v, client %v", serr, cerr)
	}
}
