package elementwise

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/cipherprune/cipherprune/models/approx"
	"github.com/cipherprune/cipherprune/mpcbridge/wire"
)

// Sizes of mpcbridge/share's payload of one ciphertext, as its package
// documentation states them: a 10-byte header (version, log N, fingerprint,
// count), then per ciphertext level, log slots, scale and the seed (42
// bytes) and c0 (seeded), or level, log slots, flags, mask width and scale
// (12 bytes) and c0 and c1 (masked).
const (
	shareHeader = 10
	seededHead  = 42
	maskedHead  = 12
)

func seededEntry(p Parameters, level int) int { return shareHeader + seededHead + p.polyBytes(level) }
func maskedEntry(p Parameters, level int) int { return shareHeader + maskedHead + 2*p.polyBytes(level) }

// checkEntries checks that a message's share payloads each hold one
// ciphertext at the given levels (operand j at levels[j]), of the exact
// size of a seeded (client) or masked (server) ciphertext there.
func checkEntries(t *testing.T, p Parameters, entries [][]byte, levels []int, seeded bool) {
	t.Helper()
	for i, e := range entries {
		l := levels[i%len(levels)]
		if count := binary.LittleEndian.Uint32(e[6:]); count != 1 {
			t.Fatalf("entry %d holds %d ciphertexts, want 1", i, count)
		}
		if got := int(e[shareHeader]); got != l {
			t.Fatalf("entry %d: ciphertext at level %d, want %d", i, got, l)
		}
		want := maskedEntry(p, l)
		if seeded {
			want = seededEntry(p, l)
		}
		if len(e) != want {
			t.Fatalf("entry %d: %d bytes, want %d at level %d", i, len(e), want, l)
		}
	}
}

// TestMessages checks that the client sends exactly ceil(n/Slots)
// ciphertexts per operand, each at the level its operation needs, in
// messages of Chunk ciphertexts, and that the server answers with as many
// masked ciphertexts at the mask level.
func TestMessages(t *testing.T) {
	tc := newTestContext(t, testLiteral)
	reg := trainedRegistry(t)
	p := tc.p
	r := rand.New(rand.NewPCG(21, 22))
	gl, _ := p.PolyLevel(reg, approx.GELU, approx.High)
	tl, _ := p.PolyLevel(reg, approx.Tanh, approx.High)
	il, _ := p.MulPolyLevel(reg, approx.InvSqrt, approx.High)
	sl, _ := p.MulScaledLevel()
	for _, c := range []struct {
		name   string
		call   call
		levels []int
	}{
		{"gelu", call{op: opPoly, fn: approx.GELU, deg: approx.High}, []int{gl}},
		{"tanh", call{op: opPoly, fn: approx.Tanh, deg: approx.High}, []int{tl}},
		{"mul", call{op: opMul}, []int{p.MulLevel(), p.MulLevel()}},
		{"mulpoly-invsqrt", call{op: opMulPoly, fn: approx.InvSqrt, deg: approx.High}, []int{p.MulLevel(), il}},
		{"square", call{op: opSquare}, []int{p.MulLevel()}},
		{"mulscaled", call{op: opMulScaled}, []int{sl, p.MulLevel()}},
	} {
		for _, n := range []int{1, 1024, 3*1024 + 1, 5 * 1024} {
			t.Run(fmt.Sprintf("%s/n=%d", c.name, n), func(t *testing.T) {
				sc, cc := connPair(t, "pipe")
				rc, rs := record(cc), record(sc)
				cl := c.call
				cl.x = uniform(r, n, 0.5, 1)
				if cl.op != opPoly && cl.op != opSquare {
					cl.y = uniform(r, n, 0.5, 1)
				}
				if cl.op == opMulScaled {
					cl.w = uniform(r, n, -2, 2)
				}
				if _, err := tc.run(t, reg, rs, rc, r, cl); err != nil {
					t.Fatal(err)
				}
				k := p.Ciphertexts(n)
				msgs := rc.sent[MsgInput]
				if want := (k + p.Chunk() - 1) / p.Chunk(); len(msgs) != want || len(rs.sent[MsgOutput]) != want {
					t.Fatalf("%d input and %d output messages, want %d each", len(msgs), len(rs.sent[MsgOutput]), want)
				}
				// One scales message, first, for the polynomials only.
				scales := rs.sent[MsgScales]
				if cl.op == opPoly || cl.op == opMulPoly {
					if len(scales) != 1 {
						t.Fatalf("%d scales messages, want 1", len(scales))
					}
					fss, err := p.decodeScales(scales[0], cl.op, []int{n}, len(c.levels))
					if err != nil {
						t.Fatal(err)
					}
					fs := fss[0]
					if want := p.plan(reg.Recipe(cl.fn, cl.deg)).scalar; fs[len(fs)-1] != want || (len(fs) == 2 && fs[0] != 1) {
						t.Fatalf("factors %v, want the change of basis %v on the polynomial's operand", fs, want)
					}
				} else if len(scales) != 0 {
					t.Fatalf("%d scales messages for %v, want none", len(scales), cl.op)
				}
				cts := 0
				for m, msg := range msgs {
					count := min(p.Chunk(), k-m*p.Chunk())
					entries, err := p.decodeMessage(msg, one(cl.op, n, m*p.Chunk(), count, c.levels...))
					if err != nil {
						t.Fatalf("input message %d: %v", m, err)
					}
					checkEntries(t, p, entries, c.levels, true)
					cts += len(entries)
					out, err := p.decodeMessage(rs.sent[MsgOutput][m], one(cl.op, n, m*p.Chunk(), count, p.MaskLevel()))
					if err != nil {
						t.Fatalf("output message %d: %v", m, err)
					}
					checkEntries(t, p, out, []int{p.MaskLevel()}, false)
				}
				if want := k * len(c.levels); cts != want {
					t.Fatalf("client sent %d ciphertexts, want %d", cts, want)
				}
			})
		}
	}
}

// TestLevelsDefault pins the levels, widths and sizes the package
// documentation states for the secure default preset, Elementwise14.
func TestLevelsDefault(t *testing.T) {
	p, err := NewParameters(ParametersLiteral{})
	if err != nil {
		t.Fatal(err)
	}
	if p.MaskLevel() != 1 || p.MaskBits() != 100 || p.MulLevel() != 2 || p.Slots() != 16384 {
		t.Fatalf("mask level %d, mask bits %d, product level %d, slots %d; documented 1, 100, 2, 16384", p.MaskLevel(), p.MaskBits(), p.MulLevel(), p.Slots())
	}
	if l, err := p.MulScaledLevel(); err != nil || l != 3 {
		t.Fatalf("scaled product's x at level %d (%v), documented 3", l, err)
	}
	if sd := p.SessionBound(); sd > 0x1p-41 || math.Abs(sd/0x1p-42-1.0724) > 1e-4 || p.MaxCiphertexts() != 16384 {
		t.Fatalf("session bound %g over %d ciphertexts, documented 1.0724·2^-42 over 16384", sd, p.MaxCiphertexts())
	}
	if a, b := p.Ciphertexts(128*3072), p.Ciphertexts(12*128*128); a != 24 || b != 12 {
		t.Fatalf("%d and %d ciphertexts, documented 24 and 12", a, b)
	}
	for _, s := range []struct{ got, want int }{
		{seededEntry(p, 8) + 4, 739384}, {seededEntry(p, 7) + 4, 663608}, {seededEntry(p, 2) + 4, 288824}, {maskedEntry(p, 1) + 4, 426010},
	} {
		if s.got != s.want {
			t.Fatalf("entry of %d bytes, documented %d", s.got, s.want)
		}
	}
	type fd struct {
		fn  approx.Func
		deg approx.Degree
	}
	for _, c := range []struct {
		name string
		reg  *approx.Registry
		want map[fd]int // -1: refused
		mul  map[fd]int
	}{
		{"trained", trainedRegistry(t),
			map[fd]int{{approx.GELU, approx.High}: 8, {approx.GELU, approx.Low}: 7, {approx.Exp, approx.High}: 7, {approx.Reciprocal, approx.High}: 8, {approx.InvSqrt, approx.High}: 7, {approx.Tanh, approx.High}: 6},
			map[fd]int{{approx.InvSqrt, approx.High}: 8, {approx.Reciprocal, approx.High}: -1, {approx.GELU, approx.High}: -1}},
		{"default", approx.Default(),
			map[fd]int{{approx.GELU, approx.High}: 7, {approx.GELU, approx.Low}: 6, {approx.Exp, approx.High}: 7, {approx.Reciprocal, approx.High}: -1, {approx.InvSqrt, approx.High}: -1, {approx.Tanh, approx.High}: 7},
			nil},
	} {
		for f, want := range c.want {
			got, err := p.PolyLevel(c.reg, f.fn, f.deg)
			if want < 0 {
				if err == nil || !strings.Contains(err.Error(), "needs") {
					t.Errorf("%s %s/%s: level %d, error %v; want refused", c.name, f.fn, f.deg, got, err)
				}
				continue
			}
			if err != nil || got != want {
				t.Errorf("%s %s/%s: level %d, error %v; documented %d", c.name, f.fn, f.deg, got, err, want)
			}
		}
		for f, want := range c.mul {
			got, err := p.MulPolyLevel(c.reg, f.fn, f.deg)
			if (want < 0) != (err != nil) || (want >= 0 && got != want) {
				t.Errorf("%s MulPoly %s/%s: level %d, error %v; documented %d", c.name, f.fn, f.deg, got, err, want)
			}
		}
	}
}

// honestMessage builds a message with entries of plausible sizes.
func honestMessage(p Parameters, h header, entrySize int) []byte {
	entries := make([][]byte, h.count*h.operands())
	for i := range entries {
		entries[i] = bytes.Repeat([]byte{byte(i + 1)}, entrySize)
	}
	return p.appendMessage(nil, h, entries)
}

// TestDecodeErrors checks that every edit of an honest message is refused
// with an error that names what is wrong: a Polys message of two groups
// (5000 values at level 8: ciphertexts 0-2; 300 at level 7: ciphertext 3)
// carrying ciphertexts 2 and 3, and a one-group MulPoly message.
func TestDecodeErrors(t *testing.T) {
	p := newTestContext(t, testLiteral).p
	h := header{op: opPoly, groups: []group{{5000, []int{8}}, {300, []int{7}}}, first: 2, count: 2}
	good := honestMessage(p, h, 100)
	if _, err := p.decodeMessage(good, h); err != nil {
		t.Fatal(err)
	}
	const entries = fixedHeader + 2*(4+1) // the first entry's length
	edit := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	set := func(off int, v byte) []byte { return edit(func(b []byte) []byte { b[off] = v; return b }) }
	put32 := func(off int, v uint32) []byte {
		return edit(func(b []byte) []byte { binary.LittleEndian.PutUint32(b[off:], v); return b })
	}
	second := entries + 4 + 100 // the second entry's length
	for _, c := range []struct {
		name string
		msg  []byte
		want string
	}{
		{"empty", nil, "shorter than its"},
		{"truncated header", good[:fixedHeader-1], "shorter than its"},
		{"truncated group", good[:fixedHeader+3], "truncated in group 0's head"},
		{"truncated second group", good[:fixedHeader+5+4], "truncated in group 1's head"},
		{"truncated length", good[:entries+2], "want a 4-byte length"},
		{"truncated entry", good[:len(good)-1], "ciphertext 3, operand 0: truncated: 99 bytes left, want 100"},
		{"trailing", append(append([]byte(nil), good...), 0), "1 trailing bytes"},
		{"version", set(0, 1), "version 1"},
		{"op", set(1, byte(opMul)), "for Mul, want Poly"},
		{"fingerprint", set(2, good[2]^1), "other parameters"},
		{"first", put32(6, 1), "first ciphertext 1, want 2"},
		{"wrong count", put32(10, 1), "ciphertext count 1, want 2"},
		{"groups", set(14, 1), "groups 1, want 2"},
		{"no groups", set(14, 0), "groups 0, want 2"},
		{"operands", set(15, 2), "operands 2, want 1"},
		{"values", put32(fixedHeader, 4999), "group 0 has values 4999, want 5000"},
		{"second values", put32(fixedHeader+5, 301), "group 1 has values 301, want 300"},
		{"wrong level", set(fixedHeader+4, 7), "group 0, operand 0 at level 7, want 8"},
		{"second level", set(fixedHeader+9, 8), "group 1, operand 0 at level 8, want 7"},
		{"empty entry", put32(entries, 0), "0 bytes, not in [1,"},
		{"oversized entry", put32(entries, 1<<31), "not in [1,"},
		// Within level 8's bound, beyond level 7's: the bound is the group's.
		{"entry beyond its level", put32(second, uint32(entryOverhead+2*p.polyBytes(7)+1)), fmt.Sprintf("ciphertext 3, operand 0: %d bytes, not in [1, %d] for level 7", entryOverhead+2*p.polyBytes(7)+1, entryOverhead+2*p.polyBytes(7))},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := p.decodeMessage(c.msg, h)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one containing %q", err, c.want)
			}
		})
	}
	// A one-group message of two operands.
	h1 := one(opMulPoly, 5000, 2, 1, 2, 8)
	good1 := honestMessage(p, h1, 100)
	if _, err := p.decodeMessage(good1, h1); err != nil {
		t.Fatal(err)
	}
	bad := append([]byte(nil), good1...)
	bad[fixedHeader+5] = 7
	if _, err := p.decodeMessage(bad, h1); err == nil || !strings.Contains(err.Error(), "group 0, operand 1 at level 7, want 8") {
		t.Fatalf("second operand's level: %v", err)
	}
	if _, err := p.decodeMessage(honestMessage(p, one(opPoly, 5000, 2, 2, 8), 100), h); err == nil || !strings.Contains(err.Error(), "groups 1, want 2") {
		t.Fatalf("one-group message for a two-group call: %v", err)
	}
}

// fuzzDecode checks that decodeMessage never panics and accepts only the
// one encoding of a message: what it accepts re-encodes to the input.
func fuzzDecode(f *testing.F, h header, entrySize int) {
	p := newTestContext(f, testLiteral).p
	good := honestMessage(p, h, entrySize)
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, msg []byte) {
		entries, err := p.decodeMessage(msg, h)
		if err != nil {
			return
		}
		if len(entries) != h.count*h.operands() {
			t.Fatalf("%d entries, want %d", len(entries), h.count*h.operands())
		}
		if again := p.appendMessage(nil, h, entries); !bytes.Equal(again, msg) {
			t.Fatal("accepted a message that does not re-encode to itself")
		}
	})
}

// FuzzDecodeGroups fuzzes the server's decoding of a client message of a
// Polys call (three groups at three levels, the message's ciphertexts
// straddling the last two).
func FuzzDecodeGroups(f *testing.F) {
	fuzzDecode(f, header{op: opPoly, groups: []group{{2048, []int{8}}, {2049, []int{7}}, {5, []int{6}}}, first: 1, count: 3}, 40)
}

// FuzzDecodeInput fuzzes the server's decoding of a client message (two
// operands at two levels, two ciphertexts).
func FuzzDecodeInput(f *testing.F) {
	fuzzDecode(f, one(opMulPoly, 4096, 0, 2, 2, 8), 40)
}

// FuzzDecodeOutput fuzzes the client's decoding of a server message (one
// masked ciphertext per value block, at the mask level).
func FuzzDecodeOutput(f *testing.F) {
	fuzzDecode(f, one(opPoly, 2500, 2, 1, 2), 40)
}

// TestPeerErrors runs each party against a peer that misbehaves: the
// other operation, another length, a corrupted ciphertext, a truncated
// message. Every case ends in an error that says what, never a panic or a
// hang.
func TestPeerErrors(t *testing.T) {
	tc := newTestContext(t, testLiteral)
	reg := trainedRegistry(t)
	p := tc.p
	r := rand.New(rand.NewPCG(31, 32))
	const n = 1500
	x := fixed(p, uniform(r, n, -2, 2))
	xa, xb := splitShares(r, x, 82)
	gl, err := p.PolyLevel(reg, approx.GELU, approx.High)
	if err != nil {
		t.Fatal(err)
	}
	newServer := func() *Server {
		s, err := NewServer(p, tc.pk, tc.rlk, reg, 2)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	cli, err := NewClient(p, tc.sk, 2)
	if err != nil {
		t.Fatal(err)
	}
	// An honest client's messages, recorded once (after the server's
	// first message, the encoding factor of GELU's change of basis).
	scales := p.appendScales(nil, opPoly, []int{n}, [][]float64{{p.plan(reg.Recipe(approx.GELU, approx.High)).scalar}})
	rc := replay(map[wire.Type][][]byte{MsgScales: {scales}})
	if _, err := cli.Poly(bg(), rc, gl, xa); err == nil || !strings.Contains(err.Error(), "no 0x0702 left") {
		t.Fatalf("client without a server: %v", err)
	}
	honest := rc.sent
	// The server's answer to them, recorded once.
	rs := replay(honest)
	if _, err := newServer().Poly(bg(), rs, approx.GELU, approx.High, xb); err != nil {
		t.Fatal(err)
	}
	answers := rs.sent

	corrupt := func(msgs map[wire.Type][][]byte, typ wire.Type, f func([]byte) []byte) map[wire.Type][][]byte {
		out := map[wire.Type][][]byte{}
		for k, v := range msgs {
			out[k] = append([][]byte(nil), v...)
		}
		out[typ][0] = f(append([]byte(nil), out[typ][0]...))
		return out
	}
	entryStart := fixedHeader + 4 + 1 + 4 // one group of one operand: values, level byte, then the first entry's length
	for _, c := range []struct {
		name string
		run  func() error
		want string
	}{
		{"server expects Mul", func() error {
			_, err := newServer().Mul(bg(), replay(honest), xb, xb)
			return err
		}, "message for Poly, want Mul"},
		{"server expects tanh", func() error {
			_, err := newServer().Poly(bg(), replay(honest), approx.Tanh, approx.High, xb)
			return err
		}, "operand 0 at level 8, want 6"},
		{"server has another length", func() error {
			_, err := newServer().Poly(bg(), replay(honest), approx.GELU, approx.High, xb[:n-1])
			return err
		}, "values 1500, want 1499"},
		{"server gets a corrupted ciphertext", func() error {
			_, err := newServer().Poly(bg(), replay(corrupt(honest, MsgInput, func(b []byte) []byte {
				b[entryStart+shareHeader+1] = 3 // the ciphertext's log slots
				return b
			})), approx.GELU, approx.High, xb)
			return err
		}, "log slots 3"},
		{"server gets a truncated message", func() error {
			_, err := newServer().Poly(bg(), replay(corrupt(honest, MsgInput, func(b []byte) []byte { return b[:len(b)-7] })), approx.GELU, approx.High, xb)
			return err
		}, "truncated"},
		{"server gets nothing", func() error {
			_, err := newServer().Poly(bg(), replay(nil), approx.GELU, approx.High, xb)
			return err
		}, "receive"},
		{"client gets a corrupted mask", func() error {
			_, err := cli.Poly(bg(), replay(corrupt(answers, MsgOutput, func(b []byte) []byte {
				b[entryStart+shareHeader+3]++ // the mask width
				return b
			})), gl, xa)
			return err
		}, "masked with"},
		{"client gets a truncated message", func() error {
			_, err := cli.Poly(bg(), replay(corrupt(answers, MsgOutput, func(b []byte) []byte { return b[:len(b)/2] })), gl, xa)
			return err
		}, "truncated"},
		{"client expects Mul", func() error {
			_, err := cli.Mul(bg(), replay(answers), xa, xa)
			return err
		}, "message for Poly, want Mul"},
		{"share too large", func() error {
			big := append(xa[:0:0], xa...)
			big[7] = big[7].Add(xa[7]).Add(xa[7]).Add(xa[7])
			for i := 0; i < 12; i++ {
				big[7] = big[7].Add(big[7])
			}
			_, err := cli.Poly(bg(), replay(answers), gl, big)
			return err
		}, "operand 0, value 7"},
		{"empty vector", func() error {
			_, err := cli.Poly(bg(), replay(answers), gl, nil)
			return err
		}, "0 values"},
		{"level out of range", func() error {
			_, err := cli.Poly(bg(), replay(answers), 9, xa)
			return err
		}, "level 9 not in [1, 8]"},
		{"client gets a zero factor", func() error {
			_, err := cli.Poly(bg(), replay(corrupt(answers, MsgScales, func(b []byte) []byte {
				return p.appendScales(nil, opPoly, []int{n}, [][]float64{{0}})
			})), gl, xa)
			return err
		}, "factor 0 not in"},
		{"client gets a short scales message", func() error {
			_, err := cli.Poly(bg(), replay(corrupt(answers, MsgScales, func(b []byte) []byte { return b[:len(b)-1] })), gl, xa)
			return err
		}, "scales message of"},
		{"client gets scales for MulPoly", func() error {
			_, err := cli.Poly(bg(), replay(corrupt(answers, MsgScales, func(b []byte) []byte {
				return p.appendScales(nil, opMulPoly, []int{n}, [][]float64{{1}})
			})), gl, xa)
			return err
		}, "scales message for MulPoly, want Poly"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := c.run()
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one containing %q", err, c.want)
			}
			t.Log(err)
		})
	}
}

// FuzzDecodeScales fuzzes the client's decoding of MsgScales: it never
// panics, and what it accepts re-encodes to the input (one encoding per
// message: a NaN or out-of-range factor is refused).
func FuzzDecodeScales(f *testing.F) {
	p := newTestContext(f, testLiteral).p
	for _, c := range []struct {
		values  []int
		factors [][]float64
	}{
		{[]int{5000}, [][]float64{{1, 2.0 / 34}}},
		{[]int{5000, 7}, [][]float64{{1, 2.0 / 34}, {1, 0.5}}},
	} {
		good := p.appendScales(nil, opMulPoly, c.values, c.factors)
		f.Add(good, uint8(len(c.values)))
		f.Add(good[:len(good)/2], uint8(len(c.values)))
	}
	f.Add([]byte{}, uint8(1))
	f.Fuzz(func(t *testing.T, msg []byte, groups uint8) {
		values := []int{5000, 7}[:1+groups%2]
		fs, err := p.decodeScales(msg, opMulPoly, values, 2)
		if err != nil {
			return
		}
		if again := p.appendScales(nil, opMulPoly, values, fs); !bytes.Equal(again, msg) {
			t.Fatal("accepted a scales message that does not re-encode to itself")
		}
	})
}
