package cuda

import (
	"fmt"
	"strings"
	"testing"

	"github.com/cipherprune/cipherprune/kernels"
	"github.com/tuneinsight/lattigo/v5/schemes/ckks"
)

// TestOpenOrCPUFallsBack checks that, without a usable GPU (or without
// -tags cuda), OpenOrCPU returns the CPU backend and says why.
func TestOpenOrCPUFallsBack(t *testing.T) {
	params, err := ckks.NewParametersFromLiteral(ckks.ParametersLiteral{LogN: 10, LogQ: []int{40, 30}, LogP: []int{45}, LogDefaultScale: 30})
	if err != nil {
		t.Fatal(err)
	}
	kp, err := kernels.NewParams(params.Parameters)
	if err != nil {
		t.Fatal(err)
	}
	if be, err := Open(kp); err == nil {
		t.Skipf("a GPU is usable here (%s): nothing to fall back from", be.Name())
	}
	var msg string
	be, err := OpenOrCPU(kp, func(format string, args ...any) { msg = fmt.Sprintf(format, args...) })
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(be.Name(), "cpu/") {
		t.Fatalf("fallback backend is %s", be.Name())
	}
	if !strings.Contains(msg, "falling back to cpu/") {
		t.Fatalf("fallback message %q", msg)
	}
	t.Log(msg)
}
