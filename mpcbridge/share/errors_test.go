package share

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"testing"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"
	"github.com/tuneinsight/lattigo/v5/ring"

	"github.com/cipherprune/cipherprune/ckks"
	"github.com/cipherprune/cipherprune/mpcbridge/internal/nettest"
)

// maskedMessage returns a valid MsgEncToShares payload for k ciphertexts
// and the server's pending masks.
func (tc *testContext) maskedMessage(t testing.TB, k int) []byte {
	t.Helper()
	r := rand.New(rand.NewPCG(9, uint64(k)))
	cts := make([]*rlwe.Ciphertext, k)
	for i := range cts {
		cts[i] = tc.computedCiphertext(t, randomVector(r, tc.params.MaxSlots(), 4), 4)
	}
	rc := &rawConn{}
	if _, err := tc.server.EncToShares(bg(), rc, cts); err != nil {
		t.Fatal(err)
	}
	return rc.sent[MsgEncToShares]
}

func wantErr(t *testing.T, err error, substr string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one containing %q", substr)
	}
	if !strings.Contains(err.Error(), substr) {
		t.Fatalf("error %q does not contain %q", err, substr)
	}
}

func TestClientBadInput(t *testing.T) {
	tc := newTestContext(t, ckks.InsecureTest11, ParametersLiteral{LogBound: 4})
	other := newTestContext(t, ckks.InsecureTest12, ParametersLiteral{LogBound: 4})
	valid := tc.maskedMessage(t, 2)
	if _, err := tc.client.EncToShares(bg(), &rawConn{in: map[uint16][]byte{MsgEncToShares: valid}}); err != nil {
		t.Fatalf("valid message: %v", err)
	}
	cts, err := tc.client.ri.decodeMasked(valid, 10)
	if err != nil {
		t.Fatal(err)
	}
	// The same ciphertext claimed at another level (a consistent message,
	// but not the level the parameters give).
	wrongLevel := cts[0]
	wrongLevel.level++
	for _, p := range []*ring.Poly{&wrongLevel.c0, &wrongLevel.c1} {
		q := ring.NewPoly(tc.params.N(), wrongLevel.level)
		q.CopyLvl(wrongLevel.level-1, *p)
		*p = q
	}
	setCount := func(b []byte, n uint32) []byte {
		b = bytes.Clone(b)
		binary.LittleEndian.PutUint32(b[6:], n)
		return b
	}
	badCoeff := bytes.Clone(valid)
	for i := headerSize + maskedHead; i < headerSize+maskedHead+16; i++ {
		badCoeff[i] = 0xff
	}
	badID := bytes.Clone(valid)
	badID[2] ^= 1
	badVersion := bytes.Clone(valid)
	badVersion[0] = 9
	badScale := bytes.Clone(valid)
	binary.LittleEndian.PutUint64(badScale[headerSize+4:], 0x7ff8000000000001) // NaN
	for _, c := range []struct {
		name, want string
		payload    []byte
	}{
		{"empty", "shorter than its", nil},
		{"header only", "cannot hold", valid[:headerSize]},
		{"truncated", "truncated", valid[:len(valid)-1]},
		{"trailing", "trailing", append(bytes.Clone(valid), 0)},
		{"oversized count", "more than the limit", setCount(valid, uint32(tc.p.MaxBatch()+1))},
		{"huge count", "more than the limit", setCount(valid, 1<<31)},
		{"count beyond length", "truncated", setCount(valid, 3)},
		{"count far beyond length", "cannot hold", setCount(valid, 9)},
		{"wrong N", "ring degree", other.maskedMessage(t, 1)},
		{"wrong parameters", "other parameters", badID},
		{"wrong version", "version", badVersion},
		{"coefficient not reduced", "not below the modulus", badCoeff},
		{"bad scale", "scale", badScale},
		{"wrong level", "different parameters", tc.client.ri.encodeMasked([]maskedCt{wrongLevel})},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := tc.client.EncToShares(bg(), &rawConn{in: map[uint16][]byte{MsgEncToShares: c.payload}})
			wantErr(t, err, c.want)
		})
	}
	t.Run("wrong key", func(t *testing.T) {
		sk := rlwe.NewKeyGenerator(tc.params).GenSecretKeyNew()
		c, err := NewClient(tc.params, sk, tc.p, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.EncToShares(bg(), &rawConn{in: map[uint16][]byte{MsgEncToShares: valid}})
		wantErr(t, err, "out of range")
	})
	t.Run("other LogBound", func(t *testing.T) {
		// A client that expects a larger bound expects a higher mask level
		// or a wider mask: the message must not be accepted silently.
		p, _ := NewParameters(ParametersLiteral{LogBound: 10})
		c, err := NewClient(tc.params, tc.sk, p, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.EncToShares(bg(), &rawConn{in: map[uint16][]byte{MsgEncToShares: valid}})
		wantErr(t, err, "different parameters")
	})
}

func TestServerBadInput(t *testing.T) {
	tc := newTestContext(t, ckks.InsecureTest11, ParametersLiteral{LogBound: 4})
	shares := []Vector{make(Vector, 8)}
	s2e := func(payload []byte, level int) error {
		_, err := tc.server.SharesToEnc(bg(), &rawConn{in: map[uint16][]byte{MsgSharesToEnc: payload}}, shares, level, tc.params.DefaultScale())
		return err
	}
	rc := &rawConn{}
	if err := tc.client.SharesToEnc(bg(), rc, shares, 5, tc.params.DefaultScale()); err != nil {
		t.Fatal(err)
	}
	msg := rc.sent[MsgSharesToEnc]
	if err := s2e(msg, 5); err != nil {
		t.Fatalf("valid message: %v", err)
	}
	t.Run("shares/level", func(t *testing.T) { wantErr(t, s2e(msg, 6), "want 6") })
	t.Run("shares/truncated", func(t *testing.T) { wantErr(t, s2e(msg[:len(msg)-1], 5), "truncated") })
	t.Run("shares/count", func(t *testing.T) {
		_, err := tc.server.SharesToEnc(bg(), &rawConn{in: map[uint16][]byte{MsgSharesToEnc: msg}}, append(shares, shares[0]), 5, tc.params.DefaultScale())
		wantErr(t, err, "1 ciphertexts for 2 vectors")
	})
	t.Run("shares/scale", func(t *testing.T) {
		_, err := tc.server.SharesToEnc(bg(), &rawConn{in: map[uint16][]byte{MsgSharesToEnc: msg}}, shares, 5, rlwe.NewScale(1<<30))
		wantErr(t, err, "scale")
	})
	t.Run("shares/too long", func(t *testing.T) {
		err := tc.client.SharesToEnc(bg(), &rawConn{}, []Vector{make(Vector, tc.params.MaxSlots()+1)}, 5, tc.params.DefaultScale())
		wantErr(t, err, "more than")
	})
	t.Run("shares/too large", func(t *testing.T) {
		v := Vector{{Hi: 1 << 62}}
		err := tc.client.SharesToEnc(bg(), &rawConn{}, []Vector{v}, 5, tc.params.DefaultScale())
		wantErr(t, err, "exceeds")
	})
	t.Run("batch too large", func(t *testing.T) {
		cts := make([]*rlwe.Ciphertext, tc.p.MaxBatch()+1)
		_, err := tc.server.EncToShares(bg(), &rawConn{}, cts)
		wantErr(t, err, "batch limit")
	})
	t.Run("nil ciphertext", func(t *testing.T) {
		_, err := tc.server.EncToShares(bg(), &rawConn{}, []*rlwe.Ciphertext{nil})
		wantErr(t, err, "nil ciphertext")
	})
	t.Run("degree 2", func(t *testing.T) {
		ct2 := rlwe.NewCiphertext(tc.params, 2, 4)
		_, err := tc.server.EncToShares(bg(), &rawConn{}, []*rlwe.Ciphertext{ct2})
		wantErr(t, err, "degree 2")
	})
}

func TestLevelTooLow(t *testing.T) {
	for _, name := range testPresets {
		tc := newTestContext(t, name, ParametersLiteral{LogBound: 4})
		t.Run(name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(6, 6))
			// Level 0 is below every test ring's mask level (2 for the
			// standard ones, 1 for the conjugate-invariant one).
			ct := tc.computedCiphertext(t, randomVector(r, tc.params.MaxSlots(), 4), 0)
			_, err := tc.server.EncToShares(bg(), &rawConn{}, []*rlwe.Ciphertext{ct})
			wantErr(t, err, "needs more than")
			t.Log(err)
		})
	}
}

func TestPeerDisconnect(t *testing.T) {
	tc := newTestContext(t, ckks.InsecureTest11, ParametersLiteral{LogBound: 4})
	r := rand.New(rand.NewPCG(7, 7))
	ct := tc.computedCiphertext(t, randomVector(r, tc.params.MaxSlots(), 4), 3)
	t.Run("client leaves mid conversion", func(t *testing.T) {
		sc, cc := pipe()
		serr, _ := nettest.Both(func() error {
			_, err := tc.server.EncToShares(bg(), sc, []*rlwe.Ciphertext{ct})
			if err != nil {
				return err
			}
			_, err = tc.server.SharesToEnc(bg(), sc, []Vector{make(Vector, 8)}, 3, tc.params.DefaultScale())
			return err
		}, func() error {
			_, err := cc.Recv(bg(), MsgEncToShares) // read the masked batch, then hang up
			cc.Close()
			return err
		})
		wantErr(t, serr, "cannot SharesToEnc: receive")
		if !errors.Is(serr, io.EOF) && !errors.Is(serr, io.ErrClosedPipe) {
			t.Fatalf("error %v is not EOF or a closed pipe", serr)
		}
	})
	t.Run("server leaves before sending", func(t *testing.T) {
		sc, cc := pipe()
		sc.Close()
		_, err := tc.client.EncToShares(bg(), cc)
		wantErr(t, err, "cannot EncToShares: receive")
	})
	t.Run("client gone before server sends", func(t *testing.T) {
		sc, cc := pipe()
		cc.Close()
		_, err := tc.server.EncToShares(bg(), sc, []*rlwe.Ciphertext{ct})
		wantErr(t, err, "cannot EncToShares: send")
	})
	t.Run("cancelled", func(t *testing.T) {
		sc, _ := pipe()
		ctx, cancel := contextWithCancel()
		cancel()
		_, err := tc.server.SharesToEnc(ctx, sc, nil, 3, tc.params.DefaultScale())
		wantErr(t, err, "cannot SharesToEnc: receive")
	})
}

// TestEncToSharesTCP runs the conversion over loopback TCP and checks the
// shares against the message.
func TestEncToSharesTCP(t *testing.T) {
	tc := newTestContext(t, ckks.InsecureTest11, ParametersLiteral{LogBound: 4})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Skipf("no loopback TCP: %v", err)
	}
	defer l.Close()
	r := rand.New(rand.NewPCG(8, 8))
	x := randomVector(r, tc.params.MaxSlots(), 4)
	ct := tc.computedCiphertext(t, x, 3)
	var sv, cv []Vector
	serr, cerr := nettest.Both(func() error {
		c, err := l.Accept()
		if err != nil {
			return err
		}
		defer c.Close()
		sv, err = tc.server.EncToShares(bg(), newFrameConn(c), []*rlwe.Ciphertext{ct})
		return err
	}, func() error {
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			return err
		}
		defer c.Close()
		cv, err = tc.client.EncToShares(bg(), newFrameConn(c))
		return err
	})
	if serr != nil || cerr != nil {
		t.Fatalf("server: %v, client: %v", serr, cerr)
	}
	got, err := Reconstruct(tc.p, cv[0], sv[0])
	if err != nil {
		t.Fatal(err)
	}
	if e := maxAbsErr(got, x); e > 1e-4 {
		t.Fatalf("converted over TCP: error %.3g", e)
	}
}
