package ckks

import "testing"

func TestLayoutCompact(t *testing.T) {
	base := Layout{Rows: 512, Cols: 256, Block: 512, Slots: 8192}
	for _, tc := range []struct {
		name          string
		lay           Layout
		rows, headDim int
		block         int // 0: an error
	}{
		{"keep block", base, 100, 0, 512},
		{"down to the head limit", base, 100, 64, 128},
		{"few rows, head limit", base, 3, 64, 128},
		{"between", base, 200, 64, 256},
		{"no shrink needed", base, 300, 64, 512},
		{"wide head", base, 20, 128, 64},
		{"narrow head", base, 20, 16, 512},
		{"never grows", Layout{Rows: 16, Cols: 128, Block: 16, Slots: 1024}, 9, 128, 16},
		{"too many rows", base, 513, 64, 0},
		{"no rows", base, 0, 64, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.lay.Compact(tc.rows, tc.headDim)
			if tc.block == 0 {
				if err == nil {
					t.Fatalf("Compact(%d, %d) = %+v, want an error", tc.rows, tc.headDim, got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := Layout{Rows: tc.rows, Cols: tc.lay.Cols, Block: tc.block, Slots: tc.lay.Slots}
			if got != want {
				t.Fatalf("Compact(%d, %d) = %+v, want %+v", tc.rows, tc.headDim, got, want)
			}
		})
	}
}
