package sharedmul

import (
	"encoding/binary"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/cipherprune/cipherprune/ckks/polymat"
)

// TestDecoders feeds the decoders well-formed messages with one field
// broken at a time and checks that each is refused with an error that
// names what was wrong.
func TestDecoders(t *testing.T) {
	tc := newTestContext(t)
	rp := tc.p.ring
	rq := rp.RingQ()
	lay, err := NewLayout(rp, polymat.Dims{Rows: 5, In: 17, Out: 9}, 2, polymat.Block{D0: 2, D1: 4, D2: 3})
	if err != nil {
		t.Fatal(err)
	}
	seed := make([]byte, polymat.SeedSize)
	in := encodeInput(rp, lay, 3, seed, rq.NewPoly())
	o := lay.Outputs() - 1 // an edge block, fewer targets
	targets := lay.AppendTargets(nil, o)
	c := rq.NewPoly()
	out := tc.p.encodeOutput(lay, o, targets, c, c)
	// The input encoder writes any value of the width: residues at or
	// over their prime, as a peer could send them.
	bad := rq.NewPoly()
	bad.Coeffs[0][1] = rp.Moduli()[0]
	badIn := encodeInput(rp, lay, 3, seed, bad)
	// An output coefficient of all ones is over floor((Q-1)/2^k).
	ones := func(k int) []byte {
		b := append([]byte(nil), out...)
		w := tc.p.OutputWidth()
		for bit := headerSize*8 + k*w; bit < headerSize*8+(k+1)*w; bit++ {
			b[bit/8] |= 1 << (bit % 8)
		}
		return b
	}
	if len(out) != tc.p.outputBytes(lay, o) {
		t.Fatalf("output message of %d bytes, formula %d", len(out), tc.p.outputBytes(lay, o))
	}
	mod := func(b []byte, f func([]byte)) []byte {
		b = append([]byte(nil), b...)
		f(b)
		return b
	}
	for _, tt := range []struct {
		name, want string
		input      bool
		b          []byte
	}{
		{"input/ok", "", true, in},
		{"input/short", "bytes, want", true, in[:len(in)-1]},
		{"input/long", "bytes, want", true, append(append([]byte(nil), in...), 0)},
		{"input/rows", "Rows is 6", true, mod(in, func(b []byte) { binary.BigEndian.PutUint32(b, 6) })},
		{"input/block", "D1 is 5", true, mod(in, func(b []byte) { binary.BigEndian.PutUint32(b[16:], 5) })},
		{"input/count", "Count is 3", true, mod(in, func(b []byte) { binary.BigEndian.PutUint32(b[24:], 3) })},
		{"input/sequence", "sequence number is 4", true, mod(in, func(b []byte) { binary.BigEndian.PutUint32(b[28:], 4) })},
		{"input/residue", "c0: limb 0 coefficient 1", true, badIn},
		{"output/ok", "", false, out},
		{"output/short", "bytes, want", false, out[:len(out)-8]},
		{"output/out", "Out is 8", false, mod(out, func(b []byte) { binary.BigEndian.PutUint32(b[8:], 8) })},
		{"output/count", "Count is 1", false, mod(out, func(b []byte) { binary.BigEndian.PutUint32(b[24:], 1) })},
		{"output/sequence", "sequence number is 0", false, mod(out, func(b []byte) { binary.BigEndian.PutUint32(b[28:], 0) })},
		{"output/target", "c0 at the targets: coefficient 1 is over", false, ones(1)},
		{"output/c1", fmt.Sprintf("c1: coefficient %d is over", rp.N()-1), false, ones(len(targets) + rp.N() - 1)},
		{"output/padding", "padding", false, mod(out, func(b []byte) { b[len(b)-1] |= 0x80 })},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			if tt.input {
				_, err = decodeInput(rp, lay, 3, tt.b, rq.NewPoly())
			} else {
				_, err = tc.p.decodeOutput(lay, o, tt.b, rq.NewPoly())
			}
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("well-formed message refused: %v", err)
			case tt.want != "" && err == nil:
				t.Fatal("broken message accepted")
			case tt.want != "" && !strings.Contains(err.Error(), tt.want):
				t.Fatalf("error %q does not say %q", err, tt.want)
			}
		})
	}
}

// TestBudget pins the widths of the package documentation: BERT's Q·Kᵀ
// (In = 64) and A·V (In = 128, |A| <= 1) fit N13 with B = 4, not N12; the session bound is below
// 2^-(λ+1).
func TestBudget(t *testing.T) {
	for _, tt := range []struct {
		ring    polymat.ParametersLiteral
		lit     ParametersLiteral
		in      int
		v, beta int
		fits    bool
	}{
		{polymat.N13, ParametersLiteral{LogBoundX: 4, LogBoundY: 4}, 64, 57, 112, true},  // Q·Kᵀ
		{polymat.N13, ParametersLiteral{LogBoundX: 0, LogBoundY: 4}, 128, 54, 109, true}, // A·V
		{polymat.N13, ParametersLiteral{LogBoundX: 4, LogBoundY: 4}, 128, 58, 113, false},
		{polymat.N13, ParametersLiteral{LogBoundX: 4, LogBoundY: 4, GuardBits: 6}, 64, 59, 114, false},
		{polymat.N12, ParametersLiteral{LogBoundX: 4, LogBoundY: 4}, 64, 57, 112, false},
		{polymat.N12, ParametersLiteral{LogBoundX: 3, LogBoundY: 3, GuardBits: 2}, 64, 49, 104, true},
	} {
		rp, err := polymat.NewParametersFromLiteral(tt.ring)
		if err != nil {
			t.Fatal(err)
		}
		p, err := NewParameters(rp, tt.lit)
		if err != nil {
			t.Fatal(err)
		}
		lay, err := NewLayout(rp, polymat.Dims{Rows: 128, In: tt.in, Out: 128}, 1, polymat.Block{D0: 16, D1: 8, D2: 16})
		if err != nil {
			t.Fatal(err)
		}
		if v, b := p.ValueBits(lay), p.MaskBits(lay); v != tt.v || b != tt.beta {
			t.Errorf("N = %d, %+v, In = %d: V = %d, β = %d, want %d, %d", rp.N(), tt.lit, tt.in, v, b, tt.v, tt.beta)
		}
		if err := p.CheckLayout(lay); (err == nil) != tt.fits {
			t.Errorf("N = %d, %+v, In = %d: CheckLayout = %v, want fits = %t", rp.N(), tt.lit, tt.in, err, tt.fits)
		}
		if sb := p.SessionBound(lay); sb > math.Exp2(-float64(p.lit.Lambda+1)) {
			t.Errorf("session bound %g over 2^-%d", sb, p.lit.Lambda+1)
		}
	}
}
