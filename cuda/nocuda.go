//go:build !cuda

package cuda

import (
	"errors"

	"github.com/cipherprune/cipherprune/kernels"
)

// ErrNotBuilt is returned by Open in a binary built without -tags cuda.
var ErrNotBuilt = errors.New("built without -tags cuda")

// Open returns the CUDA backend; in this build it always fails with ErrNotBuilt.
func Open(params *kernels.Params) (kernels.Backend, error) {
	return nil, ErrNotBuilt
}
