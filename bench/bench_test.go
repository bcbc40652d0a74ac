package bench

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cipherprune/cipherprune/ckks"
)

// TestExtrapolate: unmeasured layers follow the least-squares line through
// the measured layers' (attention shifts, seconds) points and are marked.
func TestExtrapolate(t *testing.T) {
	rec := &Record{Layers: 4, Block: 64, Schedule: []int{64, 16, 8, 4}}
	// Seconds = 10 + 0.1·shifts: 64 rows -> 64 shifts, 16 rows -> 31 shifts.
	rec.Variants = []Variant{
		{Name: "unpruned", Layers: []Layer{{In: 64, Kept: 64, Seconds: 16.4, Bytes: 100, Rounds: 5}, {In: 64, Kept: 64, Seconds: 16.4, Bytes: 100, Rounds: 5}}},
		{Name: "pruned", Prune: true, Layers: []Layer{{In: 64, Kept: 16, Seconds: 16.4, Bytes: 100, Rounds: 7}, {In: 16, Kept: 8, Seconds: 13.1, Bytes: 100, Rounds: 7}}},
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
	if want := 10 + 0.1*15; math.Abs(pr.Layers[2].Seconds-want) > 1e-9 {
		t.Errorf("layer 2: %.3f s, want %.3f", pr.Layers[2].Seconds, want)
	}
	if un := rec.Variants[0]; un.Layers[3].In != 64 || math.Abs(un.AllSeconds-4*16.4) > 1e-9 {
		t.Errorf("unpruned: %+v, %.2f s", un.Layers[3], un.AllSeconds)
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
		Preset: ckks.InsecureTest11, AllowInsecure: true, Workers: 2, Seed: 3, Log: os.Stderr})
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
