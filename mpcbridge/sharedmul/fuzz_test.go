package sharedmul

import (
	"bytes"
	"testing"

	"github.com/cipherprune/cipherprune/ckks/polymat"
)

// fuzzContext returns parameters on the smallest ring with two primes
// (N = 2^11, primes of 27 and 26 bits: messages of a few kB, which the fuzzer
// mutates quickly) and a small layout of several products whose edge
// blocks straddle two of them.
func fuzzContext(tb testing.TB) (Parameters, Layout) {
	tb.Helper()
	rp, err := polymat.NewParametersFromLiteral(polymat.ParametersLiteral{LogN: 11, LogQ: []int{27, 26}})
	if err != nil {
		tb.Fatal(err)
	}
	p, err := NewParameters(rp, ParametersLiteral{})
	if err != nil {
		tb.Fatal(err)
	}
	lay, err := NewLayout(rp, polymat.Dims{Rows: 3, In: 5, Out: 2}, 3, polymat.Block{D0: 2, D1: 4, D2: 4})
	if err != nil {
		tb.Fatal(err)
	}
	return p, lay
}

// FuzzDecodeInput feeds arbitrary payloads to the server's decoder of
// MsgInput; an accepted message must re-encode identically.
func FuzzDecodeInput(f *testing.F) {
	p, lay := fuzzContext(f)
	rp := p.ring
	seed := bytes.Repeat([]byte{7}, polymat.SeedSize)
	c0 := rp.RingQ().NewPoly()
	c0.Coeffs[0][3], c0.Coeffs[1][rp.N()-1] = 12345, rp.Moduli()[1]-1
	valid := encodeInput(rp, lay, 1, seed, c0)
	f.Add(valid)
	f.Add(valid[:len(valid)/2])
	f.Add(valid[:headerSize])
	f.Fuzz(func(t *testing.T, payload []byte) {
		got := rp.RingQ().NewPoly()
		s, err := decodeInput(rp, lay, 1, payload, got)
		if err != nil {
			return
		}
		if again := encodeInput(rp, lay, 1, s, got); !bytes.Equal(again, payload) {
			t.Fatalf("accepted input re-encodes differently (%d vs %d bytes)", len(again), len(payload))
		}
	})
}

// FuzzDecodeOutput feeds arbitrary payloads to the client's decoder of
// MsgOutput (an edge output, fewer targets); an accepted message must
// re-encode identically from the residues it decodes to.
func FuzzDecodeOutput(f *testing.F) {
	p, lay := fuzzContext(f)
	rp := p.ring
	rq := rp.RingQ()
	o := lay.Outputs() - 1
	targets := lay.AppendTargets(nil, o)
	c0, c1 := rq.NewPoly(), rq.NewPoly()
	for l, q := range rp.Moduli() {
		c0.Coeffs[l][targets[0]], c1.Coeffs[l][0], c1.Coeffs[l][rp.N()-1] = q-1, 99, q/3
	}
	valid := p.encodeOutput(lay, o, targets, c0, c1)
	f.Add(valid)
	f.Add(valid[:len(valid)-1])
	f.Add(bytes.Repeat([]byte{0xff}, len(valid)))
	f.Fuzz(func(t *testing.T, payload []byte) {
		got1 := rq.NewPoly()
		got0, err := p.decodeOutput(lay, o, payload, got1)
		if err != nil {
			return
		}
		// The targets' c0 back at their exponents.
		p0 := rq.NewPoly()
		for l := range got0 {
			for k, t := range targets {
				p0.Coeffs[l][t] = got0[l][k]
			}
		}
		if again := p.encodeOutput(lay, o, targets, p0, got1); !bytes.Equal(again, payload) {
			t.Fatalf("accepted output re-encodes differently (%d vs %d bytes)", len(again), len(payload))
		}
	})
}
