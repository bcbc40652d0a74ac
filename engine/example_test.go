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

// ExampleClient_NewSession runs two private inferences on one connection:
// the first sends the client's keys, the second reuses them. ServeLocal
// serves on a loopback port, as Example's Serve does.
func ExampleClient_NewSession() {
	dir := filepath.Join("..", "models", "trained", "sentiment-tiny")
	model, err := engine.LoadModel(dir)
	if err != nil {
		log.Fatal(err)
	}
	srv, err := engine.NewServer(model, engine.ServerConfig{Preset: elementwise.InsecureElementwise11, AllowInsecure: true})
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	addr, stop, err := srv.ServeLocal(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer stop()
	cli, err := engine.NewClient(model.Client, engine.ClientConfig{Preset: elementwise.InsecureElementwise11, AllowInsecure: true})
	if err != nil {
		log.Fatal(err)
	}
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		log.Fatal(err)
	}
	s, err := cli.NewSession(ctx, nc)
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	for _, text := range []string{"A wonderful film, I loved every minute.", "Dull, slow and far too long."} {
		res, err := s.Infer(ctx, text)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s (keys sent: %v)\n", res.LabelName, res.Report.KeyBytes > 0)
	}
	// Output:
	// positive (keys sent: true)
	// negative (keys sent: false)
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
