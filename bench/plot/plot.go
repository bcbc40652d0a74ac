// Package plot draws small line and scatter charts as PNG images with the
// standard library only (image, image/png and a built-in 5x7 bitmap font),
// for the result plots the project writes (accuracy against modelled cost,
// timings). Output is deterministic: the same chart gives the same bytes.
package plot

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"strconv"
)

// Point is one data point; Label, if set, is drawn beside it.
type Point struct {
	X, Y  float64
	Label string
}

// Series is a named set of points drawn in one colour, joined by lines if
// Line is set (in the order given), always marked by squares.
type Series struct {
	Name   string
	Points []Point
	Color  color.RGBA
	Line   bool
}

// Chart is a chart with axes, ticks, a title and a legend (right of the
// plot). Width and Height default to 1100 x 600.
type Chart struct {
	Title, XLabel, YLabel string
	Series                []Series
	Width, Height         int
}

// Palette holds distinguishable colours for series.
var Palette = []color.RGBA{
	{31, 119, 180, 255}, {255, 127, 14, 255}, {44, 160, 44, 255}, {214, 39, 40, 255},
	{148, 103, 189, 255}, {140, 86, 75, 255},
}

var (
	white = color.RGBA{255, 255, 255, 255}
	black = color.RGBA{0, 0, 0, 255}
	grey  = color.RGBA{225, 225, 225, 255}
)

// Layout in pixels.
const (
	marginLeft   = 90
	marginRight  = 30
	marginTop    = 60
	marginBottom = 70
	textScale    = 2
	markerHalf   = 4
)

// Image renders the chart.
func (c *Chart) Image() (*image.RGBA, error) {
	w, h := c.Width, c.Height
	if w == 0 {
		w = 1100
	}
	if h == 0 {
		h = 600
	}
	if w < 300 || h < 200 {
		return nil, fmt.Errorf("cannot draw chart: %dx%d is smaller than 300x200", w, h)
	}
	xlo, xhi, ylo, yhi, err := c.bounds()
	if err != nil {
		return nil, err
	}
	xt, yt := NiceTicks(xlo, xhi, 6), NiceTicks(ylo, yhi, 6)
	xlo, xhi = math.Min(xlo, xt[0]), math.Max(xhi, xt[len(xt)-1])
	ylo, yhi = math.Min(ylo, yt[0]), math.Max(yhi, yt[len(yt)-1])

	img := image.NewRGBA(image.Rect(0, 0, w, h))
	fillRect(img, 0, 0, w, h, white)
	legendW := 0
	for _, s := range c.Series {
		legendW = max(legendW, TextWidth(s.Name, textScale)+40)
	}
	if legendW > w/2 {
		return nil, fmt.Errorf("cannot draw chart: legend %d pixels wide in a %d-pixel image", legendW, w)
	}
	x0, x1 := marginLeft, w-marginRight-legendW
	y0, y1 := h-marginBottom, marginTop // pixel rows of ylo and yhi
	px := func(x float64) int { return x0 + int(math.Round((x-xlo)/(xhi-xlo)*float64(x1-x0))) }
	py := func(y float64) int { return y0 - int(math.Round((y-ylo)/(yhi-ylo)*float64(y0-y1))) }

	// Grid, ticks and tick labels.
	for _, v := range xt {
		x := px(v)
		line(img, x, y1, x, y0, grey)
		line(img, x, y0, x, y0+6, black)
		s := formatTick(v, xt)
		DrawText(img, x-TextWidth(s, textScale)/2, y0+12, s, textScale, black)
	}
	for _, v := range yt {
		y := py(v)
		line(img, x0, y, x1, y, grey)
		line(img, x0-6, y, x0, y, black)
		s := formatTick(v, yt)
		DrawText(img, x0-10-TextWidth(s, textScale), y-TextHeight(textScale)/2, s, textScale, black)
	}
	line(img, x0, y0, x1, y0, black)
	line(img, x0, y0, x0, y1, black)

	// Labels and title.
	DrawText(img, (x0+x1-TextWidth(c.XLabel, textScale))/2, h-TextHeight(textScale)-12, c.XLabel, textScale, black)
	DrawText(img, 10, y1-TextHeight(textScale)-10, c.YLabel, textScale, black)
	DrawText(img, (w-TextWidth(c.Title, textScale))/2, 12, c.Title, textScale, black)

	// Series.
	for _, s := range c.Series {
		if s.Line {
			for i := 1; i < len(s.Points); i++ {
				a, b := s.Points[i-1], s.Points[i]
				thickLine(img, px(a.X), py(a.Y), px(b.X), py(b.Y), s.Color)
			}
		}
		for _, p := range s.Points {
			x, y := px(p.X), py(p.Y)
			fillRect(img, x-markerHalf, y-markerHalf, 2*markerHalf+1, 2*markerHalf+1, s.Color)
			if p.Label != "" {
				DrawText(img, x+markerHalf+4, y-markerHalf-TextHeight(1)-6, p.Label, 1, black)
			}
		}
	}

	// Legend, right of the plot area.
	ly := y1 + 10
	for _, s := range c.Series {
		if s.Name == "" {
			continue
		}
		lx := x1 + 20
		fillRect(img, lx, ly+2, 14, 10, s.Color)
		DrawText(img, lx+22, ly, s.Name, textScale, black)
		ly += TextHeight(textScale) + 10
	}
	return img, nil
}

// WritePNG renders the chart and encodes it as PNG.
func (c *Chart) WritePNG(w io.Writer) error {
	img, err := c.Image()
	if err != nil {
		return err
	}
	if err := png.Encode(w, img); err != nil {
		return fmt.Errorf("cannot encode chart: %w", err)
	}
	return nil
}

// bounds returns the data range, widened when degenerate.
func (c *Chart) bounds() (xlo, xhi, ylo, yhi float64, err error) {
	xlo, ylo = math.Inf(1), math.Inf(1)
	xhi, yhi = math.Inf(-1), math.Inf(-1)
	n := 0
	for _, s := range c.Series {
		for _, p := range s.Points {
			if math.IsNaN(p.X) || math.IsNaN(p.Y) || math.IsInf(p.X, 0) || math.IsInf(p.Y, 0) {
				return 0, 0, 0, 0, fmt.Errorf("cannot draw chart: series %q has a non-finite point (%v, %v)", s.Name, p.X, p.Y)
			}
			xlo, xhi = math.Min(xlo, p.X), math.Max(xhi, p.X)
			ylo, yhi = math.Min(ylo, p.Y), math.Max(yhi, p.Y)
			n++
		}
	}
	if n == 0 {
		return 0, 0, 0, 0, errors.New("cannot draw chart: no points")
	}
	widen := func(lo, hi float64) (float64, float64) {
		if hi-lo < 1e-12*math.Max(1, math.Abs(hi)) {
			d := math.Max(0.5, math.Abs(hi)*0.1)
			return lo - d, hi + d
		}
		pad := (hi - lo) * 0.05
		return lo - pad, hi + pad
	}
	xlo, xhi = widen(xlo, xhi)
	ylo, yhi = widen(ylo, yhi)
	return xlo, xhi, ylo, yhi, nil
}

// NiceTicks returns about n tick values covering [lo, hi] at a step of 1, 2
// or 5 times a power of ten; the first is <= lo and the last >= hi.
func NiceTicks(lo, hi float64, n int) []float64 {
	if n < 2 {
		n = 2
	}
	if !(hi > lo) {
		return []float64{lo}
	}
	raw := (hi - lo) / float64(n-1)
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	step := 10 * p
	for _, m := range []float64{1, 2, 5} {
		if m*p >= raw {
			step = m * p
			break
		}
	}
	start := math.Floor(lo/step) * step
	var out []float64
	for k := 0; ; k++ {
		v := start + float64(k)*step
		out = append(out, roundTo(v, step))
		if v >= hi-1e-9*step {
			break
		}
	}
	return out
}

// roundTo removes floating-point noise from a tick value v on a grid of step.
func roundTo(v, step float64) float64 {
	digits := max(0, -int(math.Floor(math.Log10(step))))
	s := strconv.FormatFloat(v, 'f', digits, 64)
	r, _ := strconv.ParseFloat(s, 64)
	return r
}

// formatTick prints v with as many decimals as the tick step needs.
func formatTick(v float64, ticks []float64) string {
	step := 1.0
	if len(ticks) > 1 {
		step = ticks[1] - ticks[0]
	}
	digits := max(0, -int(math.Floor(math.Log10(step)+1e-9)))
	return strconv.FormatFloat(v, 'f', digits, 64)
}

// line draws a one-pixel line from (x0, y0) to (x1, y1) (Bresenham).
func line(img *image.RGBA, x0, y0, x1, y1 int, c color.RGBA) {
	dx, dy := abs(x1-x0), -abs(y1-y0)
	sx, sy := sign(x1-x0), sign(y1-y0)
	e := dx + dy
	for {
		if (image.Point{x0, y0}).In(img.Bounds()) {
			img.SetRGBA(x0, y0, c)
		}
		if x0 == x1 && y0 == y1 {
			return
		}
		if e2 := 2 * e; e2 >= dy {
			e += dy
			x0 += sx
		} else {
			e += dx
			y0 += sy
		}
	}
}

// thickLine draws a three-pixel-wide line.
func thickLine(img *image.RGBA, x0, y0, x1, y1 int, c color.RGBA) {
	for d := -1; d <= 1; d++ {
		line(img, x0+d, y0, x1+d, y1, c)
		line(img, x0, y0+d, x1, y1+d, c)
	}
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

func sign(v int) int {
	switch {
	case v > 0:
		return 1
	case v < 0:
		return -1
	}
	return 0
}
