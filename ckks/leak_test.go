package ckks

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them (the
// evaluator's workers and every helper goroutine must be joined).
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
