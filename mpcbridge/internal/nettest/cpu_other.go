//go:build !unix

package nettest

import "math"

// CPUSeconds is not measured on this platform.
func CPUSeconds() float64 { return math.NaN() }
