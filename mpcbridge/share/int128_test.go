package share

import (
	"math"
	"math/big"
	"math/rand/v2"
	"testing"

	"github.com/tuneinsight/lattigo/v5/ring"

	"github.com/cipherprune/cipherprune/ckks"
)

func randInt128(r *rand.Rand) Int128 {
	x := Int128{Hi: r.Uint64(), Lo: r.Uint64()}
	switch r.IntN(4) { // also small and medium values
	case 0:
		x.Hi = uint64(int64(x.Lo) >> 63)
	case 1:
		x.Hi = uint64(int64(x.Hi) >> 40)
	}
	return x
}

func TestInt128(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 11))
	two128 := new(big.Int).Lsh(big.NewInt(1), 128)
	wrap := func(z *big.Int) *big.Int { // to [-2^127, 2^127)
		z.Mod(z, two128)
		if z.Bit(127) == 1 {
			z.Sub(z, two128)
		}
		return z
	}
	edge := []Int128{{}, {Lo: 1}, {Hi: ^uint64(0), Lo: ^uint64(0)}, {Hi: 1 << 63}, {Hi: 1<<63 - 1, Lo: ^uint64(0)}}
	for i := 0; i < 20000; i++ {
		var x, y Int128
		if i < len(edge)*len(edge) {
			x, y = edge[i/len(edge)], edge[i%len(edge)]
		} else {
			x, y = randInt128(r), randInt128(r)
		}
		bx, by := x.Big(nil), y.Big(nil)
		if got, ok := Int128FromBig(bx); !ok || got != x {
			t.Fatalf("Int128FromBig(Big(%v)) = %v, %v", bx, got, ok)
		}
		if got, want := x.Add(y).Big(nil), wrap(new(big.Int).Add(bx, by)); got.Cmp(want) != 0 {
			t.Fatalf("%v + %v = %v, want %v", bx, by, got, want)
		}
		if got, want := x.Sub(y).Big(nil), wrap(new(big.Int).Sub(bx, by)); got.Cmp(want) != 0 {
			t.Fatalf("%v - %v = %v, want %v", bx, by, got, want)
		}
		if got, want := x.Cmp(y), bx.Cmp(by); got != want {
			t.Fatalf("Cmp(%v, %v) = %d, want %d", bx, by, got, want)
		}
		if got, want := x.Sign(), bx.Sign(); got != want {
			t.Fatalf("Sign(%v) = %d", bx, got)
		}
		if got, want := x.BitLen(), new(big.Int).Abs(bx).BitLen(); got != want {
			t.Fatalf("BitLen(%v) = %d, want %d", bx, got, want)
		}
		if got, want := x.Float64(), mustFloat(bx); got != want {
			t.Fatalf("Float64(%v) = %v, want %v", bx, got, want)
		}
		q := r.Uint64N(1<<61) + 3
		if got, want := x.mod(q), new(big.Int).Mod(bx, new(big.Int).SetUint64(q)).Uint64(); got != want {
			t.Fatalf("%v mod %d = %d, want %d", bx, q, got, want)
		}
		k := r.Uint64()
		if got, want := x.mulU64(k).Big(nil), wrap(new(big.Int).Mul(bx, new(big.Int).SetUint64(k))); got.Cmp(want) != 0 {
			t.Fatalf("%v * %d = %v, want %v", bx, k, got, want)
		}
	}
	if _, ok := Int128FromBig(new(big.Int).Lsh(big.NewInt(1), 127)); ok {
		t.Fatal("2^127 accepted")
	}
	if v, ok := Int128FromBig(new(big.Int).Neg(new(big.Int).Lsh(big.NewInt(1), 127))); !ok || v != (Int128{Hi: 1 << 63}) {
		t.Fatal("-2^127 refused")
	}
	if v := Int128FromInt64(-5); v.Big(nil).Int64() != -5 || v.String() != "-5" {
		t.Fatalf("Int128FromInt64(-5) = %v", v)
	}
}

func mustFloat(b *big.Int) float64 {
	f, _ := new(big.Float).SetInt(b).Float64()
	if math.IsInf(f, 0) {
		panic("inf")
	}
	return f
}

// TestRingInfo checks the packed polynomial codec and the CRT
// reconstruction against big integers.
func TestRingInfo(t *testing.T) {
	for _, name := range testPresets {
		t.Run(name, func(t *testing.T) {
			params := testParams(t, name)
			ri := newRingInfo(params)
			r := rand.New(rand.NewPCG(12, 12))
			for _, level := range []int{0, 2, params.MaxLevel()} {
				ringQ := params.RingQ().AtLevel(level)
				// Centred values below Q/4 (and 2^126) of every size.
				vals := make([]Int128, params.N())
				for j := range vals {
					vals[j] = randInt128(r)
					lim := min(ringQ.Modulus().BitLen()-3, 126)
					for vals[j].BitLen() > lim {
						vals[j] = Int128{Hi: uint64(int64(vals[j].Hi) >> 1), Lo: vals[j].Lo>>1 | vals[j].Hi<<63}
					}
				}
				p := ringQ.NewPoly()
				ri.lift(level, vals, p)
				bigs := make([]*big.Int, params.N())
				for j := range bigs {
					bigs[j] = new(big.Int)
				}
				ringQ.PolyToBigintCentered(p, 1, bigs)
				back := make([]Int128, params.N())
				if err := ri.toInt128(level, p, back); err != nil {
					t.Fatal(err)
				}
				for j := range vals {
					if back[j] != vals[j] || bigs[j].Cmp(vals[j].Big(nil)) != 0 {
						t.Fatalf("level %d coefficient %d: lift/toInt128 gave %v, big %v, want %v", level, j, back[j], bigs[j], vals[j])
					}
				}
				packed := ri.appendPoly(nil, level, p)
				if len(packed) != ri.polyBytes(level) {
					t.Fatalf("packed %d bytes, want %d", len(packed), ri.polyBytes(level))
				}
				q := ring.NewPoly(params.N(), level)
				if err := ri.readPoly(packed, level, q); err != nil {
					t.Fatal(err)
				}
				if !q.Equal(&p) {
					t.Fatalf("level %d: pack/unpack mismatch", level)
				}
			}
			// A value near Q/2 is refused, not misread.
			near := ring.NewPoly(params.N(), 1)
			half := new(big.Int).Rsh(params.RingQ().AtLevel(1).Modulus(), 1)
			bigs := make([]*big.Int, params.N())
			for j := range bigs {
				bigs[j] = half
			}
			params.RingQ().AtLevel(1).SetCoefficientsBigint(bigs, near)
			if err := ri.toInt128(1, near, make([]Int128, params.N())); err == nil {
				t.Fatal("a coefficient at Q/2 was accepted")
			}
		})
	}
}

func TestParameters(t *testing.T) {
	p, err := NewParameters(ParametersLiteral{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Lambda() != DefaultLambda || p.FracBits() != DefaultFracBits || p.MaxBatch() != DefaultMaxBatch || p.LogBound() != 0 {
		t.Fatalf("defaults: %+v", p.Literal())
	}
	for _, lit := range []ParametersLiteral{
		{Lambda: 39}, {FracBits: 61}, {FracBits: -1}, {MaxBatch: MaxMaxBatch + 1}, {LogBound: 49}, {LogBound: -33},
	} {
		if _, err := NewParameters(lit); err == nil {
			t.Errorf("%+v accepted", lit)
		}
	}
	// The mask level of every preset, for the evaluator's refresh floor.
	for _, preset := range ckks.Presets() {
		params, err := preset.Params()
		if err != nil {
			t.Fatal(err)
		}
		for _, B := range []int{0, 4, 8} {
			p, _ := NewParameters(ParametersLiteral{LogBound: B})
			level, b, err := p.MaskLevel(params, params.DefaultScale(), params.MaxLevel())
			if err != nil {
				t.Fatalf("%s B=%d: %v", preset.Name, B, err)
			}
			t.Logf("%s B=%d: mask β=%d bits, mask level %d (Q_l %d bits), shares <= %d bits (typically %d)", preset.Name, B, b, level,
				params.RingQ().AtLevel(level).Modulus().BitLen(), p.shareBits(params.LogN(), b, params.DefaultScale()), p.TypicalShareBits(params.LogN(), b, params.DefaultScale()))
		}
	}
}
