package ckks

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/cipherprune/cipherprune/models"
)

func TestSerialization(t *testing.T) {
	tc := newTestContext(t, InsecureTest11)
	r := rand.New(rand.NewPCG(5, 6))
	lin := &models.Linear{Weight: randMatrix(r, 40, 96, 1), Bias: randMatrix(r, 1, 40, 1).Data}
	el, err := NewEncodedLinear(lin, 16, tc.params.MaxSlots(), 0.5, 1)
	if err != nil {
		t.Fatal(err)
	}
	data, err := el.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if len(data) != el.BinarySize() {
		t.Errorf("BinarySize %d, wrote %d", el.BinarySize(), len(data))
	}
	var el2 EncodedLinear
	if err := el2.UnmarshalBinary(data); err != nil {
		t.Fatal(err)
	}
	if el2.In != el.In || el2.Out != el.Out || el2.Baby != el.Baby || el2.Scale != el.Scale || maxAbsDiff(el2.W, el.W) != 0 {
		t.Error("EncodedLinear round trip differs")
	}
	for _, cut := range []int{0, 3, 20, len(data) - 1} {
		if err := el2.UnmarshalBinary(data[:cut]); err == nil {
			t.Errorf("truncated to %d bytes: no error", cut)
		}
	}
	if err := el2.UnmarshalBinary(append(data, 0)); err == nil {
		t.Error("trailing byte: no error")
	}

	lay, _ := NewLayout(tc.params.MaxSlots(), 9, 96, 16)
	x := randMatrix(r, 9, 96, 1)
	ct, err := tc.client.EncryptMatrix(x, lay, 3)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	n, err := ct.WriteTo(&b)
	if err != nil || int(n) != ct.BinarySize() || b.Len() != ct.BinarySize() {
		t.Fatalf("WriteTo: %d bytes, %v; BinarySize %d", n, err, ct.BinarySize())
	}
	var ct2 CtMatrix
	if err := ct2.UnmarshalBinary(b.Bytes()); err != nil {
		t.Fatal(err)
	}
	got, err := tc.client.DecryptMatrix(&ct2)
	if err != nil {
		t.Fatal(err)
	}
	if d := maxAbsDiff(got, x); d > 1e-6 {
		t.Errorf("CtMatrix round trip error %g", d)
	}
	for _, cut := range []int{0, 10, 40, b.Len() - 1} {
		if err := ct2.UnmarshalBinary(b.Bytes()[:cut]); err == nil {
			t.Errorf("truncated to %d bytes: no error", cut)
		}
	}
}

// TestKeysBERTBase reports the Galois keys of BERT-base (n=128) per preset.
func TestKeysBERTBase(t *testing.T) {
	s := Shape{Rows: 128, Hidden: 768, Heads: 12, Intermediate: 3072, Labels: 2}
	for _, p := range Presets() {
		if p.Insecure {
			continue
		}
		params, err := p.Params()
		if err != nil {
			t.Fatal(err)
		}
		rep, err := Keys(params, s)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %d Galois keys x %.1f MB = %.2f GB; relin %.1f MB; ciphertext %.2f MB; input %.1f MB; masks %.1f MB",
			p.Name, rep.GaloisKeys, float64(rep.GaloisKeyBytes)/1e6, float64(rep.GaloisBytes)/1e9,
			float64(rep.RelinBytes)/1e6, float64(rep.CiphertextBytes)/1e6, float64(rep.InputBytes)/1e6, float64(rep.AttentionMaskBytes)/1e6)
		t.Logf("%s: seeded: %.1f MB per Galois key, %.2f GB sent before the first layer (%.2f GB unseeded)",
			p.Name, float64(rep.SeededGaloisKeyBytes)/1e6, float64(rep.SeededTotal)/1e9, float64(rep.Total)/1e9)
		if rep.GaloisKeys < 1 || rep.GaloisKeys > 128 {
			t.Errorf("%d Galois keys", rep.GaloisKeys)
		}
		if 2*rep.SeededGaloisKeyBytes > rep.GaloisKeyBytes+2*SeedSize+512 {
			t.Errorf("seeded Galois key of %d bytes, full %d", rep.SeededGaloisKeyBytes, rep.GaloisKeyBytes)
		}
	}
}

// TestKeyPlansByBlock logs, for BERT-base on Interactive14, the rotation
// plan of every block the pruning steps may re-pack into and how many of
// its keys the previous (larger) block's plan lacks: what the client sends
// after a step that shrinks the block. Every plan must stay within the
// Galois keys a session allows and keep its block.
func TestKeyPlansByBlock(t *testing.T) {
	p, err := PresetByName(DefaultPreset, false)
	if err != nil {
		t.Fatal(err)
	}
	params, err := p.Params()
	if err != nil {
		t.Fatal(err)
	}
	slots := params.MaxSlots()
	var prev map[int]bool
	for _, block := range []int{512, 256, 128, 64, 32} {
		s := Shape{Rows: block, Hidden: 768, Heads: 12, Intermediate: 3072, Labels: 2}
		rots, err := Rotations(s, slots)
		if err != nil {
			t.Fatal(err)
		}
		cur, missing := map[int]bool{}, 0
		for _, r := range rots {
			cur[r] = true
			if prev != nil && !prev[r] {
				missing++
			}
		}
		lay, err := LayoutFor(slots, block, s.Hidden, s.Hidden/s.Heads, s.Heads)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("block %3d (%d heads per ciphertext, %2d ciphertexts per 768 columns): %d keys, %d not in the previous plan",
			lay.Block, lay.HeadsPerCt(), lay.NumCts(), len(rots), missing)
		if len(rots) > 128 || lay.Block != block {
			t.Errorf("block %d: layout %+v, %d keys", block, lay, len(rots))
		}
		prev = cur
	}
}
