package layers

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them (every
// worker and both parties of a loopback run must be joined).
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
