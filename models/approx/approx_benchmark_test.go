package approx

import (
	"fmt"
	"testing"
)

func BenchmarkEvalVec(b *testing.B) {
	reg := Default()
	in := make([]float64, 4096)
	out := make([]float64, len(in))
	for _, fn := range Funcs() {
		lo, hi := reg.Interval(fn)
		for i := range in {
			in[i] = lo + (hi-lo)*float64(i)/float64(len(in)-1)
		}
		for _, d := range Degrees() {
			r := reg.Recipe(fn, d)
			b.Run(fmt.Sprintf("%v/%v/deg=%d", fn, d, r.PolyDegree()), func(b *testing.B) {
				b.SetBytes(int64(8 * len(in)))
				for b.Loop() {
					reg.EvalVec(fn, d, in, out)
				}
			})
		}
	}
}

func BenchmarkNewRegistry(b *testing.B) {
	lit := DefaultLiteral()
	for b.Loop() {
		if _, err := NewRegistry(lit); err != nil {
			b.Fatal(err)
		}
	}
}
