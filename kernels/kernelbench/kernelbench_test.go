package kernelbench

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/cipherprune/cipherprune/kernels"
)

func TestRun(t *testing.T) {
	cfg := Config{
		Shapes: []Shape{{"small", 11, chain(40, 30, 3), []int{45}}},
		Reps:   3,
		Open:   func(p *kernels.Params) (kernels.Backend, error) { return kernels.NewCPU(p, kernels.CPUOptions{}) },
	}
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) != 7 || len(rep.Bandwidths) != 1 || rep.Bandwidths[0].BytesPerSec <= 0 {
		t.Fatalf("report %+v", rep)
	}
	for _, r := range rep.Results {
		if r.Median <= 0 || r.Lattigo <= 0 || r.Floor <= 0 || r.Bytes <= 0 {
			t.Errorf("%s: %+v", r.Op, r)
		}
		if want := 4; r.Op != "NTT/limb" && r.Op != "INTT/limb" && r.Limbs != want {
			t.Errorf("%s: %d limbs, want %d", r.Op, r.Limbs, want)
		}
	}
	var out bytes.Buffer
	rep.Table(&out)
	for _, op := range []string{"NTT/ciphertext", "KeySwitch", "Rotate", "MulRelin", "copy bandwidth"} {
		if !strings.Contains(out.String(), op) {
			t.Errorf("table lacks %s:\n%s", op, out.String())
		}
	}
	if _, err := Run(context.Background(), Config{}); err == nil {
		t.Error("Run without an opener succeeded")
	}
}
