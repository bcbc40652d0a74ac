package bench

import (
	"encoding/json"
	"fmt"
	"image"
	"image/draw"
	"image/png"
	"io"
	"os"
	"path/filepath"

	"github.com/cipherprune/cipherprune/bench/plot"
)

// WriteFiles writes record.json, table.txt and chart.png into dir.
func (r *Record) WriteFiles(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("cannot WriteFiles: %w", err)
	}
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("cannot WriteFiles: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "record.json"), append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("cannot WriteFiles: %w", err)
	}
	f, err := os.Create(filepath.Join(dir, "table.txt"))
	if err != nil {
		return fmt.Errorf("cannot WriteFiles: %w", err)
	}
	r.Table(f)
	if err := f.Close(); err != nil {
		return fmt.Errorf("cannot WriteFiles: %w", err)
	}
	img, err := r.Chart()
	if err != nil {
		return fmt.Errorf("cannot WriteFiles: %w", err)
	}
	f, err = os.Create(filepath.Join(dir, "chart.png"))
	if err != nil {
		return fmt.Errorf("cannot WriteFiles: %w", err)
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return fmt.Errorf("cannot WriteFiles: %w", err)
	}
	return f.Close()
}

// Table writes the record as a text table.
func (r *Record) Table(w io.Writer) {
	fmt.Fprintf(w, "%s: n=%d (%d real tokens), %d layers (%d measured), hidden %d, %d heads, FFN %d, preset %s\n",
		r.Name, r.N, r.Tokens, r.Layers, r.Measured, r.Hidden, r.Heads, r.FFN, r.Preset)
	fmt.Fprintf(w, "machine: %s, %s\n", r.Machine, r.Date)
	if r.WarmUpSeconds > 0 {
		fmt.Fprintf(w, "warm-up (the first layer unpruned, not measured): %.1f s\n", r.WarmUpSeconds)
	}
	for _, v := range r.Variants {
		fmt.Fprintf(w, "\n%s (prune=%v reduce=%v), keys %d bytes\n", v.Name, v.Prune, v.Reduce, v.KeyBytes)
		fmt.Fprintln(w, "layer    in  kept  high   seconds    step_s        bytes  rounds")
		for _, l := range v.Layers {
			mark := ""
			if l.Extrapolated {
				mark = "  (extrapolated)"
			}
			fmt.Fprintf(w, "%5d %5d %5d %5d %9.2f %9.2f %12d %7d%s\n", l.Layer, l.In, l.Kept, l.High, l.Seconds, l.StepSeconds, l.Bytes, l.Rounds, mark)
		}
		fmt.Fprintf(w, "keys %.1f s, input %.1f s, head %.1f s; measured layers %.1f s; all layers %.1f s\n",
			v.KeysSeconds, v.InputSeconds, v.HeadSeconds, v.LayerSeconds, v.AllSeconds)
		fmt.Fprintf(w, "bytes measured %d (sent %d, received %d), %d rounds; all layers %d bytes, %d rounds\n",
			v.BytesSent+v.BytesReceived, v.BytesSent, v.BytesReceived, v.Rounds, v.AllBytes, v.AllRounds)
		fmt.Fprintf(w, "modelled LAN (%g Gbps, %g ms) %.1f s, WAN (%g Gbps, %g ms) %.1f s\n",
			r.LAN.Gbps, r.LAN.RTTms, v.LANSeconds, r.WAN.Gbps, r.WAN.RTTms, v.WANSeconds)
	}
	fmt.Fprintf(w, "\nspeed-up of pruning + degree reduction: %.2fx on the measured layers, %.2fx on the whole inference", r.Speedup, r.SpeedupAll)
	if r.Measured < r.Layers {
		fmt.Fprint(w, " (extrapolated)")
	}
	fmt.Fprintf(w, "; modelled LAN %.2fx, WAN %.2fx\n", r.LAN.Speedup, r.WAN.Speedup)
	if len(r.Variants) > 2 {
		pr, h := r.Variants[1], r.Variants[2]
		fmt.Fprintf(w, "hiding the length (kept counts rounded up to multiples of %d): %.1f s instead of %.1f s on the whole inference (%+.1f%%), %d bytes instead of %d (%+.1f%%)\n",
			r.HideLength, h.AllSeconds, pr.AllSeconds, 100*(h.AllSeconds/pr.AllSeconds-1), h.AllBytes, pr.AllBytes, 100*(float64(h.AllBytes)/float64(pr.AllBytes)-1))
	}
}

// Chart draws the per-layer time (top) and the rows entering each layer
// (bottom) of both variants.
func (r *Record) Chart() (*image.RGBA, error) {
	var times, rows []plot.Series
	for i, v := range r.Variants {
		ts := plot.Series{Name: v.Name + " seconds", Color: plot.Palette[i%len(plot.Palette)], Line: true}
		rs := plot.Series{Name: v.Name + " rows in", Color: plot.Palette[i%len(plot.Palette)], Line: true}
		for _, l := range v.Layers {
			label := ""
			if l.Extrapolated {
				label = "est."
			}
			ts.Points = append(ts.Points, plot.Point{X: float64(l.Layer), Y: l.Seconds, Label: label})
			rs.Points = append(rs.Points, plot.Point{X: float64(l.Layer), Y: float64(l.In)})
		}
		times, rows = append(times, ts), append(rows, rs)
	}
	top := &plot.Chart{Title: fmt.Sprintf("%s n=%d: time per layer (%s)", r.Name, r.N, r.Preset), XLabel: "layer", YLabel: "seconds", Series: times, Height: 420}
	bottom := &plot.Chart{Title: "rows entering each layer", XLabel: "layer", YLabel: "rows", Series: rows, Height: 360}
	a, err := top.Image()
	if err != nil {
		return nil, err
	}
	b, err := bottom.Image()
	if err != nil {
		return nil, err
	}
	out := image.NewRGBA(image.Rect(0, 0, max(a.Bounds().Dx(), b.Bounds().Dx()), a.Bounds().Dy()+b.Bounds().Dy()))
	draw.Draw(out, a.Bounds(), a, image.Point{}, draw.Src)
	draw.Draw(out, b.Bounds().Add(image.Pt(0, a.Bounds().Dy())), b, image.Point{}, draw.Src)
	return out, nil
}
