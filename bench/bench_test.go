package bench

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cipherprune/cipherprune/mpcbridge/elementwise"
)

// TestExtrapolate: unmeasured layers follow the least-squares fit a·r +
// c·r² through the measured layers, r the scheduled rows, and are marked.
func TestExtrapolate(t *testing.T) {
	rec := &Record{Layers: 4, Hidden: 768, Heads: 12, Schedule: []int{128, 16, 8, 4}}
	const a, c = 0.05, 0.001
	secs := func(r int) float64 { return a*float64(r) + c*float64(r*r) }
	rec.Variants = []Variant{
		{Name: "unpruned", Layers: []Layer{
			{In: 128, Kept: 128, Seconds: secs(128), Bytes: 100, Rounds: 5},
			{In: 128, Kept: 128, Seconds: secs(128), Bytes: 100, Rounds: 5}}},
		{Name: "pruned", Prune: true, Layers: []Layer{
			{In: 128, Kept: 16, Seconds: secs(128), Bytes: 100, Rounds: 7},
			{In: 16, Kept: 8, Seconds: secs(16), Bytes: 100, Rounds: 7}}},
	}
	for i := range rec.Variants {
		for _, l := range rec.Variants[i].Layers {
			rec.Variants[i].LayerSeconds += l.Seconds
		}
	}
	extrapolate(rec)
	pr := rec.Variants[1]
	if len(pr.Layers) != 4 || !pr.Layers[2].Extrapolated || pr.Layers[1].Extrapolated {
		t.Fatalf("layers %+v", pr.Layers)
	}
	if pr.Layers[2].In != 8 || pr.Layers[3].In != 4 {
		t.Errorf("extrapolated rows %d, %d, want 8, 4", pr.Layers[2].In, pr.Layers[3].In)
	}
	if want := secs(8); math.Abs(pr.Layers[2].Seconds-want) > 1e-9 {
		t.Errorf("layer 2: %.4f s, want %.4f", pr.Layers[2].Seconds, want)
	}
	if un := rec.Variants[0]; un.Layers[3].In != 128 || math.Abs(un.AllSeconds-4*secs(128)) > 1e-9 {
		t.Errorf("unpruned: %+v, %.2f s", un.Layers[3], un.AllSeconds)
	}
	// One distinct row count: the fit is proportional.
	if f := fitRows([]float64{10, 10}, []float64{2, 2}); math.Abs(f(20)-4) > 1e-9 {
		t.Errorf("proportional fit: f(20) = %g, want 4", f(20))
	}
}

// TestRunShape runs a bert-tiny shape with a fixed schedule on one of its
// two layers: the encrypted run keeps exactly the schedule's rows, the
// second layer is extrapolated, and the files are written.
func TestRunShape(t *testing.T) {
	if testing.Short() {
		t.Skip("private inferences")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	rec, err := Run(ctx, Config{Shape: "bert-tiny", N: 16, Schedule: []int{16, 6}, LowFraction: 0.5, Layers: 1,
		Preset: elementwise.InsecureElementwise11, AllowInsecure: true, Workers: 2, Seed: 3, Log: os.Stderr})
	if err != nil {
		t.Fatal(err)
	}
	if rec.Measured != 1 || rec.Layers != 2 || len(rec.Variants) != 2 {
		t.Fatalf("record %+v", rec)
	}
	pr := rec.Variants[1]
	if pr.Layers[0].In != 16 || pr.Layers[0].Kept != 6 || pr.Layers[0].High != 4 {
		t.Errorf("pruned layer 0: %+v, want 16 in, 6 kept, 4 high (2 of the 5 non-CLS rows low)", pr.Layers[0])
	}
	if !pr.Layers[1].Extrapolated || pr.Layers[1].In != 6 {
		t.Errorf("layer 1: %+v", pr.Layers[1])
	}
	if pr.BytesSent == 0 || pr.Rounds == 0 || pr.WANSeconds <= pr.AllSeconds {
		t.Errorf("traffic: %+v", pr)
	}
	dir := t.TempDir()
	if err := rec.WriteFiles(dir); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"record.json", "table.txt", "chart.png"} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
}
