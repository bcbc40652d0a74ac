// Command cipherprune runs private Transformer inference with encrypted token
// pruning, and the tools around it: fetching data, evaluating models.
//
// Usage:
//
//	cipherprune <command> [flags]
//
// Commands:
//
//	demo    one private inference, server and client in this process
//	serve   serve private inferences on a TCP address
//	infer   run private inferences of one or more texts against a server, in one session
//	bench   whole private inferences with and without pruning: time, bytes, rounds
//	gpubench  the kernels backend (GPU) on NTT, key switching, Rotate, MulRelin against Lattigo
//	data    download, verify and split the labelled corpora
//	calibrate  choose approximation intervals from observed activations
//	eval    accuracy of the exact and approximate plaintext forward passes
//	search  learn the pruning and degree thresholds (prune.json)
//	costmodel  measure the search's cost model on this machine (cost.json)
//
// Run "cipherprune <command> -h" for a command's flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// command is one subcommand of the program.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"demo", "one private inference, server and client in this process", runDemo},
		{"serve", "serve private inferences on a TCP address", runServe},
		{"infer", "run private inferences of one or more texts against a server (one session)", runInfer},
		{"bench", "whole private inferences with and without pruning: time, bytes, rounds", runBench},
		{"gpubench", "the kernels backend (GPU) on NTT, key switching, Rotate, MulRelin against Lattigo", runGPUBench},
		{"data", "download, verify and split the labelled corpora", runData},
		{"calibrate", "choose approximation intervals from observed activations", runCalibrate},
		{"eval", "accuracy of the exact and approximate plaintext forward passes", runEval},
		{"search", "learn per-layer pruning and degree thresholds (runs the training code)", runSearch},
		{"costmodel", "measure the threshold search's cost model on this machine (cost.json)", runCostModel},
	}
}

func main() {
	setMemoryLimit()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go tuneGC(ctx)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "cipherprune:", err)
		}
		os.Exit(2)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return errors.New("no command given")
		}
		return nil
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(ctx, args[1:], stdout, stderr)
		}
	}
	usage(stderr)
	return fmt.Errorf("unknown command %q", args[0])
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: cipherprune <command> [flags]\n\ncommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
}

// newFlagSet returns a flag set for a subcommand that reports errors instead
// of exiting.
func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("cipherprune "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}
