package models

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// randomMatrix returns a rows x cols matrix of N(0, 1) entries.
func randomMatrix(rng *rand.Rand, rows, cols int) Matrix {
	m := NewMatrix(rows, cols)
	for i := range m.Data {
		m.Data[i] = rng.NormFloat64()
	}
	return m
}

// naiveMulTransB is the textbook a·bᵀ.
func naiveMulTransB(a, b Matrix) Matrix {
	out := NewMatrix(a.Rows, b.Rows)
	for i := 0; i < a.Rows; i++ {
		for j := 0; j < b.Rows; j++ {
			var s float64
			for k := 0; k < a.Cols; k++ {
				s += a.At(i, k) * b.At(j, k)
			}
			out.Set(i, j, s)
		}
	}
	return out
}

func TestMulTransB(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	shapes := [][3]int{{1, 1, 1}, {1, 7, 3}, {2, 2, 2}, {3, 5, 7}, {16, 16, 16}, {17, 130, 65}, {128, 64, 129}, {0, 4, 3}, {4, 0, 3}}
	for _, s := range shapes {
		n, k, m := s[0], s[1], s[2]
		t.Run(fmt.Sprintf("n=%d,k=%d,m=%d", n, k, m), func(t *testing.T) {
			a, b := randomMatrix(rng, n, k), randomMatrix(rng, m, k)
			got, err := MulTransBNew(a, b)
			if err != nil {
				t.Fatal(err)
			}
			want := naiveMulTransB(a, b)
			// Each element is summed in the same order as the naive loop.
			if !slices.Equal(got.Data, want.Data) {
				t.Fatalf("MulTransB differs from the naive product")
			}
			bt := b.TransposeNew()
			prod, err := MulNew(a, bt)
			if err != nil || !slices.Equal(prod.Data, want.Data) {
				t.Fatalf("MulNew differs from the naive product: %v", err)
			}
		})
	}
}

func TestMulTransBDeterministic(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	a, b := randomMatrix(rng, 131, 200), randomMatrix(rng, 99, 200)
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	var first []float64
	for _, procs := range []int{1, 2, 3, 8} {
		runtime.GOMAXPROCS(procs)
		got, err := MulTransBNew(a, b)
		if err != nil {
			t.Fatal(err)
		}
		if first == nil {
			first = got.Data
		} else if !slices.Equal(first, got.Data) {
			t.Fatalf("GOMAXPROCS=%d changes the product", procs)
		}
	}
}

func TestMatrixErrors(t *testing.T) {
	a, b := NewMatrix(2, 3), NewMatrix(4, 5)
	tests := []struct {
		name    string
		err     error
		wantErr string
	}{
		{"inner mismatch", errOf(MulTransBNew(a, b)), "do not match"},
		{"out shape", MulTransB(a, NewMatrix(4, 3), NewMatrix(3, 3)), "do not match"},
		{"broken matrix", MulTransB(Matrix{Rows: 2, Cols: 2, Data: nil}, a, NewMatrix(2, 2)), "does not match its shape"},
		{"mul mismatch", errOf(MulNew(a, b)), "do not match"},
		{"from size", errOf(NewMatrixFrom(2, 2, []float64{1})), "1 values for a 2x2"},
		{"select row", errOf(a.SelectRowsNew([]int{0, 2})), "row index 2"},
		{"cols range", errOf(a.ColsNew(2, 4)), "columns [2, 4)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.err == nil || !strings.Contains(tt.err.Error(), tt.wantErr) || !strings.HasPrefix(tt.err.Error(), "cannot ") {
				t.Fatalf("error = %v, want one mentioning %q", tt.err, tt.wantErr)
			}
		})
	}
}

// errOf drops a result and keeps its error.
func errOf[T any](_ T, err error) error { return err }

func TestMatrixHelpers(t *testing.T) {
	m, err := NewMatrixFrom(3, 2, []float64{1, 2, 3, 4, 5, 6})
	if err != nil {
		t.Fatal(err)
	}
	if tr := m.TransposeNew(); !slices.Equal(tr.Data, []float64{1, 3, 5, 2, 4, 6}) || tr.Rows != 2 {
		t.Errorf("TransposeNew = %+v", tr)
	}
	if s, _ := m.SelectRowsNew([]int{2, 0}); !slices.Equal(s.Data, []float64{5, 6, 1, 2}) {
		t.Errorf("SelectRowsNew = %v", s.Data)
	}
	if c, _ := m.ColsNew(1, 2); !slices.Equal(c.Data, []float64{2, 4, 6}) {
		t.Errorf("ColsNew = %v", c.Data)
	}
	c := m.Clone()
	c.Set(0, 0, math.Pi)
	if m.At(0, 0) != 1 || c.At(0, 0) != math.Pi {
		t.Error("Clone shares storage")
	}
	if r := m.Row(1); len(r) != 2 || cap(r) != 2 || r[0] != 3 {
		t.Errorf("Row(1) = %v (cap %d)", r, cap(r))
	}
	if e := NewMatrix(-1, 3); e.Rows != 0 || len(e.Data) != 0 {
		t.Errorf("NewMatrix(-1, 3) = %+v", e)
	}
}
