package approx

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// TableRow describes one recipe: what it is, what it costs, how accurate it is.
type TableRow struct {
	Func     Func
	Variant  Degree
	A, B     float64
	Basis    Basis
	Degree   int
	Post     Post
	Steps    int
	Cost     Cost
	Stats    ErrorStats
	CoeffsL1 float64 // sum |c_k|: bounds |p| on [A, B] and the growth of CKKS noise
}

// Table is the per-function, per-variant report of a Registry.
type Table []TableRow

// Table returns one row per function and variant, in registry order.
func (reg *Registry) Table() Table {
	t := make(Table, 0, numFuncs*numDegrees)
	for _, fn := range Funcs() {
		for _, d := range Degrees() {
			r := reg.Recipe(fn, d)
			var l1 float64
			for _, c := range r.coeffs {
				if c < 0 {
					c = -c
				}
				l1 += c
			}
			t = append(t, TableRow{
				Func: fn, Variant: d, A: r.a, B: r.b, Basis: Chebyshev,
				Degree: r.PolyDegree(), Post: r.post, Steps: r.steps,
				Cost: r.cost, Stats: r.stats, CoeffsL1: l1,
			})
		}
	}
	return t
}

// Format writes the table as aligned text.
func (t Table) Format(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "func\tvariant\tinterval\tbasis\tdegree\tpost\tdepth\tct-ct muls\tmax abs err\tmax rel err\tsum|c|")
	for _, r := range t {
		post := "-"
		if r.Steps > 0 {
			post = fmt.Sprintf("%s x%d", r.Post, r.Steps)
		}
		rel := "-"
		if r.Stats.RelDefined {
			rel = fmt.Sprintf("%.2e", r.Stats.MaxRelErr)
		}
		fmt.Fprintf(tw, "%s\t%s\t[%g, %g]\t%s\t%d\t%s\t%d\t%d\t%.2e\t%s\t%.3g\n",
			r.Func, r.Variant, r.A, r.B, r.Basis, r.Degree, post,
			r.Cost.Depth, r.Cost.CtCtMuls, r.Stats.MaxAbsErr, rel, r.CoeffsL1)
	}
	return tw.Flush()
}

// String returns the table formatted by Format.
func (t Table) String() string {
	var sb strings.Builder
	_ = t.Format(&sb)
	return sb.String()
}
