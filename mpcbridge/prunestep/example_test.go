package prunestep_test

import (
	"context"
	"fmt"
	"log"
	"math"
	"net"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"
	"github.com/tuneinsight/lattigo/v5/he/hefloat"

	"github.com/cipherprune/cipherprune/ckks"
	"github.com/cipherprune/cipherprune/models"
	"github.com/cipherprune/cipherprune/mpcbridge/prunestep"
	"github.com/cipherprune/cipherprune/mpcbridge/share"
	"github.com/cipherprune/cipherprune/mpcbridge/wire"
)

// The server prunes six encrypted token rows by their encrypted scores:
// both parties learn only the counts, and the server gets fresh
// encryptions of the kept rows, CLS first.
func Example() {
	ctx := context.Background()
	params, sk, pk, server, client := exampleParties()
	// What the server holds after an attention block: the hidden state
	// (6 rows, 64 columns) and the importance scores, encrypted under the
	// client's key (here encrypted directly, for the example).
	he, err := ckks.NewClient(params, pk, sk)
	if err != nil {
		log.Fatal(err)
	}
	x := models.NewMatrix(6, 64)
	for i := range x.Data {
		x.Data[i] = math.Sin(float64(i))
	}
	scores := []float64{0.0, 0.30, 0.01, 0.22, 0.05, 0.40} // CLS first: kept whatever its score
	lay, err := ckks.NewLayout(params.MaxSlots(), 6, 64, 8)
	if err != nil {
		log.Fatal(err)
	}
	hidden, err := he.EncryptMatrix(x, lay, 3)
	if err != nil {
		log.Fatal(err)
	}
	sv, err := he.EncryptVector(lay.TokenVector(func(i int) float64 { return scores[i] }), 3)
	if err != nil {
		log.Fatal(err)
	}
	out := &ckks.AttentionOutput{Layer: 0, Hidden: hidden, Scores: sv}

	// The two parties over a connection.
	sc, cc := exampleConns()
	defer sc.Close()
	defer cc.Close()
	done := make(chan prunestep.Counts, 1)
	go func() {
		counts, err := client.Prune(ctx, cc)
		if err != nil {
			log.Fatal(err)
		}
		done <- counts
	}()
	const theta, beta = 0.1, 0.25 // the server's private thresholds
	res, counts, err := server.Prune(ctx, sc, out, theta, beta)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("server:", counts)
	fmt.Println("client:", <-done)
	fmt.Println("degrees:", res.Degrees)

	// Only the client can decrypt: the kept rows, CLS first.
	got, err := he.DecryptMatrix(res.Hidden)
	if err != nil {
		log.Fatal(err)
	}
	var clsErr float64
	for j := 0; j < 64; j++ {
		clsErr = math.Max(clsErr, math.Abs(got.At(0, j)-x.At(0, j)))
	}
	fmt.Println("rows:", got.Rows, "CLS first:", clsErr < 1e-4)
	// Output:
	// server: layer 0: 6 rows in, 4 kept (3 high, 1 low)
	// client: layer 0: 6 rows in, 4 kept (3 high, 1 low)
	// degrees: [high high high low]
	// rows: 4 CLS first: true
}

// exampleParties returns the CKKS parameters (InsecureTest11: tests only,
// use Interactive14), the client's keys and both parties of the examples,
// with |x| <= 2^4 and the default F = 16.
func exampleParties() (hefloat.Parameters, *rlwe.SecretKey, *rlwe.PublicKey, *prunestep.Server, *prunestep.Client) {
	preset, err := ckks.PresetByName(ckks.InsecureTest11, true)
	if err != nil {
		log.Fatal(err)
	}
	params, err := preset.Params()
	if err != nil {
		log.Fatal(err)
	}
	p, err := prunestep.NewParameters(prunestep.ParametersLiteral{Share: share.ParametersLiteral{LogBound: 4}})
	if err != nil {
		log.Fatal(err)
	}
	sk, pk := rlwe.NewKeyGenerator(params).GenKeyPairNew()
	server, err := prunestep.NewServer(params, pk, p, nil)
	if err != nil {
		log.Fatal(err)
	}
	client, err := prunestep.NewClient(params, sk, p, nil)
	if err != nil {
		log.Fatal(err)
	}
	return params, sk, pk, server, client
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
