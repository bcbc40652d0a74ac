package sharedmul

import (
	"math/big"
	"math/rand/v2"
	"testing"

	"github.com/cipherprune/cipherprune/ckks/polymat"
	"github.com/cipherprune/cipherprune/mpcbridge/matmul"
)

// TestRounder checks the output codec against big.Int on N12 and N13:
// y = min(round(c/2^k), floor((Q-1)/2^k)) for c at the ends of [0, Q) and
// at random, y·2^k back within 2^(k-1) of c (2^k at the clamped end), and
// y through the bit writer and reader.
func TestRounder(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for _, tt := range []struct {
		name string
		lit  polymat.ParametersLiteral
		k    int
	}{
		{"N13/k=15", polymat.N13, 15},
		{"N13/k=0", polymat.N13, 0},
		{"N12/k=15", polymat.N12, 15},
		{"N13/k=70", polymat.N13, 70},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rp, err := polymat.NewParametersFromLiteral(tt.lit)
			if err != nil {
				t.Fatal(err)
			}
			rd, err := newRounder(rp, tt.k)
			if err != nil {
				t.Fatal(err)
			}
			q := rp.Q()
			top := new(big.Int).Rsh(new(big.Int).Sub(q, big.NewInt(1)), uint(tt.k))
			half := new(big.Int).Lsh(big.NewInt(1), uint(max(tt.k, 1)-1))
			cs := []*big.Int{big.NewInt(0), big.NewInt(1), new(big.Int).Sub(q, big.NewInt(1)), new(big.Int).Sub(q, half), new(big.Int).Rsh(q, 1)}
			for range 200 {
				c := new(big.Int).Lsh(new(big.Int).SetUint64(r.Uint64()), 64)
				cs = append(cs, c.Or(c, new(big.Int).SetUint64(r.Uint64())).Mod(c, q))
			}
			res := make([]uint64, rp.Limbs())
			back := make([][]uint64, rp.Limbs())
			for l := range back {
				back[l] = make([]uint64, 1)
			}
			for _, c := range cs {
				for l, ql := range rp.Moduli() {
					res[l] = new(big.Int).Mod(c, new(big.Int).SetUint64(ql)).Uint64()
				}
				hi, lo := rd.round(res)
				want := new(big.Int).Add(c, half)
				if tt.k == 0 {
					want.Set(c)
				}
				want.Rsh(want, uint(tt.k))
				if want.Cmp(top) > 0 {
					want.Set(top)
				}
				got := new(big.Int).Lsh(new(big.Int).SetUint64(hi), 64)
				got.Or(got, new(big.Int).SetUint64(lo))
				if got.Cmp(want) != 0 {
					t.Fatalf("c = %v: round %v, want %v", c, got, want)
				}
				w := matmul.NewBitWriter(nil)
				rd.write(w, hi, lo)
				hi2, lo2 := rd.read(matmul.NewBitReader(w.Flush()))
				if hi2 != hi || lo2 != lo || !rd.valid(hi, lo) {
					t.Fatalf("c = %v: %d bits read back as (%d, %d), want (%d, %d)", c, rd.width, hi2, lo2, hi, lo)
				}
				rd.expand(hi, lo, back, 0)
				v := new(big.Int).Lsh(got, uint(tt.k))
				for l, ql := range rp.Moduli() {
					if w := new(big.Int).Mod(v, new(big.Int).SetUint64(ql)).Uint64(); back[l][0] != w {
						t.Fatalf("c = %v: expand limb %d = %d, want %d", c, l, back[l][0], w)
					}
				}
				if d := new(big.Int).Sub(c, v); d.CmpAbs(new(big.Int).Lsh(half, 1)) > 0 || (c.Cmp(new(big.Int).Sub(q, half)) < 0 && d.CmpAbs(half) > 0) {
					t.Fatalf("c = %v: y·2^k = %v, off by %v", c, v, d)
				}
			}
		})
	}
}
