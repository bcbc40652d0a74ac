package elementwise

import (
	"encoding/binary"
	"math/bits"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/cipherprune/cipherprune/models/approx"
	"github.com/cipherprune/cipherprune/mpcbridge/wire"
)

// c1Limb0 returns limb 0 (NTT domain) of the c1 of the masked ciphertext in
// one output entry (mpcbridge/share's payload: header, ciphertext head, c0,
// c1, each limb packed with ceil(log2 q_i) bits per coefficient, least
// significant bit first).
func c1Limb0(p Parameters, entry []byte) []uint64 {
	pb := p.polyBytes(p.MaskLevel())
	src := entry[shareHeader+maskedHead+pb:]
	buf := make([]byte, len(src)+16)
	copy(buf, src)
	q := p.Params().Q()[0]
	w := uint(bits.Len64(q - 1))
	out := make([]uint64, p.Params().N())
	for j := range out {
		off := j * int(w)
		b, sh := off>>3, uint(off&7)
		v := binary.LittleEndian.Uint64(buf[b:]) >> sh
		if sh+w > 64 {
			v |= uint64(buf[b+8]) << (64 - sh)
		}
		out[j] = v & (1<<w - 1)
	}
	return out
}

// TestRerandomization replays one honest client's messages to the server
// twice and compares the c1 of every output ciphertext. Without the fresh
// public-key encryption of zero, c1 is a deterministic function of the
// client's own c1 (the evaluation and relinearization are deterministic),
// so the two runs send the same c1 and the client could solve for what the
// server computed; with one encryption of zero shared by the ciphertexts
// of a call, the runs differ by the same polynomial in every ciphertext.
// Both fail here. (The re-randomization is mpcbridge/share's
// Server.EncToShares; this test guards the composition, whatever path the
// outputs take.)
func TestRerandomization(t *testing.T) {
	tc := newTestContext(t, testLiteral)
	reg := trainedRegistry(t)
	p := tc.p
	r := rand.New(rand.NewPCG(41, 42))
	n := 3*p.Slots() - 5
	lo, hi := inputRange(reg, approx.GELU)
	xa, xb := splitShares(r, fixed(p, uniform(r, n, lo, hi)), 82)
	l, err := p.PolyLevel(reg, approx.GELU, approx.High)
	if err != nil {
		t.Fatal(err)
	}
	cli, err := NewClient(p, tc.sk, 2)
	if err != nil {
		t.Fatal(err)
	}
	// The server's first message, the encoding factor of GELU's folded
	// change of basis, then the client's inputs.
	scales := p.appendScales(nil, opPoly, []int{n}, [][]float64{{p.plan(reg.Recipe(approx.GELU, approx.High)).scalar}})
	rc := replay(map[wire.Type][][]byte{MsgScales: {scales}})
	_, _ = cli.Poly(bg(), rc, l, xa) // fails at the missing answer
	inputs := rc.sent
	if len(inputs[MsgInput]) == 0 {
		t.Fatal("no client message recorded")
	}
	k := p.Ciphertexts(n)
	serve := func() [][]uint64 {
		// One worker: every output of the call goes through the same
		// conversion server, so a server that reuses its encryption of
		// zero reuses it across all of them.
		srv, err := NewServer(p, tc.pk, tc.rlk, reg, 1)
		if err != nil {
			t.Fatal(err)
		}
		rs := replay(inputs)
		if _, err := srv.Poly(bg(), rs, approx.GELU, approx.High, xb); err != nil {
			t.Fatal(err)
		}
		var c1s [][]uint64
		for m, msg := range rs.sent[MsgOutput] {
			count := min(p.Chunk(), k-m*p.Chunk())
			entries, err := p.decodeMessage(msg, one(opPoly, n, m*p.Chunk(), count, p.MaskLevel()))
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range entries {
				c1s = append(c1s, c1Limb0(p, e))
			}
		}
		if len(c1s) != k {
			t.Fatalf("%d output ciphertexts, want %d", len(c1s), k)
		}
		return c1s
	}
	a, b := serve(), serve()
	q := p.Params().Q()[0]
	diffs := make([][]uint64, k)
	for i := range diffs {
		diffs[i] = make([]uint64, len(a[i]))
		zero := true
		for j := range a[i] {
			diffs[i][j] = (a[i][j] + q - b[i][j]) % q
			zero = zero && diffs[i][j] == 0
		}
		if zero {
			t.Fatalf("ciphertext %d: the same c1 in two runs on the same input: the server sends a deterministic function of the client's ciphertexts (no fresh re-randomization)", i)
		}
		for j := 0; j < i; j++ {
			if slices.Equal(diffs[i], diffs[j]) {
				t.Fatalf("ciphertexts %d and %d: their c1 change by the same polynomial between runs: one encryption of zero re-randomizes both", j, i)
			}
		}
	}
}
