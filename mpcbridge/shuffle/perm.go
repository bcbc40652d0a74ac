package shuffle

import (
	crand "crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"math/bits"
)

// RandomPermutation returns a uniformly random permutation of 0..n-1 drawn
// from rnd (crypto/rand when rnd is nil) by a Fisher-Yates shuffle. Each
// index is drawn by rejection sampling (8 bytes from rnd, masked to the
// bound's bit length, redrawn if too large), so there is no modulo bias.
// The result is in the package's convention: item i goes to position
// perm[i] (see ApplyPermutation).
func RandomPermutation(n int, rnd io.Reader) ([]int, error) {
	if n < 0 {
		return nil, fmt.Errorf("cannot draw a permutation: negative size %d", n)
	}
	if rnd == nil {
		rnd = crand.Reader
	}
	perm := make([]int, n)
	for i := range perm {
		perm[i] = i
	}
	var buf [8]byte
	for i := n - 1; i > 0; i-- {
		bound := uint64(i) + 1
		mask := uint64(1)<<uint(bits.Len64(uint64(i))) - 1
		for {
			if _, err := io.ReadFull(rnd, buf[:]); err != nil {
				return nil, fmt.Errorf("cannot draw a permutation: %w", err)
			}
			if x := binary.LittleEndian.Uint64(buf[:]) & mask; x < bound {
				perm[i], perm[x] = perm[x], perm[i]
				break
			}
		}
	}
	return perm, nil
}

// ApplyPermutation returns the rows moved by perm: out[perm[i]] = rows[i].
// This is the convention of the whole package (Permute's output shares are
// shares of ApplyPermutation(perm, A_P + A_Q)). The rows are copied; perm
// must be a permutation of 0..len(rows)-1 (it panics otherwise).
func ApplyPermutation(perm []int, rows [][]uint64) [][]uint64 {
	if err := checkPerm(perm); err != nil || len(perm) != len(rows) {
		panic(fmt.Sprintf("shuffle: ApplyPermutation: invalid permutation of %d rows", len(rows)))
	}
	out := make([][]uint64, len(rows))
	for i, j := range perm {
		out[j] = append([]uint64(nil), rows[i]...)
	}
	return out
}

// checkPerm reports whether perm is a permutation of 0..len(perm)-1.
func checkPerm(perm []int) error {
	seen := make([]bool, len(perm))
	for i, j := range perm {
		if j < 0 || j >= len(perm) {
			return fmt.Errorf("perm[%d] = %d is out of range [0, %d)", i, j, len(perm))
		}
		if seen[j] {
			return fmt.Errorf("perm[%d] = %d repeats an earlier entry", i, j)
		}
		seen[j] = true
	}
	return nil
}

// checkShare returns the width of a share matrix whose rows must all have
// the same length; n < 0 means any number of rows.
func checkShare(share [][]uint64, n int) (int, error) {
	if n >= 0 && len(share) != n {
		return 0, fmt.Errorf("share has %d rows for a permutation of %d", len(share), n)
	}
	if len(share) == 0 {
		return 0, nil
	}
	w := len(share[0])
	for i, row := range share {
		if len(row) != w {
			return 0, fmt.Errorf("share row %d has %d columns, row 0 has %d", i, len(row), w)
		}
	}
	return w, nil
}
