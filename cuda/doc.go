// Package cuda is the GPU Backend of package kernels: CUDA kernels
// (kernels/*.cu) that perform Lattigo v5's modular arithmetic word for word,
// and a minimal binding of the CUDA driver API that loads them.
//
// Everything that touches CUDA is behind the build tag "cuda". Without it,
// Open reports that the package was built without CUDA and OpenOrCPU returns
// the pure-Go kernels.CPU backend, so a default build needs no CUDA header
// or library. With it, the driver (libcuda.so.1) is opened at run time with
// dlopen, never linked: a binary built with -tags cuda starts on a host
// without a GPU or driver, and OpenOrCPU falls back to the CPU with a
// message saying why. See README.md for why gorgonia.org/cu is not used.
package cuda

import (
	"fmt"

	"github.com/cipherprune/cipherprune/kernels"
)

// OpenOrCPU returns the CUDA backend for params if this binary was built
// with -tags cuda and a usable GPU is present; otherwise it reports why
// through logf (when not nil) and returns the CPU reference backend.
func OpenOrCPU(params *kernels.Params, logf func(format string, args ...any)) (kernels.Backend, error) {
	be, err := Open(params)
	if err == nil {
		return be, nil
	}
	cpu, cerr := kernels.NewCPU(params, kernels.CPUOptions{})
	if cerr != nil {
		return nil, fmt.Errorf("cannot OpenOrCPU: %w", cerr)
	}
	if logf != nil {
		logf("cuda: no usable GPU backend (%v); falling back to %s", err, cpu.Name())
	}
	return cpu, nil
}
