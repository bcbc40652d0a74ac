package matmul

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"

	"github.com/cipherprune/cipherprune/ckks/polymat"
	"github.com/cipherprune/cipherprune/mpcbridge/internal/nettest"
	"github.com/cipherprune/cipherprune/mpcbridge/share"
	"github.com/cipherprune/cipherprune/mpcbridge/wire"
)

// recConn records the payloads that pass through a Conn.
type recConn struct {
	Conn
	mu    sync.Mutex
	sent  map[wire.Type][][]byte
	recvd map[wire.Type][][]byte
}

func record(c Conn) *recConn {
	return &recConn{Conn: c, sent: map[wire.Type][][]byte{}, recvd: map[wire.Type][][]byte{}}
}

func (r *recConn) Send(ctx context.Context, t wire.Type, p []byte) error {
	r.mu.Lock()
	r.sent[t] = append(r.sent[t], append([]byte(nil), p...))
	r.mu.Unlock()
	return r.Conn.Send(ctx, t, p)
}

func (r *recConn) Recv(ctx context.Context, t wire.Type) ([]byte, error) {
	p, err := r.Conn.Recv(ctx, t)
	if err == nil {
		r.mu.Lock()
		r.recvd[t] = append(r.recvd[t], append([]byte(nil), p...))
		r.mu.Unlock()
	}
	return p, err
}

// replayConn feeds recorded payloads to one party and records what it
// sends.
type replayConn struct {
	mu   sync.Mutex
	in   map[wire.Type][][]byte
	sent map[wire.Type][][]byte
}

func replay(in map[wire.Type][][]byte) *replayConn {
	cp := map[wire.Type][][]byte{}
	for t, ps := range in {
		cp[t] = append([][]byte(nil), ps...)
	}
	return &replayConn{in: cp, sent: map[wire.Type][][]byte{}}
}

func (r *replayConn) Send(_ context.Context, t wire.Type, p []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sent[t] = append(r.sent[t], append([]byte(nil), p...))
	return nil
}

func (r *replayConn) Recv(_ context.Context, t wire.Type) ([]byte, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.in[t]) == 0 {
		return nil, fmt.Errorf("replay: no %v left", t)
	}
	p := r.in[t][0]
	r.in[t] = r.in[t][1:]
	return p, nil
}

// leakSetup runs one product over a wire connection, recording the
// client's input messages, and returns what a replay needs.
type leakSetup struct {
	tc     *testContext
	pr     *problem
	ws     *Weights
	inputs map[wire.Type][][]byte
}

func newLeakSetup(t *testing.T) *leakSetup {
	tc := newTestContext(t, polymat.N12, testLiteral)
	r := rand.New(rand.NewPCG(11, 12))
	pr := tc.newProblem(t, r, polymat.Dims{Rows: 5, In: 24, Out: 20}, polymat.Block{D0: 2, D1: 8, D2: 8}, false)
	ws, err := NewWeights(bg(), tc.p, pr.lay, pr.w, nil, 1)
	if err != nil {
		t.Fatal(err)
	}
	sc, cc := connPair(t, "pipe")
	rc := record(cc)
	srv, err := NewServer(tc.p, tc.pk, 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	cli, err := NewClient(tc.p, tc.sk, 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	serr, cerr := nettest.Both(func() error {
		_, err := srv.MatMul(bg(), sc, pr.lay, ws, nil)
		return err
	}, func() error {
		_, err := cli.MatMul(bg(), rc, pr.lay, tc.fixedX(pr))
		return err
	})
	if err := errors.Join(serr, cerr); err != nil {
		t.Fatal(err)
	}
	return &leakSetup{tc: tc, pr: pr, ws: ws, inputs: rc.sent}
}

// serve runs a server (broken as configured) on the recorded inputs and
// returns its decoded output ciphertexts by sequence number, and its raw
// messages.
func (ls *leakSetup) serve(t *testing.T, configure func(*Server)) ([]outputCt, [][]byte) {
	t.Helper()
	srv, err := NewServer(ls.tc.p, ls.tc.pk, 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	if configure != nil {
		configure(srv)
	}
	rc := replay(ls.inputs)
	if _, err := srv.MatMul(bg(), rc, ls.pr.lay, ls.ws, nil); err != nil {
		t.Fatal(err)
	}
	msgs := rc.sent[MsgOutput]
	var cts []outputCt
	ri := newRingInfo(ls.tc.p)
	for _, m := range msgs {
		got, err := ls.tc.p.decodeOutput(m, ls.pr.lay, len(cts), ri.top)
		if err != nil {
			return nil, msgs // a message the client would refuse
		}
		cts = append(cts, got...)
	}
	return cts, msgs
}

// rerandomizationFailures reports how the server's c1 polynomials fall
// short of fresh RLWE samples: c1 equal between two runs on the same
// client ciphertexts (a deterministic function of them, hence of W), or
// runs that differ by the same polynomial in every output (one encryption
// of zero reused). It returns nil for a sound server.
func (ls *leakSetup) rerandomizationFailures(t *testing.T, configure func(*Server)) error {
	a, _ := ls.serve(t, configure)
	b, _ := ls.serve(t, configure)
	if len(a) == 0 || len(a) != len(b) {
		t.Fatalf("runs returned %d and %d outputs", len(a), len(b))
	}
	ri := newRingInfo(ls.tc.p)
	var errs []error
	equal, total := 0, 0
	for o := range a {
		for j := range a[o].c1 {
			if a[o].c1[j] == b[o].c1[j] {
				equal++
			}
			total++
		}
	}
	// A fresh c1 repeats a coefficient with probability 2^-94.
	if equal > 0 {
		errs = append(errs, fmt.Errorf("%d of %d coefficients of c1 are the same in two runs on the same inputs: c1 is a function of the client's ciphertexts and W", equal, total))
	}
	// Differences between the runs, output by output: with one encryption
	// of zero per run they agree up to the rounding (±1) everywhere.
	top := ri.top.add(u128{0, 1})
	diff := func(o, j int) u128 {
		d := a[o].c1[j].add(top).sub(b[o].c1[j])
		if !d.less(top) {
			d = d.sub(top)
		}
		return d
	}
	close := 0
	for o := 1; o < len(a); o++ {
		for j := range a[o].c1 {
			d := diff(o, j).add(top).sub(diff(0, j))
			if !d.less(top) {
				d = d.sub(top)
			}
			if d.less(u128{0, 2}) || top.sub(d).less(u128{0, 2}) {
				close++
			}
		}
	}
	if close > 0 {
		errs = append(errs, fmt.Errorf("%d coefficients of c1 move by the same amount between runs in output 0 and another output: one encryption of zero serves several outputs", close))
	}
	return errors.Join(errs...)
}

// TestRerandomization checks that every output's c1 is a fresh sample:
// not a deterministic function of the client's ciphertexts (which would
// reveal W: c1 = Σ_a c1_a·W_a with c1_a the client's own), and not
// re-randomized by a shared encryption of zero. The same check on a
// server without the encryption of zero must fail.
func TestRerandomization(t *testing.T) {
	ls := newLeakSetup(t)
	if err := ls.rerandomizationFailures(t, nil); err != nil {
		t.Fatal(err)
	}
	err := ls.rerandomizationFailures(t, func(s *Server) { s.skipRerandomize = true })
	if err == nil || !strings.Contains(err.Error(), "function of the client's ciphertexts") {
		t.Fatalf("a server without the encryption of zero passed the check: %v", err)
	}
	// One worker, so that all outputs share its single u.
	err = ls.rerandomizationFailures(t, func(s *Server) { s.reuseZero = true; s.ev = polymat.NewEvaluator(s.p.ring, 1) })
	if err == nil || !strings.Contains(err.Error(), "serves several outputs") {
		t.Fatalf("a server reusing its encryption of zero passed the check: %v", err)
	}
	// Without it, c1 is exactly Σ_a c1_a·W_a, which the client can test
	// against any candidate W.
	cts, _ := ls.serve(t, func(s *Server) { s.skipRerandomize = true })
	in := ls.inputCiphertexts(t)
	ev := polymat.NewEvaluator(ls.tc.ring, 1)
	det, err := ev.MulNew(bg(), ls.pr.lay, in, ls.ws.enc)
	if err != nil {
		t.Fatal(err)
	}
	ri := newRingInfo(ls.tc.p)
	ringQ := ls.tc.ring.RingQ()
	res := make([]uint64, ls.tc.ring.Limbs())
	seq0 := outputSeq(ls.pr.lay, 0)
	c1 := det[seq0].Value[1]
	ringQ.INTT(c1, c1)
	for j := range cts[0].c1 {
		if got, want := cts[0].c1[j], ri.compress(ri.reconstruct(column(c1, j, res))); got != want {
			t.Fatalf("coefficient %d of the broken server's c1 is not Σ c1_a·W_a", j)
		}
	}
}

// inputCiphertexts rebuilds the client's recorded input ciphertexts.
func (ls *leakSetup) inputCiphertexts(t *testing.T) []*rlwe.Ciphertext {
	t.Helper()
	var in []*rlwe.Ciphertext
	for _, m := range ls.inputs[MsgInput] {
		cts, err := ls.tc.p.decodeInput(m, ls.pr.lay, len(in))
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cts {
			ct := polymat.NewCiphertext(ls.tc.ring)
			ct.Value[0] = c.c0
			if err := polymat.ExpandC1(ls.tc.ring, c.seed[:], ct.Value[1]); err != nil {
				t.Fatal(err)
			}
			in = append(in, ct)
		}
	}
	return in
}

// targetsOnlyFailures checks that every output message carries c0 at the
// output's targets only: its size is the header plus, per ciphertext,
// (targets + N) coefficients of OutWidth bits, and the client accepts it.
func (ls *leakSetup) targetsOnlyFailures(t *testing.T, configure func(*Server)) error {
	cts, msgs := ls.serve(t, configure)
	lay := ls.pr.lay
	next := 0
	for k, m := range msgs {
		count := min(ls.tc.p.chunk, lay.Outputs()-next)
		want := headerSize
		for s := next; s < next+count; s++ {
			want += ls.tc.p.outputCtBytes(lay, outputSeq(lay, s))
		}
		if len(m) != want {
			return fmt.Errorf("output message %d has %d bytes, want %d for c0 at the targets only and c1", k, len(m), want)
		}
		next += count
	}
	if len(cts) != lay.Outputs() {
		return fmt.Errorf("the client decodes %d of %d outputs", len(cts), lay.Outputs())
	}
	for s, ct := range cts {
		if o := outputSeq(lay, s); len(ct.c0) != lay.Targets(o) {
			return fmt.Errorf("output %d carries %d values of c0 for %d targets", o, len(ct.c0), lay.Targets(o))
		}
	}
	return nil
}

// TestOnlyTargetsSent checks that c0 leaves the server at the targets
// only (the other coefficients hold cross sums of W), and that a server
// sending all of c0 fails the check and is refused by the client.
func TestOnlyTargetsSent(t *testing.T) {
	ls := newLeakSetup(t)
	if err := ls.targetsOnlyFailures(t, nil); err != nil {
		t.Fatal(err)
	}
	broken := func(s *Server) { s.sendAllC0 = true }
	if err := ls.targetsOnlyFailures(t, broken); err == nil {
		t.Fatal("a server sending all of c0 passed the check")
	}
	_, msgs := ls.serve(t, broken)
	ri := newRingInfo(ls.tc.p)
	if _, err := ls.tc.p.decodeOutput(msgs[0], ls.pr.lay, 0, ri.top); err == nil || !strings.Contains(err.Error(), "message body of") {
		t.Fatalf("the client accepted c0 at every coefficient: %v", err)
	}
}

// TestMaskCoversNoise opens outputs white-box, with the server's masks at
// hand, and checks the quantities the mask width rests on: p - M = v + e
// + (rounding of the compression), |v + e| < 2^V, and e within the
// bound of the package documentation (20·Σ|W| over the column block plus
// the encryption of zero, 20·(2N+1)).
func TestMaskCoversNoise(t *testing.T) {
	tc := newTestContext(t, polymat.N12, benchLiteral)
	r := rand.New(rand.NewPCG(13, 14))
	pr := tc.newProblem(t, r, polymat.Dims{Rows: 6, In: 40, Out: 30}, polymat.Block{D0: 3, D1: 8, D2: 16}, false)
	lay := pr.lay
	ws, err := NewWeights(bg(), tc.p, lay, pr.w, nil, 1)
	if err != nil {
		t.Fatal(err)
	}
	x := tc.fixedX(pr)
	// The client's inputs, as the server rebuilds them.
	cli, err := NewClient(tc.p, tc.sk, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	rc := replay(nil)
	if err := cli.sendInputs(bg(), rc, lay, x); err != nil {
		t.Fatal(err)
	}
	ls := &leakSetup{tc: tc, pr: pr, ws: ws, inputs: rc.sent}
	in := ls.inputCiphertexts(t)
	srv, err := NewServer(tc.p, tc.pk, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	z, err := srv.newSanitizer()
	if err != nil {
		t.Fatal(err)
	}
	op := cli.newOpener()
	outs, err := polymat.NewEvaluator(tc.ring, 1).MulNew(bg(), lay, in, ws.enc)
	if err != nil {
		t.Fatal(err)
	}
	wint := make([]int64, len(pr.w))
	for i, v := range pr.w {
		wint[i] = int64(roundLdexp(v, tc.p.weightFracBits))
	}
	n := int64(tc.ring.N())
	shares := make(share.Vector, lay.Rows*lay.Out)
	vBound := new(big.Int).Lsh(big.NewInt(1), uint(tc.p.valueBits))
	var worstNoise float64
	for o, ct := range outs {
		data := z.sanitize(lay, o, ct, nil, shares)
		var oc outputCt
		oc.c0 = make([]u128, lay.Targets(o))
		oc.c1 = make([]u128, tc.ring.N())
		rd := bitReader{buf: data}
		for _, vals := range [2][]u128{oc.c0, oc.c1} {
			for j := range vals {
				vals[j] = rd.read128(uint(tc.p.outWidth))
			}
		}
		p, err := op.openRaw(lay, o, &oc)
		if err != nil {
			t.Fatal(err)
		}
		j := o % lay.ColBlocks()
		// The column block's Σ|W| for the noise bound.
		var blockL1 int64
		for c := j * lay.D2; c < j*lay.D2+lay.BlockCols(j); c++ {
			for k := 0; k < lay.In; k++ {
				blockL1 += abs64(wint[k*lay.Out+c])
			}
		}
		noiseBound := big.NewInt(20*blockL1 + 20*(2*n+1))
		// Compression: 2^(k-1)·(N+1) at worst.
		noiseBound.Add(noiseBound, new(big.Int).Lsh(big.NewInt(n+1), uint(max(0, tc.p.compressBits-1))))
		for t2, e := range op.entries {
			row, col := e/lay.Out, e%lay.Out
			v := new(big.Int)
			for k := 0; k < lay.In; k++ {
				v.Add(v, new(big.Int).Mul(x[row*lay.In+k].Big(nil), big.NewInt(wint[k*lay.Out+col])))
			}
			v.Lsh(v, uint(tc.p.guardBits))
			ve := new(big.Int).Sub(p[t2].Big(nil), z.m[t2].Big(nil)) // v + e + rounding
			if ve.CmpAbs(vBound) >= 0 {
				t.Fatalf("output %d target %d: |v + e| = %v >= 2^V", o, t2, ve)
			}
			e := new(big.Int).Sub(ve, v)
			if e.CmpAbs(noiseBound) > 0 {
				t.Fatalf("output %d target %d: noise %v above the bound %v", o, t2, e, noiseBound)
			}
			f, _ := new(big.Float).SetInt(e).Float64()
			worstNoise = max(worstNoise, f, -f)
		}
	}
	t.Logf("largest noise %.3g = 2^%.1f (V = %d, β = %d)", worstNoise, log2(worstNoise), tc.p.valueBits, tc.p.maskBits)
}
