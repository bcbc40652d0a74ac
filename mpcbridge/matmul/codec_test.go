package matmul

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"math/big"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"

	"github.com/cipherprune/cipherprune/ckks/polymat"
	"github.com/cipherprune/cipherprune/mpcbridge/internal/nettest"
	"github.com/cipherprune/cipherprune/mpcbridge/share"
)

// codecSetup is a tiny product's layout with one valid message each way.
type codecSetup struct {
	tc     *testContext
	lay    polymat.Layout
	input  []byte
	output []byte
	ri     *ringInfo
}

func newCodecSetup(tb testing.TB) *codecSetup {
	tb.Helper()
	lit := testLiteral
	lit.Chunk = 2
	tc := newTestContext(tb, polymat.N12, lit)
	lay, err := polymat.NewLayout(tc.ring, polymat.Dims{Rows: 3, In: 5, Out: 4}, polymat.Block{D0: 2, D1: 5, D2: 4})
	if err != nil {
		tb.Fatal(err)
	}
	r := rand.New(rand.NewPCG(21, 22))
	ringQ := tc.ring.RingQ()
	in := make([]inputCt, 2)
	for i := range in {
		for k := range in[i].seed {
			in[i].seed[k] = byte(r.Uint32())
		}
		in[i].c0 = ringQ.NewPoly()
		for l, q := range tc.ring.Moduli() {
			for j := range in[i].c0.Coeffs[l] {
				in[i].c0.Coeffs[l][j] = r.Uint64N(q)
			}
		}
	}
	ri := newRingInfo(tc.p)
	out := tc.p.appendHeader(nil, lay, 0, 2)
	for s := 0; s < 2; s++ {
		o := outputSeq(lay, s)
		ct := outputCt{c0: make([]u128, lay.Targets(o)), c1: make([]u128, tc.ring.N())}
		for _, vals := range [2][]u128{ct.c0, ct.c1} {
			for j := range vals {
				vals[j] = u128{r.Uint64N(ri.top.hi + 1), r.Uint64()}
				if ri.top.less(vals[j]) {
					vals[j] = ri.top
				}
			}
		}
		out = tc.p.appendOutput(out, &ct)
	}
	return &codecSetup{tc: tc, lay: lay, input: tc.p.encodeInput(lay, 0, in), output: out, ri: ri}
}

// TestCodecRoundTrip checks that valid messages decode and re-encode to
// the same bytes.
func TestCodecRoundTrip(t *testing.T) {
	cs := newCodecSetup(t)
	in, err := cs.tc.p.decodeInput(cs.input, cs.lay, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := cs.tc.p.encodeInput(cs.lay, 0, in); !bytes.Equal(got, cs.input) {
		t.Fatal("input message does not round-trip")
	}
	out, err := cs.tc.p.decodeOutput(cs.output, cs.lay, 0, cs.ri.top)
	if err != nil {
		t.Fatal(err)
	}
	again := cs.tc.p.appendHeader(nil, cs.lay, 0, len(out))
	for i := range out {
		again = cs.tc.p.appendOutput(again, &out[i])
	}
	if !bytes.Equal(again, cs.output) {
		t.Fatal("output message does not round-trip")
	}
}

// TestDecodeErrors feeds corrupted messages to both decoders and checks
// that each is refused with an error naming what is wrong.
func TestDecodeErrors(t *testing.T) {
	cs := newCodecSetup(t)
	p := cs.tc.p
	set32 := func(msg []byte, off int, v uint32) []byte {
		m := bytes.Clone(msg)
		binary.LittleEndian.PutUint32(m[off:], v)
		return m
	}
	with := func(msg []byte, f func(m []byte)) []byte {
		m := bytes.Clone(msg)
		f(m)
		return m
	}
	type tcase struct {
		name string
		msg  []byte
		err  string
	}
	common := func(msg []byte) []tcase {
		return []tcase{
			{"empty", nil, "shorter than its"},
			{"header cut", msg[:headerSize-1], "shorter than its"},
			{"version", with(msg, func(m []byte) { m[0] = 9 }), "version 9"},
			{"degree", with(msg, func(m []byte) { m[1] = 13 }), "ring degree 2^13"},
			{"fingerprint", set32(msg, 2, 0xdeadbeef), "fingerprint deadbeef"},
			{"rows", set32(msg, 6, 4), "rows 4, want 3"},
			{"inner", set32(msg, 10, 6), "inner dimension 6"},
			{"columns", set32(msg, 14, 1), "columns 1"},
			{"D0", set32(msg, 18, 1), "D0 1"},
			{"D2", set32(msg, 26, 2), "D2 2"},
			{"first", set32(msg, 30, 1), "starts at ciphertext 1, want 0"},
			{"count zero", set32(msg, 34, 0), "holds 0 ciphertexts"},
			{"count above chunk", set32(msg, 34, 3), "holds 3 ciphertexts"},
			{"count huge", set32(msg, 34, 0xffffffff), "holds 4294967295 ciphertexts"},
			{"truncated", msg[:len(msg)-1], "message body of"},
			{"trailing", append(bytes.Clone(msg), 0), "message body of"},
		}
	}
	for _, tt := range append(common(cs.input),
		tcase{"coefficient not reduced", with(cs.input, func(m []byte) {
			// The first coefficient of limb 0: its 54 bits all ones.
			off := headerSize + polymat.SeedSize
			for k := 0; k < 7; k++ {
				m[off+k] = 0xff
			}
		}), "coefficient 0 of limb 0"},
		tcase{"last coefficient not reduced", with(cs.input, func(m []byte) {
			// The last coefficient of limb 1 (55 bits) of the first ciphertext.
			end := headerSize + p.inputCtBytes()
			for k := 1; k <= 7; k++ {
				m[end-k] = 0xff
			}
		}), "coefficient 4095 of limb 1"},
	) {
		t.Run("input/"+tt.name, func(t *testing.T) {
			_, err := p.decodeInput(tt.msg, cs.lay, 0)
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("error %v, want one containing %q", err, tt.err)
			}
		})
	}
	// The first output ciphertext ends at a byte boundary only if its bits
	// do; find a value to corrupt at the very end for the padding case.
	outBits := (cs.lay.Targets(outputSeq(cs.lay, 0)) + cs.tc.ring.N()) * p.outWidth
	for _, tt := range append(common(cs.output),
		tcase{"value above the range", with(cs.output, func(m []byte) {
			for k := 0; k < (p.outWidth+7)/8; k++ {
				m[headerSize+k] = 0xff
			}
		}), "out of range"},
	) {
		t.Run("output/"+tt.name, func(t *testing.T) {
			_, err := p.decodeOutput(tt.msg, cs.lay, 0, cs.ri.top)
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("error %v, want one containing %q", err, tt.err)
			}
		})
	}
	if outBits%8 != 0 {
		t.Run("output/padding", func(t *testing.T) {
			m := bytes.Clone(cs.output)
			m[headerSize+outBits/8] |= 0x80
			_, err := p.decodeOutput(m, cs.lay, 0, cs.ri.top)
			if err == nil || !strings.Contains(err.Error(), "padding") {
				t.Fatalf("error %v, want one about the padding", err)
			}
		})
	}
	// Two messages of one transfer: the second must continue the first.
	if _, err := p.decodeInput(cs.input, cs.lay, 2); err == nil || !strings.Contains(err.Error(), "want 2") {
		t.Errorf("a repeated first message was accepted: %v", err)
	}
	if _, err := p.decodeOutput(set32(cs.output, 30, 2), cs.lay, 2, cs.ri.top); err == nil || !strings.Contains(err.Error(), "holds ciphertexts 2 to 3 of 2") {
		t.Errorf("a message past the last output was accepted: %v", err)
	}
}

// FuzzDecodeInput checks that the server's decoder never panics and that
// whatever it accepts re-encodes to the same bytes (one encoding per
// message).
func FuzzDecodeInput(f *testing.F) {
	cs := newCodecSetup(f)
	f.Add(cs.input)
	f.Add(cs.input[:headerSize])
	f.Fuzz(func(t *testing.T, msg []byte) {
		cts, err := cs.tc.p.decodeInput(msg, cs.lay, 0)
		if err != nil {
			return
		}
		if got := cs.tc.p.encodeInput(cs.lay, 0, cts); !bytes.Equal(got, msg) {
			t.Fatal("accepted input message does not re-encode to itself")
		}
	})
}

// FuzzDecodeOutput is FuzzDecodeInput for the client's decoder.
func FuzzDecodeOutput(f *testing.F) {
	cs := newCodecSetup(f)
	f.Add(cs.output)
	f.Add(cs.output[:headerSize+10])
	f.Fuzz(func(t *testing.T, msg []byte) {
		cts, err := cs.tc.p.decodeOutput(msg, cs.lay, 0, cs.ri.top)
		if err != nil {
			return
		}
		again := cs.tc.p.appendHeader(nil, cs.lay, 0, len(cts))
		for i := range cts {
			again = cs.tc.p.appendOutput(again, &cts[i])
		}
		if !bytes.Equal(again, msg) {
			t.Fatal("accepted output message does not re-encode to itself")
		}
	})
}

// TestRingArithmetic checks the CRT reconstruction, centring, compression
// and expansion, residues and rounding shifts against math/big.
func TestRingArithmetic(t *testing.T) {
	tc := newTestContext(t, polymat.N12, testLiteral)
	ri := newRingInfo(tc.p)
	Q := tc.ring.Q()
	r := rand.New(rand.NewPCG(31, 32))
	res := make([]uint64, len(ri.moduli))
	limbs := make([][]uint64, len(ri.moduli))
	for l := range limbs {
		limbs[l] = make([]uint64, 1)
	}
	k := new(big.Int).Lsh(big.NewInt(1), ri.k)
	half := new(big.Int).Rsh(Q, 1)
	for it := 0; it < 2000; it++ {
		x := new(big.Int).SetUint64(r.Uint64())
		x.Lsh(x, 64).Or(x, new(big.Int).SetUint64(r.Uint64())).Mod(x, Q)
		switch it {
		case 0:
			x.SetInt64(0)
		case 1:
			x.Sub(Q, big.NewInt(1))
		case 2:
			x.Set(half)
		}
		for l, q := range ri.moduli {
			res[l] = new(big.Int).Mod(x, new(big.Int).SetUint64(q)).Uint64()
		}
		v := ri.reconstruct(res)
		if u128FromBig(x) != v {
			t.Fatalf("reconstruct(%v) = %v", x, v)
		}
		c := ri.centred(v).Big(nil)
		want := new(big.Int).Set(x)
		if x.Cmp(half) > 0 {
			want.Sub(want, Q)
		}
		if c.Cmp(want) != 0 {
			t.Fatalf("centred(%v) = %v, want %v", x, c, want)
		}
		y := ri.compress(v)
		if ri.top.less(y) {
			t.Fatalf("compress(%v) above the top", x)
		}
		ri.expand(y, limbs, 0)
		for l, q := range ri.moduli {
			bq := new(big.Int).SetUint64(q)
			back := new(big.Int).Mul(new(big.Int).SetUint64(y.hi), new(big.Int).Lsh(big.NewInt(1), 64))
			back.Add(back, new(big.Int).SetUint64(y.lo)).Mul(back, k)
			if back.Mod(back, bq).Uint64() != limbs[l][0] {
				t.Fatalf("expand(%v) limb %d wrong", y, l)
			}
		}
		// |y·2^k - x| <= 2^(k-1) modulo Q.
		back := new(big.Int).Mul(new(big.Int).Add(new(big.Int).Lsh(new(big.Int).SetUint64(y.hi), 64), new(big.Int).SetUint64(y.lo)), k)
		d := back.Sub(back, x)
		if d.CmpAbs(new(big.Int).Rsh(k, 1)) > 0 {
			t.Fatalf("compression error %v above 2^(k-1)", d)
		}
		// Residues and rounding shifts of signed values.
		s, _ := share.Int128FromBig(new(big.Int).Sub(x, half))
		for _, q := range ri.moduli {
			want := new(big.Int).Mod(s.Big(nil), new(big.Int).SetUint64(q)).Uint64()
			if got := residue(s, q); got != want {
				t.Fatalf("residue(%v, %d) = %d, want %d", s, q, got, want)
			}
		}
		for _, sh := range []uint{1, 25, 63, 64, 65, 100} {
			// round(s/2^sh) = floor((s + 2^(sh-1)) / 2^sh).
			num := new(big.Int).Add(s.Big(nil), new(big.Int).Lsh(big.NewInt(1), sh-1))
			want := num.Rsh(num, sh) // Rsh floors for negatives
			if got := shiftRound(s, sh).Big(nil); got.Cmp(want) != 0 {
				t.Fatalf("shiftRound(%v, %d) = %v, want %v", s, sh, got, want)
			}
		}
	}
}

// TestPeerFailures checks that each party fails cleanly, without hanging,
// when the other disconnects, when the context ends, and when the parties
// disagree on the layout.
func TestPeerFailures(t *testing.T) {
	tc := newTestContext(t, polymat.N12, testLiteral)
	r := rand.New(rand.NewPCG(41, 42))
	pr := tc.newProblem(t, r, polymat.Dims{Rows: 4, In: 16, Out: 16}, polymat.Block{D0: 2, D1: 8, D2: 8}, false)
	ws, err := NewWeights(bg(), tc.p, pr.lay, pr.w, nil, 1)
	if err != nil {
		t.Fatal(err)
	}
	x := tc.fixedX(pr)
	t.Run("client-gone", func(t *testing.T) {
		sc, cc := connPair(t, "pipe")
		srv, _ := NewServer(tc.p, tc.pk, 2, nil)
		cc.Close()
		if _, err := srv.MatMul(bg(), sc, pr.lay, ws, nil); err == nil {
			t.Fatal("server succeeded without a client")
		}
	})
	t.Run("server-gone", func(t *testing.T) {
		sc, cc := connPair(t, "pipe")
		cli, _ := NewClient(tc.p, tc.sk, 2, nil)
		go func() {
			sc.Recv(bg(), MsgInput)
			sc.Close()
		}()
		if _, err := cli.MatMul(bg(), cc, pr.lay, x); err == nil {
			t.Fatal("client succeeded without a server")
		}
	})
	t.Run("deadline", func(t *testing.T) {
		_, cc := connPair(t, "pipe")
		cli, _ := NewClient(tc.p, tc.sk, 2, nil)
		ctx, cancel := context.WithTimeout(bg(), 50*time.Millisecond)
		defer cancel()
		if _, err := cli.MatMul(ctx, cc, pr.lay, x); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("error %v, want the deadline", err)
		}
	})
	t.Run("other-layout", func(t *testing.T) {
		sc, cc := connPair(t, "pipe")
		srv, _ := NewServer(tc.p, tc.pk, 2, nil)
		cli, _ := NewClient(tc.p, tc.sk, 2, nil)
		other, _ := polymat.NewLayout(tc.ring, pr.lay.Dims, polymat.Block{D0: 4, D1: 8, D2: 8})
		serr, cerr := nettest.Both(func() error {
			_, err := srv.MatMul(bg(), sc, pr.lay, ws, nil)
			if err != nil {
				sc.Close()
			}
			return err
		}, func() error {
			_, err := cli.MatMul(bg(), cc, other, x)
			return err
		})
		if serr == nil || !strings.Contains(serr.Error(), "D0 4, want 2") || cerr == nil {
			t.Fatalf("server %v, client %v", serr, cerr)
		}
	})
	t.Run("wrong-key", func(t *testing.T) {
		sk2 := rlwe.NewKeyGenerator(tc.ring.RLWE()).GenSecretKeyNew()
		sc, cc := connPair(t, "pipe")
		srv, _ := NewServer(tc.p, tc.pk, 2, nil)
		cli, _ := NewClient(tc.p, sk2, 2, nil)
		serr, cerr := nettest.Both(func() error {
			_, err := srv.MatMul(bg(), sc, pr.lay, ws, nil)
			return err
		}, func() error {
			_, err := cli.MatMul(bg(), cc, pr.lay, x)
			if err != nil {
				cc.Close()
			}
			return err
		})
		if cerr == nil || !errors.Is(cerr, errRange) {
			t.Fatalf("client with another key: %v (server %v)", cerr, serr)
		}
	})
	t.Run("arguments", func(t *testing.T) {
		srv, _ := NewServer(tc.p, tc.pk, 1, nil)
		cli, _ := NewClient(tc.p, tc.sk, 1, nil)
		if _, err := srv.MatMul(bg(), replay(nil), pr.lay, ws, make(share.Vector, 3)); err == nil {
			t.Error("server accepted a share of the wrong length")
		}
		if _, err := cli.MatMul(bg(), replay(nil), pr.lay, x[1:]); err == nil {
			t.Error("client accepted an input of the wrong length")
		}
		if _, err := NewServer(tc.p, nil, 1, nil); err == nil {
			t.Error("NewServer accepted a nil key")
		}
		if _, err := NewClient(tc.p, nil, 1, nil); err == nil {
			t.Error("NewClient accepted a nil key")
		}
		if _, err := NewWeights(bg(), tc.p, pr.lay, pr.w[1:], nil, 1); err == nil {
			t.Error("NewWeights accepted too few weights")
		}
		big := append([]float64(nil), pr.w...)
		big[0] = 1e3
		if _, err := NewWeights(bg(), tc.p, pr.lay, big, nil, 1); err == nil || !strings.Contains(err.Error(), "column 0") {
			t.Errorf("NewWeights accepted a column above the output bound: %v", err)
		}
	})
}
