package ckks

import "testing"

func TestLayoutCompact(t *testing.T) {
	base := Layout{Rows: 512, Cols: 256, Block: 512, Slots: 8192}
	for _, tc := range []struct {
		name                 string
		lay                  Layout
		rows, headDim, heads int
		block                int // 0: an error
		headsPerCt           int
	}{
		{"keep block", base, 100, 0, 0, 512, 1},
		{"down to the head limit", base, 100, 64, 4, 128, 1},
		{"few rows, one head per ciphertext", base, 3, 64, 1, 128, 1},
		{"few rows, stacked heads", base, 3, 64, 4, 32, 4},
		{"stacked heads divide the heads", base, 3, 64, 2, 64, 2},
		{"between", base, 200, 64, 4, 256, 1},
		{"no shrink needed", base, 300, 64, 4, 512, 1},
		{"wide head", base, 20, 128, 2, 32, 2},
		{"narrow head, one per ciphertext", base, 20, 16, 1, 512, 1},
		{"narrow heads stacked", base, 20, 16, 16, 32, 16},
		{"never grows", Layout{Rows: 16, Cols: 128, Block: 16, Slots: 1024}, 9, 128, 1, 16, 1},
		{"too many rows", base, 513, 64, 4, 0, 0},
		{"no rows", base, 0, 64, 4, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.lay.Compact(tc.rows, tc.headDim, tc.heads)
			if tc.block == 0 {
				if err == nil {
					t.Fatalf("Compact(%d, %d, %d) = %+v, want an error", tc.rows, tc.headDim, tc.heads, got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := Layout{Rows: tc.rows, Cols: tc.lay.Cols, Block: tc.block, Slots: tc.lay.Slots}
			if tc.headsPerCt > 1 {
				want.HeadDim = tc.headDim
			}
			if got != want {
				t.Fatalf("Compact(%d, %d, %d) = %+v, want %+v", tc.rows, tc.headDim, tc.heads, got, want)
			}
			if hp := got.HeadsPerCt(); hp != tc.headsPerCt {
				t.Fatalf("HeadsPerCt() = %d, want %d", hp, tc.headsPerCt)
			}
		})
	}
}

func TestStackedColumn(t *testing.T) {
	// Two heads of 3 columns per ciphertext of 6 columns, 4 heads: physical
	// block j·2 + h of ciphertext k is column j of head 2k + h.
	want := []int{0, 3, 1, 4, 2, 5, 6, 9, 7, 10, 8, 11}
	seen := map[int]bool{}
	for p, w := range want {
		if got := StackedColumn(p, 3, 2); got != w {
			t.Errorf("StackedColumn(%d, 3, 2) = %d, want %d", p, got, w)
		}
		seen[StackedColumn(p, 3, 2)] = true
		if got := StackedColumn(p, 3, 1); got != p {
			t.Errorf("StackedColumn(%d, 3, 1) = %d, want %d", p, got, p)
		}
	}
	if len(seen) != len(want) {
		t.Errorf("StackedColumn is not a permutation: %d distinct of %d", len(seen), len(want))
	}
}

func TestLayoutValidateHeadDim(t *testing.T) {
	for _, tc := range []struct {
		name string
		lay  Layout
		ok   bool
	}{
		{"no head dimension", Layout{Rows: 5, Cols: 128, Block: 8, Slots: 1024}, true},
		{"two heads per ciphertext", Layout{Rows: 5, Cols: 128, Block: 8, Slots: 1024, HeadDim: 64}, true},
		{"negative", Layout{Rows: 5, Cols: 128, Block: 8, Slots: 1024, HeadDim: -64}, false},
		{"one head spans the ciphertext", Layout{Rows: 5, Cols: 128, Block: 16, Slots: 1024, HeadDim: 64}, false},
		{"does not divide the columns", Layout{Rows: 5, Cols: 128, Block: 8, Slots: 1024, HeadDim: 48}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.lay.Validate(); (err == nil) != tc.ok {
				t.Fatalf("Validate(%+v) = %v, want ok=%v", tc.lay, err, tc.ok)
			}
		})
	}
	// WithHeadDim sets the head dimension only where heads share a ciphertext.
	if l := (Layout{Rows: 5, Cols: 128, Block: 16, Slots: 1024}).WithHeadDim(64); l.HeadDim != 0 || l.HeadsPerCt() != 1 {
		t.Errorf("block 16: %+v, %d heads per ciphertext", l, l.HeadsPerCt())
	}
	if l := (Layout{Rows: 5, Cols: 128, Block: 8, Slots: 1024}).WithHeadDim(64); l.HeadDim != 64 || l.HeadsPerCt() != 2 {
		t.Errorf("block 8: %+v, %d heads per ciphertext", l, l.HeadsPerCt())
	}
}
