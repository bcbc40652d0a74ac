package share

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"
	"github.com/tuneinsight/lattigo/v5/he/hefloat"
	"github.com/tuneinsight/lattigo/v5/ring"
	"go.uber.org/goleak"

	"github.com/cipherprune/cipherprune/ckks"
)

// TestMain fails the package's tests if any goroutine (a test's protocol
// party, for instance) outlives them.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testContext holds keys and both parties for one preset.
type testContext struct {
	name   string
	params hefloat.Parameters
	p      Parameters
	sk     *rlwe.SecretKey
	pk     *rlwe.PublicKey
	server *Server
	client *Client
	ecd    *hefloat.Encoder
	enc    *rlwe.Encryptor
	dec    *rlwe.Decryptor
	eval   *hefloat.Evaluator
}

var (
	ctxCacheMu sync.Mutex
	ctxCache   = map[string]*testContext{}
)

// newTestContext returns the (cached) test context for preset name and
// protocol literal lit.
func newTestContext(tb testing.TB, name string, lit ParametersLiteral) *testContext {
	tb.Helper()
	key := fmt.Sprintf("%s/%+v", name, lit)
	ctxCacheMu.Lock()
	defer ctxCacheMu.Unlock()
	if tc, ok := ctxCache[key]; ok {
		return tc
	}
	params := testParams(tb, name)
	p, err := NewParameters(lit)
	if err != nil {
		tb.Fatal(err)
	}
	kgen := rlwe.NewKeyGenerator(params)
	sk, pk := kgen.GenKeyPairNew()
	server, err := NewServer(params, pk, p, nil)
	if err != nil {
		tb.Fatal(err)
	}
	client, err := NewClient(params, sk, p, nil)
	if err != nil {
		tb.Fatal(err)
	}
	tc := &testContext{
		name: name, params: params, p: p, sk: sk, pk: pk, server: server, client: client,
		ecd:  hefloat.NewEncoder(params),
		enc:  rlwe.NewEncryptor(params, pk),
		dec:  rlwe.NewDecryptor(params, sk),
		eval: hefloat.NewEvaluator(params, nil),
	}
	ctxCache[key] = tc
	return tc
}

// testPresets are the presets the tests run on: two standard rings and a
// conjugate-invariant one.
var testPresets = []string{ckks.InsecureTest11, ckks.InsecureTest12, testCI11}

// Conjugate-invariant test rings (N real slots), named like presets:
// mpcbridge/elementwise's chain (a 103-bit mask level, seven 36-bit levels,
// two key-switching primes) in N = 2^11 (insecure, fast) and N = 2^14.
const (
	testCI11 = "test-ci11"
	testCI14 = "test-ci14"
)

// testParams returns the parameters of a ckks preset or of a
// conjugate-invariant test ring.
func testParams(tb testing.TB, name string) hefloat.Parameters {
	tb.Helper()
	var lit hefloat.ParametersLiteral
	switch name {
	case testCI11, testCI14:
		lit = hefloat.ParametersLiteral{LogN: 11, LogQ: []int{52, 51, 36, 36, 36, 36, 36, 36, 36}, LogP: []int{41, 41},
			LogDefaultScale: 36, RingType: ring.ConjugateInvariant, Xs: rlwe.DefaultXs, Xe: rlwe.DefaultXe}
		if name == testCI14 {
			lit.LogN = 14
		}
	default:
		preset, err := ckks.PresetByName(name, true)
		if err != nil {
			tb.Fatal(err)
		}
		lit = preset.Literal
	}
	params, err := hefloat.NewParametersFromLiteral(lit)
	if err != nil {
		tb.Fatal(err)
	}
	return params
}

// randomVector returns slots values uniform in [-2^logBound, 2^logBound].
func randomVector(r *rand.Rand, slots, logBound int) []float64 {
	v := make([]float64, slots)
	bound := math.Ldexp(1, logBound)
	for i := range v {
		v[i] = (2*r.Float64() - 1) * bound
	}
	return v
}

// computedCiphertext returns an encryption of x at level obtained as a
// server would: x encrypted at level+1, multiplied by the constant 1/2,
// rescaled and doubled, so that it carries computation noise.
func (tc *testContext) computedCiphertext(tb testing.TB, x []float64, level int) *rlwe.Ciphertext {
	tb.Helper()
	if level == tc.params.MaxLevel() {
		pt := hefloat.NewPlaintext(tc.params, level)
		if err := tc.ecd.Encode(x, pt); err != nil {
			tb.Fatal(err)
		}
		ct, err := tc.enc.EncryptNew(pt)
		if err != nil {
			tb.Fatal(err)
		}
		return ct
	}
	pt := hefloat.NewPlaintext(tc.params, level+1)
	if err := tc.ecd.Encode(x, pt); err != nil {
		tb.Fatal(err)
	}
	ct, err := tc.enc.EncryptNew(pt)
	if err != nil {
		tb.Fatal(err)
	}
	if err := tc.eval.Mul(ct, 0.5, ct); err != nil {
		tb.Fatal(err)
	}
	if err := tc.eval.Rescale(ct, ct); err != nil {
		tb.Fatal(err)
	}
	if err := tc.eval.Add(ct, ct, ct); err != nil {
		tb.Fatal(err)
	}
	if ct.Level() != level {
		tb.Fatalf("computed ciphertext at level %d, want %d", ct.Level(), level)
	}
	return ct
}

// decrypt returns the real parts of the slots of ct.
func (tc *testContext) decrypt(tb testing.TB, ct *rlwe.Ciphertext) []float64 {
	tb.Helper()
	pt := tc.dec.DecryptNew(ct)
	out := make([]float64, 1<<ct.LogDimensions.Cols)
	if err := tc.ecd.Decode(pt, out); err != nil {
		tb.Fatal(err)
	}
	return out
}

func maxAbsErr(a, b []float64) float64 {
	var m float64
	for i := range a {
		m = math.Max(m, math.Abs(a[i]-b[i]))
	}
	return m
}

// frameConn is the tests' Conn: frames of [type u16][length u32][payload]
// over a net.Conn, honouring the context through deadlines.
type frameConn struct {
	c        net.Conn
	maxFrame int
	sent     int64 // payload bytes sent
	recvd    int64
}

func newFrameConn(c net.Conn) *frameConn { return &frameConn{c: c, maxFrame: 1 << 30} }

func (f *frameConn) watch(ctx context.Context) func() bool {
	if d, ok := ctx.Deadline(); ok {
		f.c.SetDeadline(d)
	} else {
		f.c.SetDeadline(time.Time{})
	}
	return context.AfterFunc(ctx, func() { f.c.SetDeadline(time.Unix(1, 0)) })
}

func (f *frameConn) Send(ctx context.Context, typ uint16, payload []byte) error {
	defer f.watch(ctx)()
	var hdr [6]byte
	binary.LittleEndian.PutUint16(hdr[:], typ)
	binary.LittleEndian.PutUint32(hdr[2:], uint32(len(payload)))
	if _, err := f.c.Write(append(hdr[:], payload...)); err != nil {
		return err
	}
	f.sent += int64(len(payload))
	return nil
}

func (f *frameConn) Recv(ctx context.Context, typ uint16) ([]byte, error) {
	defer f.watch(ctx)()
	var hdr [6]byte
	if _, err := io.ReadFull(f.c, hdr[:]); err != nil {
		return nil, err
	}
	got := binary.LittleEndian.Uint16(hdr[:])
	n := int(binary.LittleEndian.Uint32(hdr[2:]))
	if n > f.maxFrame {
		return nil, fmt.Errorf("frame of %d bytes exceeds %d", n, f.maxFrame)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(f.c, buf); err != nil {
		return nil, err
	}
	if got != typ {
		return nil, fmt.Errorf("message type %#04x, want %#04x", got, typ)
	}
	f.recvd += int64(n)
	return buf, nil
}

func (f *frameConn) Close() error { return f.c.Close() }

// pipe returns two connected frame connections over net.Pipe.
func pipe() (server, client *frameConn) {
	a, b := net.Pipe()
	return newFrameConn(a), newFrameConn(b)
}

// rawConn hands back canned payloads and records what was sent: for
// driving one side with crafted messages.
type rawConn struct {
	in   map[uint16][]byte
	sent map[uint16][]byte
}

func (r *rawConn) Send(_ context.Context, typ uint16, payload []byte) error {
	if r.sent == nil {
		r.sent = map[uint16][]byte{}
	}
	r.sent[typ] = payload
	return nil
}

func (r *rawConn) Recv(_ context.Context, typ uint16) ([]byte, error) {
	p, ok := r.in[typ]
	if !ok {
		return nil, errors.New("rawConn: nothing to receive")
	}
	return p, nil
}

func bg() context.Context { return context.Background() }

func contextWithCancel() (context.Context, context.CancelFunc) { return context.WithCancel(bg()) }
