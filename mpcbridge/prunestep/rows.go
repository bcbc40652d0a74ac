package prunestep

import (
	"github.com/cipherprune/cipherprune/mpcbridge/shuffle"
)

// shuffleRing is the ring of a step's shuffle: shares modulo 2^128, so that
// the conversion back to integer shares can use masks wider than 64 bits.
const shuffleRing = shuffle.Ring128

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
