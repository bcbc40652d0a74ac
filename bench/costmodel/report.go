package costmodel

import (
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"

	"github.com/cipherprune/cipherprune/prune"
)

// Fit fits the cost model of a model of shape `shape` to observations
// (layers, pruning steps and heads; Predicted fields ignored) by
// non-negative least squares on the relative errors. It needs layers at
// three lengths or more and at least two pruning steps.
func Fit(obs []Observation, shape prune.CostShape) (prune.CostModelLiteral, error) {
	var lx, sx [][]float64
	var ly, lw, sy, sw []float64
	var head []float64
	lengths := map[int]bool{}
	for _, o := range obs {
		if math.IsNaN(o.Seconds) || math.IsInf(o.Seconds, 0) || o.Seconds < 0 || math.IsNaN(o.StepSeconds) || o.StepSeconds < 0 {
			return prune.CostModelLiteral{}, fmt.Errorf("cannot fit the cost model: observation %+v", o)
		}
		if o.Layer < 0 {
			head = append(head, o.Seconds)
			continue
		}
		lengths[o.In] = true
		in := float64(o.In)
		lx = append(lx, []float64{1, in, in * in, float64(o.Kept), float64(o.High), split(o.InHigh, o.In), split(o.High, o.Kept)})
		ly, lw = append(ly, o.Seconds), append(lw, 1/math.Max(o.Seconds, 1e-9))
		if o.StepSeconds > 0 {
			sx = append(sx, []float64{1, in})
			sy, sw = append(sy, o.StepSeconds), append(sw, 1/o.StepSeconds)
		}
	}
	if len(lengths) < 3 || len(sx) < 2 || len(head) == 0 {
		return prune.CostModelLiteral{}, errors.New("cannot fit the cost model: want layers at 3 row counts or more, 2 pruning steps and a head")
	}
	lc, err := fitNonNegative(lx, ly, lw)
	if err != nil {
		return prune.CostModelLiteral{}, fmt.Errorf("cannot fit the cost model: %w", err)
	}
	sc, err := fitNonNegative(sx, sy, sw)
	if err != nil {
		return prune.CostModelLiteral{}, fmt.Errorf("cannot fit the cost model: %w", err)
	}
	var h float64
	for _, v := range head {
		h += v
	}
	return prune.CostModelLiteral{
		Format: prune.CostFormat, Shape: shape,
		Layer: lc[0], AttentionRow: lc[1], AttentionRowSq: lc[2], FFNRow: lc[3], FFNHighRow: lc[4],
		AttentionSplit: lc[5], FFNSplit: lc[6],
		Step: sc[0], StepRow: sc[1], Head: h / float64(len(head)),
	}, nil
}

// split is 1 when a stage's rows have both degrees (high < rows), else 0.
func split(high, rows int) float64 {
	if high < rows {
		return 1
	}
	return 0
}

// predict fills in the observations' predictions under w and returns the
// root mean square relative error over the layers and steps.
func predict(obs []Observation, w prune.CostModelLiteral) float64 {
	var s float64
	var k int
	rel := func(pred, got float64) {
		if got > 0 {
			s += (pred - got) * (pred - got) / (got * got)
			k++
		}
	}
	for i := range obs {
		o := &obs[i]
		if o.Layer < 0 {
			o.Predicted = w.Head
			continue
		}
		in, inHigh := float64(o.In), float64(o.InHigh)
		o.Predicted = w.Layer + w.AttentionRow*in + w.AttentionRowSq*in*in + w.AttentionHighRowSq*in*inHigh +
			w.FFNRow*float64(o.Kept) + w.FFNHighRow*float64(o.High) +
			w.AttentionSplit*split(o.InHigh, o.In) + w.FFNSplit*split(o.High, o.Kept)
		rel(o.Predicted, o.Seconds)
		if o.StepSeconds > 0 {
			o.PredictedStep = w.Step + w.StepRow*in
			rel(o.PredictedStep, o.StepSeconds)
		}
	}
	return math.Sqrt(s / float64(max(k, 1)))
}

// source is the cost model's Source line.
func (rep *Report) source() string {
	ns := make([]string, len(rep.Lengths))
	for i, n := range rep.Lengths {
		ns[i] = fmt.Sprint(n)
	}
	return fmt.Sprintf("measured: cipherprune costmodel on the engine (protocol %d), preset %s, n = %s, %d of %d layers, "+
		"unpruned and %g kept after layer 0, median of %d runs; %s, load %.1f to %.1f, %s; fit's relative RMS error %.1f%%",
		rep.Protocol, rep.Preset, strings.Join(ns, ","), rep.Run, rep.Layers, keepFraction, rep.Reps, rep.Machine,
		rep.Load[0], rep.Load[1], rep.Date, 100*rep.RelRMS)
}

// Format writes the fitted figures and, per observation, the measured and
// predicted seconds.
func (rep *Report) Format(w io.Writer) error {
	m := rep.Model
	fmt.Fprintf(w, "cost model (seconds): layer %.4g + attention %.4g·in + %.4g·in² + ffn %.4g·kept + %.4g·high"+
		" + split degrees %.4g (attention), %.4g (ffn); step %.4g + %.4g·in; head %.4g\n", m.Layer, m.AttentionRow, m.AttentionRowSq,
		m.FFNRow, m.FFNHighRow, m.AttentionSplit, m.FFNSplit, m.Step, m.StepRow, m.Head)
	fmt.Fprintf(w, "fit's relative RMS error over layers and steps: %.1f%%\n", 100*rep.RelRMS)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "n\tvariant\tlayer\tin\tin high\tkept\thigh\tmeasured s\tpredicted s\tresidual\tstep s\tpredicted\tMB\t")
	for _, o := range rep.Observations {
		layer := fmt.Sprint(o.Layer)
		if o.Layer < 0 {
			layer = "head"
		}
		step, pstep := "", ""
		if o.StepSeconds > 0 {
			step, pstep = fmt.Sprintf("%.3f", o.StepSeconds), fmt.Sprintf("%.3f", o.PredictedStep)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%d\t%d\t%d\t%.3f\t%.3f\t%+.1f%%\t%s\t%s\t%.1f\t\n", o.N, o.Variant, layer, o.In, o.InHigh, o.Kept, o.High,
			o.Seconds, o.Predicted, 100*(o.Predicted-o.Seconds)/math.Max(o.Seconds, 1e-9), step, pstep, float64(o.Bytes)/1e6)
	}
	return tw.Flush()
}
