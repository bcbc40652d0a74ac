package shuffle

import (
	"errors"
	"fmt"
	"math/big"
	"math/rand/v2"
	"testing"

	"github.com/cipherprune/cipherprune/mpcbridge/internal/nettest"
)

// big128 returns the value mod 2^128 held by the word pair v[k], v[k+1].
func big128(v []uint64, k int) *big.Int {
	x := new(big.Int).SetUint64(v[k+1])
	x.Lsh(x, 64)
	return x.Or(x, new(big.Int).SetUint64(v[k]))
}

var mod128 = new(big.Int).Lsh(big.NewInt(1), 128)

// edgeWords returns n words mixing uniform ones with the carry edges 0,
// 1, 2^63 and 2^64 - 1.
func edgeWords(r *rand.Rand, n int) []uint64 {
	edges := []uint64{0, 1, 1 << 63, ^uint64(0), ^uint64(0) - 1}
	v := make([]uint64, n)
	for i := range v {
		if r.IntN(2) == 0 {
			v[i] = edges[r.IntN(len(edges))]
		} else {
			v[i] = r.Uint64()
		}
	}
	return v
}

// TestRing128Arithmetic checks every Ring128 operation against math/big
// modulo 2^128, on words that hit every carry and borrow.
func TestRing128Arithmetic(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	const w = 400
	x, y, k, e := edgeWords(r, w), edgeWords(r, w), edgeWords(r, w), edgeWords(r, w)
	mod := func(z *big.Int) *big.Int { return z.Mod(z, mod128) }
	check := func(name string, got []uint64, want func(i int) *big.Int) {
		t.Helper()
		for i := 0; i < w; i += 2 {
			if g, wv := big128(got, i), want(i); g.Cmp(wv) != 0 {
				t.Fatalf("%s: value %d: got %#x, want %#x", name, i/2, g, wv)
			}
		}
	}
	sum := make([]uint64, w)
	Ring128.add(sum, x, y)
	check("add", sum, func(i int) *big.Int { return mod(new(big.Int).Add(big128(x, i), big128(y, i))) })
	diff := make([]uint64, w)
	Ring128.sub(diff, x, y)
	check("sub", diff, func(i int) *big.Int { return mod(new(big.Int).Sub(big128(x, i), big128(y, i))) })
	neg := append([]uint64(nil), x...)
	Ring128.neg(neg)
	check("neg", neg, func(i int) *big.Int { return mod(new(big.Int).Neg(big128(x, i))) })

	for _, bit := range []bool{false, true} {
		t.Run(fmt.Sprintf("switch/s=%v", bit), func(t *testing.T) {
			var sel uint64
			if bit {
				sel = ^uint64(0)
			}
			ma, mb := append([]uint64(nil), x...), append([]uint64(nil), y...)
			Ring128.permuterSwitch(ma, mb, k, e, sel)
			check("c", ma, func(i int) *big.Int {
				c := new(big.Int).Add(big128(x, i), big128(k, i))
				if bit {
					c = new(big.Int).Add(big128(y, i), big128(k, i))
					c.Add(c, big128(e, i))
				}
				return mod(c)
			})
			check("d", mb, func(i int) *big.Int {
				d := new(big.Int).Add(big128(x, i), big128(y, i))
				return mod(d.Sub(d, big128(ma, i)))
			})
		})
	}
	ra, rb := append([]uint64(nil), x...), append([]uint64(nil), y...)
	corr := make([]uint64, w)
	Ring128.assistantSwitch(ra, rb, k, e, corr)
	check("r_c", ra, func(i int) *big.Int { return mod(new(big.Int).Add(big128(x, i), big128(k, i))) })
	check("r_d", rb, func(i int) *big.Int { return mod(new(big.Int).Sub(big128(y, i), big128(k, i))) })
	check("e", corr, func(i int) *big.Int {
		v := new(big.Int).Add(big128(x, i), big128(k, i))
		v.Sub(v, big128(y, i))
		return mod(v.Sub(v, big128(e, i)))
	})
}

// TestPermuteRing128 checks B_P + B_Q = π(A_P + A_Q) modulo 2^128 on rows
// whose words hit the carries.
func TestPermuteRing128(t *testing.T) {
	defer noLeaks(t)()
	r := rand.New(rand.NewPCG(3, 4))
	cfg := Config{Ring: Ring128}
	for _, c := range []struct{ n, width int }{{1, 2}, {2, 2}, {5, 6}, {64, 4}, {127, 2 * 257}} {
		t.Run(fmt.Sprintf("n=%d/w=%d", c.n, c.width), func(t *testing.T) {
			a, b := nettest.Pair(t, "tcp")
			perm := r.Perm(c.n)
			ap, aq := make([][]uint64, c.n), make([][]uint64, c.n)
			for i := range ap {
				ap[i], aq[i] = edgeWords(r, c.width), edgeWords(r, c.width)
			}
			pr, qr := runPair(testCtx(t), cfg, a, b, perm, ap, aq)
			checkPermutedRing(t, Ring128, perm, ap, aq, pr, qr)
		})
	}
}

// TestShuffleRing128 runs the two-sided shuffle modulo 2^128 and checks
// that the rows come out as a permutation of the inputs.
func TestShuffleRing128(t *testing.T) {
	defer noLeaks(t)()
	r := rand.New(rand.NewPCG(5, 6))
	const n, width = 33, 6
	vals := make([][]uint64, n)
	first, second := make([][]uint64, n), make([][]uint64, n)
	for i := range vals {
		vals[i] = []uint64{uint64(i), 0, ^uint64(0), uint64(i), 1 << 63, ^uint64(0)}
		first[i] = edgeWords(r, width)
		second[i] = make([]uint64, width)
		Ring128.sub(second[i], vals[i], first[i])
	}
	a, b := nettest.Pair(t, "tcp")
	cfg := Config{Ring: Ring128}
	done := make(chan result, 1)
	go func() {
		var res result
		res.out, res.err = cfg.Shuffle(testCtx(t), b, Second, second, nil)
		done <- res
	}()
	fo, ferr := cfg.Shuffle(testCtx(t), a, First, first, nil)
	so := <-done
	if ferr != nil || so.err != nil {
		t.Fatalf("first: %v; second: %v", ferr, so.err)
	}
	seen := make([]bool, n)
	for _, row := range addRowsRing(Ring128, fo, so.out) {
		i := int(row[0])
		if i >= n || seen[i] {
			t.Fatalf("output row %v is not a fresh input row", row)
		}
		if ok, why := equalRows([][]uint64{row}, [][]uint64{vals[i]}); !ok {
			t.Fatalf("row %d: %s", i, why)
		}
		seen[i] = true
	}
}

// TestRingMismatch: parties on different rings fail on both sides with
// ErrMismatch; an odd width on Ring128 or an invalid ring is refused by the
// party that has it (the error says why), and a peer that has neither sees
// ErrPeerAborted.
func TestRingMismatch(t *testing.T) {
	defer noLeaks(t)()
	perm := []int{1, 0, 2}
	tests := []struct {
		name       string
		pcfg, qcfg Config
		width      int
		pErr, qErr error
		pMsg       string
	}{
		{"rings differ", Config{Ring: Ring128}, Config{}, 2, ErrMismatch, ErrMismatch, "modulo"},
		{"odd width", Config{Ring: Ring128}, Config{Ring: Ring128}, 3, nil, nil, "odd"},
		{"invalid ring", Config{Ring: 9}, Config{}, 2, nil, ErrPeerAborted, "invalid ring"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, q := nettest.Pair(t, "pipe")
			done := make(chan result, 1)
			go func() {
				var res result
				res.out, res.err = tc.qcfg.Assist(testCtx(t), q, constRows(3, tc.width, 1), nil)
				done <- res
			}()
			_, perr := tc.pcfg.Permute(testCtx(t), p, perm, constRows(3, tc.width, 2), nil)
			qr := <-done
			if perr == nil || qr.err == nil {
				t.Fatalf("permuter: %v; assistant: %v", perr, qr.err)
			}
			if tc.pErr != nil && !errors.Is(perr, tc.pErr) {
				t.Errorf("permuter: %v, want %v", perr, tc.pErr)
			}
			if tc.qErr != nil && !errors.Is(qr.err, tc.qErr) {
				t.Errorf("assistant: %v, want %v", qr.err, tc.qErr)
			}
			if !errContains(perr, tc.pMsg) {
				t.Errorf("permuter: %v, want it to say %q", perr, tc.pMsg)
			}
		})
	}
}
