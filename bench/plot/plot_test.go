package plot

import (
	"bytes"
	"image"
	"image/png"
	"math"
	"strings"
	"testing"
)

func TestNiceTicks(t *testing.T) {
	tests := []struct {
		lo, hi float64
		n      int
		want   []float64
	}{
		{0, 1, 6, []float64{0, 0.2, 0.4, 0.6, 0.8, 1}},
		{0.13, 0.97, 5, []float64{0, 0.5, 1}},
		{78.2, 81.9, 5, []float64{78, 79, 80, 81, 82}},
		{-3, 7, 3, []float64{-5, 0, 5, 10}},
		{2, 2, 5, []float64{2}},
	}
	for _, tc := range tests {
		got := NiceTicks(tc.lo, tc.hi, tc.n)
		if len(got) != len(tc.want) {
			t.Errorf("NiceTicks(%v, %v, %d) = %v, want %v", tc.lo, tc.hi, tc.n, got, tc.want)
			continue
		}
		for i := range got {
			if math.Abs(got[i]-tc.want[i]) > 1e-12 {
				t.Errorf("NiceTicks(%v, %v, %d) = %v, want %v", tc.lo, tc.hi, tc.n, got, tc.want)
				break
			}
		}
	}
}

func TestWritePNG(t *testing.T) {
	c := &Chart{
		Title: "accuracy vs cost", XLabel: "relative cost", YLabel: "accuracy (%)",
		Series: []Series{
			{Name: "learned", Color: Palette[0], Line: true, Points: []Point{{0.2, 78, "λ=3"}, {0.5, 80, ""}, {1, 81, "λ=0"}}},
			{Name: "halving", Color: Palette[3], Points: []Point{{0.6, 79, ""}}},
		},
	}
	var a, b bytes.Buffer
	if err := c.WritePNG(&a); err != nil {
		t.Fatal(err)
	}
	if err := c.WritePNG(&b); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Error("two renderings differ")
	}
	img, err := png.Decode(bytes.NewReader(a.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if img.Bounds() != image.Rect(0, 0, 1100, 600) {
		t.Fatalf("bounds %v", img.Bounds())
	}
	count := map[[3]uint32]int{}
	for y := 0; y < 600; y++ {
		for x := 0; x < 1100; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			count[[3]uint32{r >> 8, g >> 8, bl >> 8}]++
		}
	}
	for _, s := range c.Series {
		col := [3]uint32{uint32(s.Color.R), uint32(s.Color.G), uint32(s.Color.B)}
		if count[col] < 81 {
			t.Errorf("series %q: %d pixels of its colour, want at least a marker's 81", s.Name, count[col])
		}
	}
	if count[[3]uint32{0, 0, 0}] < 1000 {
		t.Errorf("only %d black pixels: axes and text missing", count[[3]uint32{0, 0, 0}])
	}
}

func TestChartErrors(t *testing.T) {
	tests := []struct {
		name  string
		chart Chart
		want  string
	}{
		{"empty", Chart{}, "no points"},
		{"NaN", Chart{Series: []Series{{Name: "s", Points: []Point{{math.NaN(), 1, ""}}}}}, "non-finite"},
		{"tiny", Chart{Width: 10, Height: 10, Series: []Series{{Points: []Point{{1, 1, ""}}}}}, "smaller"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := tc.chart.Image(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestDrawText(t *testing.T) {
	img := image.NewRGBA(image.Rect(0, 0, 40, 10))
	DrawText(img, 0, 0, "1a?", 1, black)
	if TextWidth("1a?", 1) != 17 || TextHeight(2) != 14 {
		t.Errorf("width %d height %d", TextWidth("1a?", 1), TextHeight(2))
	}
	if img.RGBAAt(2, 0) != black || img.RGBAAt(0, 0) == black { // '1' has ink at column 2 of row 0 only
		t.Error("glyph '1' drawn wrong")
	}
	for r, g := range glyphs {
		for _, row := range g {
			if len(row) != glyphW {
				t.Errorf("glyph %q has a row of %d columns", r, len(row))
			}
		}
	}
}
