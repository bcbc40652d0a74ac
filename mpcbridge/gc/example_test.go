package gc_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"

	"github.com/cipherprune/cipherprune/mpcbridge/gc"
)

// Two parties hold additive shares of four importance scores; the server
// also holds the thresholds. Both learn which scores exceed them, and
// nothing else.
func Example() {
	p, err := gc.NewParams(gc.DefaultParamsLiteral) // K = 64, F = 16, IKNP
	if err != nil {
		panic(err)
	}
	enc := func(x float64) uint64 {
		u, err := p.Encode(x)
		if err != nil {
			panic(err)
		}
		return u
	}
	scores := []float64{0.30, -1.5, 0.05, 0.125}
	theta, beta := enc(0.1), enc(0.125) // the server's private thresholds

	// Split each score into a client share c and a server share v.
	r := rand.New(rand.NewPCG(1, 2))
	client, server := make([]uint64, len(scores)), make([]uint64, len(scores))
	for i, s := range scores {
		client[i] = r.Uint64()
		server[i] = enc(s) - client[i]
	}

	serverConn, clientConn := net.Pipe()
	defer serverConn.Close()
	defer clientConn.Close()
	cache := gc.NewCache() // one per process: circuits are compiled once
	done := make(chan error, 1)
	go func() {
		keep, high, err := cache.Garble(context.Background(), serverConn, p, server, theta, beta)
		fmt.Println("server: keep", keep, "high", high)
		done <- err
	}()
	keep, high, err := cache.Evaluate(context.Background(), clientConn, p, client)
	if err := <-done; err != nil {
		panic(err)
	}
	if err != nil {
		panic(err)
	}
	fmt.Println("client: keep", keep, "high", high)
	// Output:
	// server: keep [true false false true] high [true false false false]
	// client: keep [true false false true] high [true false false false]
}
