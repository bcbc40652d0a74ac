package wire_test

import (
	"context"
	"fmt"
	"net"

	"github.com/cipherprune/cipherprune/mpcbridge/wire"
)

// Message types of the example's protocol. A real protocol takes its own
// block of numbers (see the package documentation) and names them with
// wire.RegisterType.
const (
	typeShares wire.Type = 0xf001
	typeSum    wire.Type = 0xf002
)

// A client sends a share vector, the server answers with the sum; the
// client measures the step.
func Example() {
	a, b := net.Pipe() // a TCP or TLS connection in a real deployment
	params := []byte("preset=InsecureTest;model=bert-tiny")
	client, err := wire.NewConn(a, wire.Config{Role: wire.RoleClient, Version: 1, Params: params})
	if err != nil {
		panic(err)
	}
	defer client.Close()
	server, err := wire.NewConn(b, wire.Config{Role: wire.RoleServer, Version: 1, Params: params})
	if err != nil {
		panic(err)
	}
	defer server.Close()

	ctx := context.Background()
	done := make(chan error, 1)
	go func() {
		// The first receive runs the server's side of the handshake.
		v, err := server.RecvUint64s(ctx, typeShares, 1<<20)
		if err != nil {
			done <- err
			return
		}
		var sum uint64
		for _, x := range v {
			sum += x
		}
		done <- server.SendUint64s(ctx, typeSum, []uint64{sum})
	}()

	if err := client.Handshake(ctx); err != nil {
		panic(err)
	}
	before := client.Stats()
	if err := client.SendUint64s(ctx, typeShares, []uint64{1, 2, 3, 4}); err != nil {
		panic(err)
	}
	sum, err := client.RecvUint64s(ctx, typeSum, 1)
	if err != nil {
		panic(err)
	}
	if err := <-done; err != nil {
		panic(err)
	}
	fmt.Println("sum:", sum[0])
	fmt.Println("step:", client.Stats().Sub(before))
	// Output:
	// sum: 10
	// step: sent 44 B in 1 msgs, received 20 B in 1 msgs, 1 rounds
}

// Two ends configured for different models refuse each other, and both say
// why.
func ExampleConn_Handshake() {
	a, b := net.Pipe()
	client, _ := wire.NewConn(a, wire.Config{Role: wire.RoleClient, Params: []byte("model=bert-tiny")})
	server, _ := wire.NewConn(b, wire.Config{Role: wire.RoleServer, Params: []byte("model=bert-base")})
	ctx := context.Background()
	errc := make(chan error, 1)
	go func() { errc <- server.Handshake(ctx) }()
	fmt.Println(client.Handshake(ctx))
	fmt.Println(<-errc)
	// Output:
	// cannot Handshake: wire: session parameters differ: client "model=bert-tiny", server "model=bert-base"
	// cannot Handshake: wire: session parameters differ: server "model=bert-base", client "model=bert-tiny"
}
