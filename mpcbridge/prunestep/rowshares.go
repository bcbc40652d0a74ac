package prunestep

import (
	"errors"
	"fmt"

	"github.com/cipherprune/cipherprune/mpcbridge/share"
)

// Rows is one party's integer shares of the rows of a pruning step on
// shares (Server.PruneShares, Client.PruneShares): with the peer's shares
// b, a + b = round(2^F·x) over the integers for every entry x, at the
// parameters' F (FracBits).
//
// As an input, X holds the n x Cols hidden state and Scores the n
// importance scores; every share must be below 2^MaxShareBits in
// magnitude, and every value |x| at most 2^B (B = the share parameters'
// LogBound), which the step cannot check: a larger value comes out wrong
// (see the package documentation, "On shares"). As an output, X holds the
// kept rows (CLS first, then the high-degree rows, then the low-degree
// rows) and Scores is nil: the comparisons use up the scores.
type Rows struct {
	// Layer is the encoder layer of the step, public: the server's goes in
	// the request and the client's must equal it.
	Layer int
	// X holds the hidden state's shares, row-major: entry (i, j) at
	// X[i*Cols+j].
	X share.Vector
	// Cols is the hidden dimension d, at least 1.
	Cols int
	// Scores holds the importance scores' shares, one per row (score i for
	// row i; row 0, CLS, is kept whatever its score), at
	// Parameters.ScoreFracBits fraction bits.
	Scores share.Vector
}

// MaxShareBits bounds the shares PruneShares, RevealShares and
// RevealLabelShares take: every share must be below 2^MaxShareBits in
// magnitude, so that the sum of two stays exact in 128-bit arithmetic with
// room to spare. The shares the mpcbridge stages hand over have 87 to 89
// bits; PruneShares returns shares of at most 89 bits (CLS: its input
// shares as they are).
const MaxShareBits = 120

// maxCols bounds Rows.Cols (and the request's column field).
const maxCols = 1 << 30

// Len returns the number of rows, len(X)/Cols (0 without columns); an
// input has as many scores.
func (r Rows) Len() int {
	if r.Cols < 1 {
		return 0
	}
	return len(r.X) / r.Cols
}

// Row returns the shares of row i's features, a sub-slice of X.
func (r Rows) Row(i int) share.Vector { return r.X[i*r.Cols : (i+1)*r.Cols : (i+1)*r.Cols] }

// check checks the shape and the share widths of an input against p. Its
// error holds no share, so it may travel to the peer.
func (r Rows) check(p Parameters) error {
	n := len(r.Scores)
	switch {
	case r.Layer < 0 || r.Layer >= maxLayer:
		return fmt.Errorf("layer %d not in [0, %d)", r.Layer, maxLayer)
	case n < 1 || r.Cols < 1 || r.Cols > maxCols:
		return fmt.Errorf("%d rows of %d columns: want at least one row of 1 to %d columns", n, r.Cols, maxCols)
	case n > p.MaxRows():
		return fmt.Errorf("%d rows exceed the limit of %d", n, p.MaxRows())
	case len(r.X) != n*r.Cols:
		return fmt.Errorf("%d hidden-state shares for %d rows of %d columns", len(r.X), n, r.Cols)
	}
	if err := p.checkConversion(n, r.Cols); err != nil {
		return err
	}
	if err := checkWidths(r.X); err != nil {
		return fmt.Errorf("hidden state: %w", err)
	}
	if err := checkWidths(r.Scores); err != nil {
		return fmt.Errorf("scores: %w", err)
	}
	return nil
}

// errWideShare is the error of a share of MaxShareBits bits or more.
var errWideShare = fmt.Errorf("a share exceeds 2^%d in magnitude", MaxShareBits)

// checkWidths checks that every share of v is below 2^MaxShareBits in
// magnitude.
func checkWidths(v share.Vector) error {
	for _, x := range v {
		if x.BitLen() > MaxShareBits {
			return errWideShare
		}
	}
	return nil
}

// keptRows returns the Rows of the kept rows of a step on in: a copy.
func keptRows(in Rows, kept [][]share.Int128) Rows {
	x := make(share.Vector, 0, len(kept)*in.Cols)
	for _, row := range kept {
		x = append(x, row...)
	}
	return Rows{Layer: in.Layer, X: x, Cols: in.Cols}
}

// errNilConn is the error of a call without a connection.
var errNilConn = errors.New("nil connection")
