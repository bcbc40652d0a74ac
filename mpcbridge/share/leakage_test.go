package share

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"

	"github.com/cipherprune/cipherprune/ckks"
)

// stats are simple statistics of a sample.
type stats struct{ mean, variance float64 }

func sampleStats(x []float64) stats {
	var s, s2 float64
	for _, v := range x {
		s += v
		s2 += v * v
	}
	n := float64(len(x))
	m := s / n
	return stats{mean: m, variance: s2/n - m*m}
}

func correlation(x, y []float64) float64 {
	sx, sy := sampleStats(x), sampleStats(y)
	if sx.variance == 0 || sy.variance == 0 {
		return 0
	}
	var c float64
	for i := range x {
		c += (x[i] - sx.mean) * (y[i] - sy.mean)
	}
	return c / float64(len(x)) / math.Sqrt(sx.variance*sy.variance)
}

// ksStatistic is the two-sample Kolmogorov-Smirnov distance.
func ksStatistic(a, b []float64) float64 {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	var d float64
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		if a[i] <= b[j] {
			i++
		} else {
			j++
		}
		d = math.Max(d, math.Abs(float64(i)/float64(len(a))-float64(j)/float64(len(b))))
	}
	return d
}

// TestLeakage checks, over many runs, that what the client decrypts (the
// masked polynomial p = m + e + M) has the same simple statistics for two
// very different messages, that it is uncorrelated with the message, and
// that the re-randomized c1 is uncorrelated with the original c1.
func TestLeakage(t *testing.T) {
	tc := newTestContext(t, ckks.InsecureTest11, ParametersLiteral{LogBound: 4})
	const runs = 48
	n := tc.params.N()
	slots := tc.params.MaxSlots()
	r := rand.New(rand.NewPCG(10, 10))
	messages := map[string][]float64{
		"zeros": make([]float64, slots),
		"large": randomVector(r, slots, 4),
	}
	for i, v := range messages["large"] { // push every value to ±2^B
		messages["large"][i] = math.Copysign(15.9, v)
	}
	samples := map[string][]float64{}
	for name, x := range messages {
		var us, ms, c1old, c1new []float64
		for run := 0; run < runs; run++ {
			ct := tc.computedCiphertext(t, x, 3)
			sent, masks, err := tc.server.maskBatch(bg(), []*rlwe.Ciphertext{ct}, false)
			if err != nil {
				t.Fatal(err)
			}
			o, err := tc.client.open(&sent[0])
			if err != nil {
				t.Fatal(err)
			}
			// The message polynomial m + e, for the correlation.
			plain := tc.dec.DecryptNew(ct)
			ringQ := tc.params.RingQ().AtLevel(plain.Level())
			ringQ.INTT(plain.Value, plain.Value)
			me := make([]Int128, n)
			if err := tc.client.ri.toInt128(plain.Level(), plain.Value, me); err != nil {
				t.Fatal(err)
			}
			scale := math.Ldexp(1, -masks[0].bits)
			for j := 0; j < n; j++ {
				us = append(us, o.p[j].Float64()*scale)
				ms = append(ms, me[j].Float64())
			}
			// c1 before and after re-randomization, limb 0, in the
			// coefficient domain.
			old := ringQ.NewPoly()
			ringQ.INTT(ct.Value[1], old)
			nw := tc.params.RingQ().AtLevel(sent[0].level).NewPoly()
			tc.params.RingQ().AtLevel(sent[0].level).INTT(sent[0].c1, nw)
			q0 := float64(tc.params.Q()[0])
			for j := 0; j < n; j++ {
				c1old = append(c1old, float64(old.Coeffs[0][j])/q0)
				c1new = append(c1new, float64(nw.Coeffs[0][j])/q0)
			}
		}
		s := sampleStats(us)
		total := float64(len(us))
		corr := correlation(us, ms)
		c1corr := correlation(c1old, c1new)
		var minU, maxU float64
		for _, u := range us {
			minU, maxU = math.Min(minU, u), math.Max(maxU, u)
		}
		t.Logf("%s: %d coefficients: mean %.2e, variance %.4f (three uniforms: 1), range [%.4f, %.4f], corr(p, m+e) %.2e, corr(c1 old, c1 new) %.2e",
			name, len(us), s.mean, s.variance, minU, maxU, corr, c1corr)
		tol := 5 / math.Sqrt(total)
		if math.Abs(s.mean) > tol {
			t.Errorf("%s: mean %.3g beyond %.3g", name, s.mean, tol)
		}
		// The sum of three uniforms on [-1, 1): variance 1, and the
		// variance of its square 2.6 - 1 = 1.6.
		if math.Abs(s.variance-1) > 5*1.27/math.Sqrt(total) {
			t.Errorf("%s: variance %.4f, want 1", name, s.variance)
		}
		if math.Abs(corr) > tol {
			t.Errorf("%s: correlation with the message %.3g beyond %.3g", name, corr, tol)
		}
		if math.Abs(c1corr) > tol {
			t.Errorf("%s: re-randomized c1 correlated with the original: %.3g", name, c1corr)
		}
		// |S| > 2.5 has probability 2·0.5³/48 = 0.5%.
		if minU < -3 || maxU >= 3.0001 || minU > -2.5 || maxU < 2.5 {
			t.Errorf("%s: masked values in [%.4f, %.4f], want within [-3, 3) and beyond ±2.5", name, minU, maxU)
		}
		samples[name] = us
	}
	a, b := samples["zeros"], samples["large"]
	ks := ksStatistic(a[:40000], b[:40000])
	crit := 1.95 * math.Sqrt(2.0/40000) // alpha = 0.001
	t.Logf("KS distance zeros vs large: %.4f (critical %.4f)", ks, crit)
	if ks > crit {
		t.Errorf("KS distance %.4f > %.4f: the masked polynomials are distinguishable", ks, crit)
	}
	da, db := sampleStats(a), sampleStats(b)
	if d := math.Abs(da.mean - db.mean); d > 7/math.Sqrt(float64(len(a))) {
		t.Errorf("means differ by %.3g", d)
	}
}
