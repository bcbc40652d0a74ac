package gc

import (
	"math"
	"slices"
	"testing"
)

func TestNewParams(t *testing.T) {
	for _, tc := range []struct {
		name string
		lit  ParamsLiteral
		ok   bool
	}{
		{"default", DefaultParamsLiteral, true},
		{"K=2/F=0", ParamsLiteral{K: 2}, true},
		{"K=32/F=16/ChouOrlandi", ParamsLiteral{K: 32, F: 16, OT: ChouOrlandi}, true},
		{"custom-buckets", ParamsLiteral{K: 40, F: 8, Buckets: []int{24, 40, 512}}, true},
		{"zero", ParamsLiteral{}, false},
		{"K=1", ParamsLiteral{K: 1}, false},
		{"K=65", ParamsLiteral{K: 65}, false},
		{"F=K", ParamsLiteral{K: 16, F: 16}, false},
		{"F<0", ParamsLiteral{K: 16, F: -1}, false},
		{"bad-OT", ParamsLiteral{K: 16, OT: 7}, false},
		{"no-buckets", ParamsLiteral{K: 16, Buckets: []int{}}, false},
		{"bucket-not-multiple-of-8", ParamsLiteral{K: 16, Buckets: []int{12}}, false},
		{"bucket-too-big", ParamsLiteral{K: 16, Buckets: []int{8, 1024}}, false},
		{"buckets-unsorted", ParamsLiteral{K: 16, Buckets: []int{16, 8}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := NewParams(tc.lit)
			if (err == nil) != tc.ok {
				t.Fatalf("NewParams(%+v): err = %v, want ok = %v", tc.lit, err, tc.ok)
			}
			if !tc.ok {
				return
			}
			q, err := NewParams(p.Literal())
			if err != nil || !q.Equal(p) {
				t.Fatalf("Literal round trip: %v, equal = %v", err, q.Equal(p))
			}
		})
	}
}

func TestParamsHashDistinguishes(t *testing.T) {
	lits := []ParamsLiteral{
		{K: 64, F: 16}, {K: 63, F: 16}, {K: 64, F: 15}, {K: 64, F: 16, OT: ChouOrlandi},
		{K: 64, F: 16, Buckets: []int{8, 16}}, {K: 64, F: 16, Buckets: []int{8, 24}},
	}
	for i := range lits {
		for j := range lits {
			pi, pj := mustParams(t, lits[i]), mustParams(t, lits[j])
			if pi.Equal(pj) != (i == j) {
				t.Errorf("%+v vs %+v: Equal = %v", lits[i], lits[j], pi.Equal(pj))
			}
		}
	}
	// Nil Buckets means the default list.
	if !mustParams(t, ParamsLiteral{K: 8}).Equal(mustParams(t, ParamsLiteral{K: 8, Buckets: defaultBuckets})) {
		t.Error("nil Buckets differs from defaultBuckets")
	}
}

func TestBucket(t *testing.T) {
	p := mustParams(t, DefaultParamsLiteral)
	for _, tc := range []struct{ m, want int }{{0, 8}, {1, 8}, {8, 8}, {9, 16}, {127, 128}, {128, 128}, {129, 256}, {512, 512}} {
		if b, err := p.Bucket(tc.m); err != nil || b != tc.want {
			t.Errorf("Bucket(%d) = %d, %v; want %d", tc.m, b, err, tc.want)
		}
	}
	for _, m := range []int{-1, 513} {
		if _, err := p.Bucket(m); err == nil {
			t.Errorf("Bucket(%d): no error", m)
		}
	}
	if !slices.Equal(p.Buckets(), defaultBuckets) || p.MaxScores() != 512 {
		t.Errorf("Buckets = %v, MaxScores = %d", p.Buckets(), p.MaxScores())
	}
}

func TestEncodeDecodeGreater(t *testing.T) {
	p := mustParams(t, ParamsLiteral{K: 16, F: 8})
	for _, tc := range []struct {
		x    float64
		want uint64
		ok   bool
	}{
		{0, 0, true}, {1, 256, true}, {-1, 0xff00, true}, {0.5, 128, true}, {1.0 / 512, 1, true}, // half-way rounds away from zero
		{127.99609375, 0x7fff, true}, {-128, 0x8000, true},
		{128, 0, false}, {-128.01, 0, false}, {math.NaN(), 0, false}, {math.Inf(1), 0, false},
	} {
		got, err := p.Encode(tc.x)
		if (err == nil) != tc.ok || (tc.ok && got != tc.want) {
			t.Errorf("Encode(%g) = %#x, %v; want %#x, ok = %v", tc.x, got, err, tc.want, tc.ok)
		}
		if tc.ok && p.Decode(got) != math.Round(tc.x*256)/256 {
			t.Errorf("Decode(Encode(%g)) = %g", tc.x, p.Decode(got))
		}
	}
	// Bits above K are ignored; comparison is signed.
	for _, tc := range []struct {
		a, b uint64
		want bool
	}{
		{1, 0, true}, {0, 1, false}, {1, 1, false}, {0xffff, 0, false}, {0, 0xffff, true},
		{0x7fff, 0x8000, true}, {0x8000, 0x7fff, false}, {0xabcd0001, 0x1230000, true},
	} {
		if got := p.Greater(tc.a, tc.b); got != tc.want {
			t.Errorf("Greater(%#x, %#x) = %v", tc.a, tc.b, got)
		}
	}
	p64 := mustParams(t, DefaultParamsLiteral)
	if x, err := p64.Encode(-2.5); err != nil || p64.Decode(x) != -2.5 || x != uint64(0xfffffffffffd8000) {
		t.Errorf("K=64 Encode(-2.5) = %#x, %v", x, err)
	}
	if !p64.Greater(0, math.MaxUint64) || p64.Greater(1<<63, 0) {
		t.Error("K=64 signed comparison wrong")
	}
}
