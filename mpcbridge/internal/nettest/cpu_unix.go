//go:build unix

package nettest

import (
	"math"
	"syscall"
)

// CPUSeconds returns the user and system CPU time of the process: both
// parties together, as the benchmarks run them in one process.
func CPUSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return math.NaN()
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}
