package engine_test

import (
	"context"
	"fmt"
	"log"
	"net"
	"path/filepath"

	"github.com/cipherprune/cipherprune/engine"
	"github.com/cipherprune/cipherprune/mpcbridge/elementwise"
)

// Example runs one private inference of the shipped sentiment model with a
// server and a client in one process over loopback TCP. (It uses a small
// insecure preset to run in seconds; a real deployment leaves Preset empty
// for the secure default.)
func Example() {
	dir := filepath.Join("..", "models", "trained", "sentiment-tiny")
	model, err := engine.LoadModel(dir)
	if err != nil {
		log.Fatal(err)
	}
	srv, err := engine.NewServer(model, engine.ServerConfig{Preset: elementwise.InsecureElementwise11, AllowInsecure: true})
	if err != nil {
		log.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()
	defer func() { stop(); <-served }()

	// The client needs only the model's public part.
	pub, err := engine.LoadPublic(dir)
	if err != nil {
		log.Fatal(err)
	}
	cli, err := engine.NewClient(pub, engine.ClientConfig{Preset: elementwise.InsecureElementwise11, AllowInsecure: true})
	if err != nil {
		log.Fatal(err)
	}
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	res, err := cli.Infer(ctx, nc, "A wonderful film, I loved every minute.")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("label:", res.LabelName)
	fmt.Println("tokens seen by the server:", res.Report.Length)
	// Output:
	// label: positive
	// tokens seen by the server: 16
}

// ExampleRules shows the bridge rules a model's learned thresholds give.
func ExampleRules() {
	model, err := engine.LoadModel(filepath.Join("..", "models", "trained", "sentiment-tiny"))
	if err != nil {
		log.Fatal(err)
	}
	for l, r := range engine.Rules(model.Thresholds, model.Config().NumLayers(), engine.Reductions{Prune: true, Reduce: true}) {
		fmt.Printf("layer %d: prune=%v θ=%.4f\n", l, r.Prune, r.Theta)
	}
	// Output:
	// layer 0: prune=true θ=0.0013
	// layer 1: prune=false θ=0.0000
}
