package prunestep_test

import (
	"context"
	"fmt"
	"log"
	"math"
	"net"

	"github.com/cipherprune/cipherprune/mpcbridge/prunestep"
	"github.com/cipherprune/cipherprune/mpcbridge/share"
	"github.com/cipherprune/cipherprune/mpcbridge/wire"
)

// exampleParties returns both parties of the example, with |x| <= 2^4
// and the default F = 16.
func exampleParties() (*prunestep.Server, *prunestep.Client) {
	p, err := prunestep.NewParameters(prunestep.ParametersLiteral{Share: share.ParametersLiteral{LogBound: 4}})
	if err != nil {
		log.Fatal(err)
	}
	server, err := prunestep.NewServer(p, nil)
	if err != nil {
		log.Fatal(err)
	}
	client, err := prunestep.NewClient(p, nil)
	if err != nil {
		log.Fatal(err)
	}
	return server, client
}

// exampleConns returns the two ends of a connection (TCP or TLS in a real
// deployment).
func exampleConns() (server, client *wire.Conn) {
	a, b := net.Pipe()
	sc, err := wire.NewConn(a, wire.Config{Role: wire.RoleServer, Version: 1})
	if err != nil {
		log.Fatal(err)
	}
	cc, err := wire.NewConn(b, wire.Config{Role: wire.RoleClient, Version: 1})
	if err != nil {
		log.Fatal(err)
	}
	return sc, cc
}

// The step on shares: each party holds integer shares of five token rows
// of two features and of their scores (here split with fixed masks, for
// the example); both learn the counts, and each gets its shares of the
// kept rows, CLS first.
func ExampleServer_PruneShares() {
	ctx := context.Background()
	server, client := exampleParties()
	x := []float64{1, -1, 0.5, 0.25, -2, 3, 0.125, 0, 4, -4} // 5 x 2, row-major
	scores := []float64{0, 0.3, 0.01, 0.2, 0.5}              // CLS first: kept whatever its score
	split := func(vs []float64) (a, b share.Vector) {
		for i, v := range vs {
			mask := share.Int128FromInt64(int64(i+1) * 0x1234567890abcde) // random in a real run
			a = append(a, mask)
			b = append(b, share.Int128FromInt64(int64(math.Round(v*(1<<16)))).Sub(mask))
		}
		return a, b
	}
	sx, cx := split(x)
	ss, cs := split(scores)
	sc, cc := exampleConns()
	defer sc.Close()
	defer cc.Close()
	done := make(chan prunestep.Rows, 1)
	go func() {
		rows, _, err := client.PruneShares(ctx, cc, prunestep.Rows{X: cx, Cols: 2, Scores: cs})
		if err != nil {
			log.Fatal(err)
		}
		done <- rows
	}()
	const theta, beta = 0.1, 0.25 // the server's private thresholds
	kept, counts, err := server.PruneShares(ctx, sc, prunestep.Rows{X: sx, Cols: 2, Scores: ss}, theta, beta)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(counts)
	// Opening the shares (only for the example): CLS, then the high-degree
	// rows in an order unknown to both, then the low-degree row.
	theirs := <-done
	for i := 0; i < kept.Len(); i++ {
		a, b := kept.Row(i), theirs.Row(i)
		fmt.Println(a[0].Add(b[0]).Float64()/(1<<16), a[1].Add(b[1]).Float64()/(1<<16))
	}
	// Unordered output:
	// layer 0: 5 rows in, 4 kept (3 high, 1 low)
	// 1 -1
	// 0.5 0.25
	// 4 -4
	// 0.125 0
}
