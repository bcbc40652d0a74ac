package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/cipherprune/cipherprune/cuda"
	"github.com/cipherprune/cipherprune/kernels"
	"github.com/cipherprune/cipherprune/kernels/kernelbench"
)

// runGPUBench measures the kernels backend on the hot ring operations
// against Lattigo (kernels/kernelbench).
func runGPUBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("gpubench", stderr)
	backend := fs.String("backend", "gpu", "backend under test: gpu (CUDA kernels, a -tags cuda build on a GPU host) or kernels (the pure-Go reference)")
	reps := fs.Int("reps", 20, "timed repetitions per operation (the median is reported)")
	shapes := fs.String("shapes", "", "comma-separated shapes (default: all): "+shapeNames())
	if err := fs.Parse(args); err != nil {
		return err
	}
	var open kernelbench.Opener
	switch *backend {
	case "gpu":
		open = func(p *kernels.Params) (kernels.Backend, error) { return cuda.Open(p) }
	case "kernels":
		open = func(p *kernels.Params) (kernels.Backend, error) { return kernels.NewCPU(p, kernels.CPUOptions{}) }
	default:
		return fmt.Errorf("unknown backend %q (want gpu or kernels)", *backend)
	}
	cfg := kernelbench.Config{Reps: *reps, Open: open, Log: stderr}
	if *shapes != "" {
		for _, name := range strings.Split(*shapes, ",") {
			found := false
			for _, s := range kernelbench.Shapes {
				if s.Name == name {
					cfg.Shapes, found = append(cfg.Shapes, s), true
				}
			}
			if !found {
				return fmt.Errorf("unknown shape %q (want %s)", name, shapeNames())
			}
		}
	}
	rep, err := kernelbench.Run(ctx, cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "kernels CPU variant %s, features %s\n", kernels.DefaultVariant(), kernels.CPUFeatures())
	rep.Table(stdout)
	return nil
}

func shapeNames() string {
	var names []string
	for _, s := range kernelbench.Shapes {
		names = append(names, s.Name)
	}
	return strings.Join(names, ", ")
}
