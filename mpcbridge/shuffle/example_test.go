package shuffle_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"

	"github.com/cipherprune/cipherprune/mpcbridge/shuffle"
)

// Two parties hold additive shares (mod 2^64) of three rows. The permuter
// moves row i to position perm[i]; both end with fresh shares of the moved
// rows, and the assistant learns nothing about perm.
func Example() {
	rows := [][]uint64{{1, 10}, {2, 20}, {3, 30}}
	perm := []int{2, 0, 1} // row 0 -> 2, row 1 -> 0, row 2 -> 1

	// Split the rows into shares.
	r := rand.New(rand.NewPCG(1, 2))
	p, q := make([][]uint64, len(rows)), make([][]uint64, len(rows))
	for i, row := range rows {
		p[i], q[i] = make([]uint64, len(row)), make([]uint64, len(row))
		for k, x := range row {
			p[i][k] = r.Uint64()
			q[i][k] = x - p[i][k]
		}
	}

	pc, qc := net.Pipe()
	defer pc.Close()
	defer qc.Close()
	type result struct {
		share [][]uint64
		err   error
	}
	done := make(chan result, 1)
	go func() {
		share, err := shuffle.Assist(context.Background(), qc, q, nil)
		done <- result{share, err}
	}()
	bp, err := shuffle.Permute(context.Background(), pc, perm, p, nil)
	if err != nil {
		panic(err)
	}
	bq := <-done
	if bq.err != nil {
		panic(bq.err)
	}
	for i := range bp {
		fmt.Println(bp[i][0]+bq.share[i][0], bp[i][1]+bq.share[i][1])
	}
	// Output:
	// 2 20
	// 3 30
	// 1 10
}

// Both parties shuffle their shared rows by σ = π_2 ∘ π_1, each drawing one
// factor; neither learns σ, but the rows are all still there.
func ExampleShuffle() {
	n := 4
	s, c := make([][]uint64, n), make([][]uint64, n)
	for i := range s {
		s[i], c[i] = []uint64{uint64(100 + i)}, []uint64{0} // c holds zero shares
	}
	sc, cc := net.Pipe()
	defer sc.Close()
	defer cc.Close()
	done := make(chan error, 1)
	var cs [][]uint64
	go func() {
		var err error
		cs, err = shuffle.Shuffle(context.Background(), cc, shuffle.Second, c, nil)
		done <- err
	}()
	ss, err := shuffle.Shuffle(context.Background(), sc, shuffle.First, s, nil)
	if err != nil {
		panic(err)
	}
	if err := <-done; err != nil {
		panic(err)
	}
	sum := uint64(0)
	for i := range ss {
		sum += ss[i][0] + cs[i][0]
	}
	fmt.Println(len(ss), "rows, sum", sum)
	// Output: 4 rows, sum 406
}
