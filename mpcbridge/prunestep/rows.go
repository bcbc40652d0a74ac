package prunestep

import (
	"fmt"

	"github.com/cipherprune/cipherprune/ckks"
	"github.com/cipherprune/cipherprune/mpcbridge/share"
	"github.com/cipherprune/cipherprune/mpcbridge/shuffle"
)

// checkVectors checks that a party's shares of one batch have the shape of
// lay: NumCts feature vectors and the score vector, Slots values each.
func checkVectors(lay ckks.Layout, vecs []share.Vector) error {
	if len(vecs) != lay.NumCts()+1 {
		return fmt.Errorf("%d share vectors for a layout of %d ciphertexts and the scores", len(vecs), lay.NumCts())
	}
	for i, v := range vecs {
		if len(v) != lay.Slots {
			return fmt.Errorf("share vector %d has %d values, want %d slots", i, len(v), lay.Slots)
		}
	}
	return nil
}

// slotOf returns the ciphertext and slot of entry (row i, column j) in lay:
// column j is block j mod ColsPerCt of ciphertext j / ColsPerCt, row i is
// offset i of the block.
func slotOf(lay ckks.Layout, i, j int) (ct, slot int) {
	c := lay.ColsPerCt()
	return j / c, (j%c)*lay.Block + i
}

// shuffleRing is the ring of a step's shuffle: shares modulo 2^128, so that
// the conversion back to integer shares can use masks wider than 64 bits.
const shuffleRing = shuffle.Ring128

// slotsToRows returns a party's shares of the batch vecs (checked by
// checkVectors) as the Rows of layer: the n x d features row-major, read
// from the column blocks of lay, and the n scores, slot i (offset i of
// block 0) of the score vector.
func slotsToRows(lay ckks.Layout, layer int, vecs []share.Vector) Rows {
	n, d := lay.Rows, lay.Cols
	x := make(share.Vector, n*d)
	for i := 0; i < n; i++ {
		for j := 0; j < d; j++ {
			k, s := slotOf(lay, i, j)
			x[i*d+j] = vecs[k][s]
		}
	}
	scores := append(share.Vector(nil), vecs[len(vecs)-1][:n]...)
	return Rows{Layer: layer, X: x, Cols: d, Scores: scores}
}

// ringRows returns the ring shares (mod 2^128, shuffle.Ring128: two words
// per value, low word first) of rows 1..n-1 of in, each d+1 values: the d
// features and the score. Integer shares reduce to ring shares directly
// (a + b = v over Z gives a + b = v mod 2^128). With ties, each row has
// one more value, its tie order for the top-K comparison: i-1 for row i,
// the server's share (server) or the client's (0); the shuffle hides it like
// the rest of the row.
func ringRows(in Rows, ties, server bool) [][]uint64 {
	n, d := in.Len(), in.Cols
	w := 2 * (d + 1)
	if ties {
		w += 2
	}
	flat := make([]uint64, (n-1)*w)
	rows := make([][]uint64, n-1)
	for i := 1; i < n; i++ {
		row := flat[(i-1)*w : i*w : i*w]
		for j, x := range in.Row(i) {
			row[2*j], row[2*j+1] = x.Lo, x.Hi
		}
		row[2*d], row[2*d+1] = in.Scores[i].Lo, in.Scores[i].Hi
		if ties && server {
			row[2*d+2] = uint64(i - 1)
		}
		rows[i-1] = row
	}
	return rows
}

// scoreColumn returns the scores' ring shares modulo 2^64 (the low words)
// of shuffled ring rows of d+1 values.
func scoreColumn(rows [][]uint64, d int) []uint64 {
	out := make([]uint64, len(rows))
	for i, r := range rows {
		out[i] = r[2*d]
	}
	return out
}

// tieColumn returns the tie orders' ring shares modulo 2^64 of shuffled
// ring rows with ties (ringRows).
func tieColumn(rows [][]uint64, d int) []uint64 {
	out := make([]uint64, len(rows))
	for i, r := range rows {
		out[i] = r[2*d+2]
	}
	return out
}

// keptOrder returns the shuffled rows kept, high-degree ones first, each
// group in shuffled order, and the number of high-degree rows among them.
func keptOrder(keep, high []bool) (order []int, nHigh int) {
	for i := range keep {
		if keep[i] && high[i] {
			order = append(order, i)
		}
	}
	nHigh = len(order)
	for i := range keep {
		if keep[i] && !high[i] {
			order = append(order, i)
		}
	}
	return order, nHigh
}

// packRows returns the share vectors of the next layer's layout lay (Rows =
// the kept count) holding rows[r] at offset r: NumCts vectors of Slots
// integer shares, zero outside the matrix.
func packRows(lay ckks.Layout, rows [][]share.Int128) []share.Vector {
	out := make([]share.Vector, lay.NumCts())
	for k := range out {
		out[k] = make(share.Vector, lay.Slots)
	}
	for r, row := range rows {
		for j, x := range row {
			k, s := slotOf(lay, r, j)
			out[k][s] = x
		}
	}
	return out
}
