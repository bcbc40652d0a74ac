package matmul

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"sync"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"
	"github.com/tuneinsight/lattigo/v5/ring"

	"github.com/cipherprune/cipherprune/ckks/polymat"
	"github.com/cipherprune/cipherprune/mpcbridge/share"
)

// Weights is a server's matrix W (In x Out) quantized to round(2^Fw·W),
// checked against the public output bound and encoded for one D1 x D2
// blocking (polymat.EncodedWeights): pre-encoded once (NewWeights) or per
// call on the workers of MatMul (NewWeightsOnTheFly), with an optional
// bias. Parameters.PlanWeights says which, per matrix of a model, within
// a memory budget.
type Weights struct {
	enc  *polymat.EncodedWeights
	bias []share.Int128 // round(2^F·bias), nil for none
}

// NewWeights quantizes w (In x Out, row-major; lay gives In, Out and the
// blocking) and bias (Out values, or nil), checks 2^B·Σ_k |W[k,c]| <= 2^By
// for every column on the quantized weights, and pre-encodes the blocks
// with workers goroutines. The memory is MemoryBytes.
func NewWeights(ctx context.Context, p Parameters, lay polymat.Layout, w, bias []float64, workers int) (*Weights, error) {
	q, ws, err := quantize(p, lay, w, bias)
	if err != nil {
		return nil, fmt.Errorf("cannot NewWeights: %w", err)
	}
	res, err := polymat.FromInt64(p.ring, lay.In, lay.Out, q)
	if err != nil {
		return nil, fmt.Errorf("cannot NewWeights: %w", err)
	}
	if ws.enc, err = polymat.NewEncodedWeights(ctx, p.ring, lay, res, workers); err != nil {
		return nil, fmt.Errorf("cannot NewWeights: %w", err)
	}
	return ws, nil
}

// NewWeightsOnTheFly is NewWeights with the blocks encoded per call, in
// the workers of every MatMul, just before their products: it holds the
// quantized matrix only (In·Out·8 bytes, MemoryBytes) and each MatMul
// spends the encoding (polymat.Cost.EncodeSeconds).
func NewWeightsOnTheFly(p Parameters, lay polymat.Layout, w, bias []float64) (*Weights, error) {
	q, ws, err := quantize(p, lay, w, bias)
	if err != nil {
		return nil, fmt.Errorf("cannot NewWeightsOnTheFly: %w", err)
	}
	if ws.enc, err = polymat.NewOnTheFlyWeights(p.ring, lay, q); err != nil {
		return nil, fmt.Errorf("cannot NewWeightsOnTheFly: %w", err)
	}
	return ws, nil
}

// quantize returns round(2^Fw·w) after the checks of NewWeights, and the
// Weights with the quantized bias.
func quantize(p Parameters, lay polymat.Layout, w, bias []float64) ([]int64, *Weights, error) {
	if len(w) != lay.In*lay.Out {
		return nil, nil, fmt.Errorf("%d weights for %dx%d", len(w), lay.In, lay.Out)
	}
	if bias != nil && len(bias) != lay.Out {
		return nil, nil, fmt.Errorf("%d biases for %d columns", len(bias), lay.Out)
	}
	scale := math.Ldexp(1, p.weightFracBits)
	q := make([]int64, len(w))
	for k, v := range w {
		x := math.Round(v * scale)
		if !(math.Abs(x) < 1<<52) {
			return nil, nil, fmt.Errorf("weight %d (%v) out of range", k, v)
		}
		q[k] = int64(x)
	}
	// Column sums of |W| in units of 2^-Fw: each below 2^52·2^16, so uint64
	// holds them exactly.
	e := p.weightFracBits + p.logBoundOut - p.logBound
	for c := 0; c < lay.Out; c++ {
		var sum uint64
		for k := 0; k < lay.In; k++ {
			v := q[k*lay.Out+c]
			sum += uint64(max(v, -v))
		}
		if e < 63 && (e < 0 && sum != 0 || e >= 0 && sum > 1<<e) {
			return nil, nil, fmt.Errorf("column %d has Σ|W| = %.4g, above 2^(LogBoundOut-LogBound) = 2^%d", c, float64(sum)/scale, p.logBoundOut-p.logBound)
		}
	}
	ws := &Weights{}
	if bias != nil {
		ws.bias = make([]share.Int128, len(bias))
		for c, b := range bias {
			x := math.Round(math.Ldexp(b, p.fracBits))
			if !(math.Abs(x) < 1<<62) {
				return nil, nil, fmt.Errorf("bias %d (%v) out of range", c, b)
			}
			ws.bias[c] = share.Int128FromInt64(int64(x))
		}
	}
	return q, ws, nil
}

// MemoryBytes returns the memory held between calls: the pre-encoded
// plaintexts, or the quantized matrix of weights encoded per call.
func (w *Weights) MemoryBytes() int64 { return w.enc.MemoryBytes() }

// PreEncoded reports whether the blocks were encoded once (NewWeights).
func (w *Weights) PreEncoded() bool { return w.enc.PreEncoded() }

// Server is the model owner's side. It holds the client's public key (for
// the re-randomization) and never a secret key. It runs one product at a
// time and counts the outputs it masks against the session's bound
// (ParametersLiteral.LogMaxValues): use one Server per session.
type Server struct {
	mu      sync.Mutex
	p       Parameters
	ri      *ringInfo
	pk      *rlwe.PublicKey
	ev      *polymat.Evaluator
	workers int
	rnd     io.Reader
	used    budget

	// Broken variants, for the tests that show the security checks catch
	// them; never set outside tests.
	skipRerandomize bool // no fresh encryption of zero
	reuseZero       bool // one u for all the outputs a worker re-randomizes
	sendAllC0       bool // c0 at every coefficient, not only the targets
}

// NewServer returns the server side for the client's public key pk (of
// the ring of p, as Lattigo generates it: NTT domain, Montgomery form),
// computing on workers goroutines. rnd seeds the
// encryptions of zero and the masks; nil means crypto/rand (pass a
// deterministic reader only in tests).
func NewServer(p Parameters, pk *rlwe.PublicKey, workers int, rnd io.Reader) (*Server, error) {
	if pk == nil {
		return nil, errors.New("cannot NewServer: nil public key")
	}
	if pk.Value[0].Q.N() != p.ring.N() || pk.LevelQ() != p.ring.Limbs()-1 || pk.LevelP() != -1 {
		return nil, fmt.Errorf("cannot NewServer: public key of degree %d at levels (%d, %d), ring %v", pk.Value[0].Q.N(), pk.LevelQ(), pk.LevelP(), p.ring)
	}
	if rnd == nil {
		rnd = rand.Reader
	}
	return &Server{
		p: p, ri: newRingInfo(p), pk: pk,
		ev:      polymat.NewEvaluator(p.ring, workers),
		workers: max(1, workers), rnd: &lockedReader{r: rnd},
		used: budget{limit: int64(1) << p.logMaxValues},
	}, nil
}

// Params returns the protocol parameters.
func (s *Server) Params() Parameters { return s.p }

// Masked returns the number of outputs masked so far in this session.
func (s *Server) Masked() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.used.used
}

// MatMul runs the server's side of one product Y = X·W + bias on the
// layout both parties agreed on: it receives the client's encrypted
// input blocks (MsgInput), adds its own input share xs (Rows x In,
// row-major, integer shares at scale 2^F; nil when the client holds X
// alone), multiplies, and sends every output re-randomized, masked and
// compressed (MsgOutput). It returns its share of round(2^F·Y), Rows x
// Out row-major: the client's share plus this one is round(2^F·Y) up to
// ±2 (two roundings and the noise; package documentation).
func (s *Server) MatMul(ctx context.Context, conn Conn, lay polymat.Layout, w *Weights, xs share.Vector) (share.Vector, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if w == nil {
		return nil, errors.New("cannot MatMul: nil weights")
	}
	if err := w.enc.Compatible(lay); err != nil {
		return nil, fmt.Errorf("cannot MatMul: %w", err)
	}
	if xs != nil && len(xs) != lay.Rows*lay.In {
		return nil, fmt.Errorf("cannot MatMul: input share of %d values, want %d", len(xs), lay.Rows*lay.In)
	}
	if err := s.used.take(lay.TotalTargets()); err != nil {
		return nil, fmt.Errorf("cannot MatMul: %w", err)
	}
	in, err := s.receiveInputs(ctx, conn, lay, xs)
	if err != nil {
		return nil, fmt.Errorf("cannot MatMul: %w", err)
	}
	out, err := s.computeAndSend(ctx, conn, lay, w, in)
	if err != nil {
		return nil, fmt.Errorf("cannot MatMul: %w", err)
	}
	return out, nil
}

// receiveInputs reads every input message, rebuilds the ciphertexts (c1
// from the seeds) and adds the encoding of the server's share.
func (s *Server) receiveInputs(ctx context.Context, conn Conn, lay polymat.Layout, xs share.Vector) ([]*rlwe.Ciphertext, error) {
	var xr polymat.ResidueMatrix
	if xs != nil {
		xr = scaledResidues(s.p, lay.Rows, lay.In, xs)
	}
	ringQ := s.p.ring.RingQ()
	in := make([]*rlwe.Ciphertext, lay.Inputs())
	for next := 0; next < len(in); {
		payload, err := conn.Recv(ctx, MsgInput)
		if err != nil {
			return nil, fmt.Errorf("receive: %w", err)
		}
		cts, err := s.p.decodeInput(payload, lay, next)
		if err != nil {
			return nil, fmt.Errorf("bad input message: %w", err)
		}
		err = forEach(ctx, s.workers, len(cts), func(_, k int) error {
			idx := next + k
			ct := polymat.NewCiphertext(s.p.ring)
			ct.Value[0] = cts[k].c0
			if err := polymat.ExpandC1(s.p.ring, cts[k].seed[:], ct.Value[1]); err != nil {
				return err
			}
			if xs != nil {
				m := ringQ.NewPoly()
				lay.EncodeInput(xr, idx/lay.InnerBlocks(), idx%lay.InnerBlocks(), m)
				ringQ.NTT(m, m)
				ringQ.Add(ct.Value[0], m, ct.Value[0])
			}
			in[idx] = ct
			return nil
		})
		if err != nil {
			return nil, err
		}
		next += len(cts)
	}
	return in, nil
}

// outbox collects the encoded outputs, which the workers finish in any
// order, and hands them to the sender in sequence order.
type outbox struct {
	mu    sync.Mutex
	cond  *sync.Cond
	slots [][]byte
	err   error
}

func (b *outbox) put(seq int, data []byte) {
	b.mu.Lock()
	b.slots[seq] = data
	b.mu.Unlock()
	b.cond.Broadcast()
}

func (b *outbox) fail(err error) {
	b.mu.Lock()
	if b.err == nil {
		b.err = err
	}
	b.mu.Unlock()
	b.cond.Broadcast()
}

// take waits for slots [first, first+count) and returns them.
func (b *outbox) take(first, count int) ([][]byte, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for {
		if b.err != nil {
			return nil, b.err
		}
		ready := true
		for _, s := range b.slots[first : first+count] {
			if s == nil {
				ready = false
				break
			}
		}
		if ready {
			out := b.slots[first : first+count]
			return out, nil
		}
		b.cond.Wait()
	}
}

func (b *outbox) release(first, count int) {
	b.mu.Lock()
	clear(b.slots[first : first+count])
	b.mu.Unlock()
}

// computeAndSend multiplies, sanitizes every output on the worker that
// computed it, and sends the outputs in sequence order as they complete.
func (s *Server) computeAndSend(ctx context.Context, conn Conn, lay polymat.Layout, w *Weights, in []*rlwe.Ciphertext) (share.Vector, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	shares := make(share.Vector, lay.Rows*lay.Out)
	san := make([]*sanitizer, s.ev.Workers())
	for k := range san {
		z, err := s.newSanitizer()
		if err != nil {
			return nil, err
		}
		san[k] = z
	}
	total := lay.Outputs()
	box := &outbox{slots: make([][]byte, total)}
	box.cond = sync.NewCond(&box.mu)
	seqOf := make([]int, total) // output index -> sequence number
	for seq := 0; seq < total; seq++ {
		seqOf[outputSeq(lay, seq)] = seq
	}
	sendErr := make(chan error, 1)
	go func() {
		err := s.sendOutputs(ctx, conn, lay, box)
		if err != nil {
			cancel() // stop the products
		}
		sendErr <- err
	}()
	err := s.ev.MulThen(ctx, lay, in, w.enc, func(worker, o int, ct *rlwe.Ciphertext) error {
		data := san[worker].sanitize(lay, o, ct, w.bias, shares)
		box.put(seqOf[o], data)
		return nil
	})
	if err != nil {
		box.fail(err)
		if serr := <-sendErr; serr != nil && !errors.Is(serr, err) {
			return nil, serr // the send failed first and cancelled the products
		}
		return nil, err
	}
	if err := <-sendErr; err != nil {
		return nil, err
	}
	return shares, nil
}

func (s *Server) sendOutputs(ctx context.Context, conn Conn, lay polymat.Layout, box *outbox) error {
	total := lay.Outputs()
	for first := 0; first < total; first += s.p.chunk {
		count := min(s.p.chunk, total-first)
		parts, err := box.take(first, count)
		if err != nil {
			return err
		}
		size := headerSize
		for _, p := range parts {
			size += len(p)
		}
		msg := make([]byte, 0, size)
		msg = s.p.appendHeader(msg, lay, first, count)
		for _, p := range parts {
			msg = append(msg, p...)
		}
		box.release(first, count)
		if err := conn.Send(ctx, MsgOutput, msg); err != nil {
			err = fmt.Errorf("send: %w", err)
			box.fail(err)
			return err
		}
	}
	return nil
}

// sanitizer is one worker's state for turning output ciphertexts into
// what the client may see.
type sanitizer struct {
	s       *Server
	xs, xe  ring.Sampler
	masks   *maskSampler
	u       ring.Poly
	drawn   bool
	m       []share.Int128
	targets []int
	entries []int
	res     []uint64
	out     outputCt
}

func (s *Server) newSanitizer() (*sanitizer, error) {
	params := s.p.ring
	prng, err := stream(s.rnd)
	if err != nil {
		return nil, err
	}
	xs, err := ring.NewSampler(prng, params.RingQ(), params.RLWE().Xs(), false)
	if err != nil {
		return nil, err
	}
	xe, err := ring.NewSampler(prng, params.RingQ(), params.RLWE().Xe(), false)
	if err != nil {
		return nil, err
	}
	masks, err := newMaskSampler(s.rnd, s.p.maskBits)
	if err != nil {
		return nil, err
	}
	return &sanitizer{
		s: s, xs: xs, xe: xe, masks: masks,
		u:   params.RingQ().NewPoly(),
		res: make([]uint64, params.Limbs()),
		out: outputCt{c1: make([]u128, params.N())},
	}, nil
}

// sanitize turns output o (NTT domain, coefficients reduced) into its
// encoded message part and writes the server's shares of its targets:
//
//  1. re-randomize: add a fresh public-key encryption of zero
//     (u·pk0 + e0, u·pk1 + e1), u and the e's drawn for this ciphertext
//     alone, so c1 is a fresh RLWE sample and no function of the client's
//     ciphertexts and W;
//  2. mask: add M_t to c0 at every target t, M_t the sum of three uniform
//     integers in [-2^β, 2^β); the server's share of the target is
//     round(-M_t / 2^(G+Fw)) (plus the bias);
//  3. keep c0 only at the targets (the other coefficients hold cross sums
//     of W and never leave) and c1 whole, both rounded to multiples of
//     2^k.
func (z *sanitizer) sanitize(lay polymat.Layout, o int, ct *rlwe.Ciphertext, bias, shares []share.Int128) []byte {
	s := z.s
	ringQ := s.p.ring.RingQ()
	c0, c1 := ct.Value[0], ct.Value[1]
	if !s.skipRerandomize {
		if !s.reuseZero || !z.drawn {
			z.xs.Read(z.u)
			ringQ.NTT(z.u, z.u)
			z.drawn = true
		}
		ringQ.MulCoeffsMontgomeryThenAdd(z.u, s.pk.Value[0].Q, c0)
		ringQ.MulCoeffsMontgomeryThenAdd(z.u, s.pk.Value[1].Q, c1)
	}
	ringQ.INTT(c0, c0)
	ringQ.INTT(c1, c1)
	if !s.skipRerandomize {
		z.xe.ReadAndAdd(c0)
		z.xe.ReadAndAdd(c1)
	}
	z.targets = lay.AppendTargets(z.targets[:0], o)
	z.entries = lay.AppendTargetEntries(z.entries[:0], o)
	t := len(z.targets)
	if cap(z.m) < t {
		z.m = make([]share.Int128, t)
	}
	m := z.m[:t]
	z.masks.Sample(m)
	moduli := s.ri.moduli
	for i, e := range z.targets {
		for l, q := range moduli {
			v := c0.Coeffs[l][e] + residue(m[i], q)
			if v >= q {
				v -= q
			}
			c0.Coeffs[l][e] = v
		}
	}
	shift := uint(s.p.Shift())
	for i, idx := range z.entries {
		sh := shiftRound(m[i].Neg(), shift)
		if bias != nil {
			sh = sh.Add(bias[idx%lay.Out])
		}
		shares[idx] = sh
	}
	// Compress: c0 at the targets, c1 everywhere.
	positions := z.targets
	if s.sendAllC0 {
		positions = make([]int, s.p.ring.N())
		for j := range positions {
			positions[j] = j
		}
	}
	if cap(z.out.c0) < len(positions) {
		z.out.c0 = make([]u128, len(positions))
	}
	z.out.c0 = z.out.c0[:len(positions)]
	for i, e := range positions {
		z.out.c0[i] = s.ri.compress(s.ri.reconstruct(column(c0, e, z.res)))
	}
	for j := range z.out.c1 {
		z.out.c1[j] = s.ri.compress(s.ri.reconstruct(column(c1, j, z.res)))
	}
	size := ((len(positions)+len(z.out.c1))*s.p.outWidth + 7) / 8
	return s.p.appendOutput(make([]byte, 0, size+8), &z.out)
}

// column returns the residues of coefficient j of p in res.
func column(p ring.Poly, j int, res []uint64) []uint64 {
	for l := range res {
		res[l] = p.Coeffs[l][j]
	}
	return res
}

// scaledResidues returns the residues of 2^G·x (rows x cols) for the
// encoding of an input share.
func scaledResidues(p Parameters, rows, cols int, x share.Vector) polymat.ResidueMatrix {
	m := polymat.NewResidueMatrix(p.ring, rows, cols)
	for l, q := range p.ring.Moduli() {
		g := polymat.ModInt64(1<<p.guardBits, q)
		dst := m.Limbs[l]
		for k, v := range x {
			dst[k] = mulMod(residue(v, q), g, q)
		}
	}
	return m
}

func mulMod(a, b, q uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	return bits.Rem64(hi, lo, q)
}

// lockedReader serializes reads of a shared random source.
type lockedReader struct {
	mu sync.Mutex
	r  io.Reader
}

func (l *lockedReader) Read(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return io.ReadFull(l.r, p)
}

// forEach runs f(worker, k) for k in [0, count) on workers goroutines and
// returns the first error.
func forEach(ctx context.Context, workers, count int, f func(worker, k int) error) error {
	workers = max(1, min(workers, count))
	var (
		mu   sync.Mutex
		next int
		ferr error
		wg   sync.WaitGroup
	)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for {
				mu.Lock()
				if ferr == nil {
					ferr = ctx.Err()
				}
				if ferr != nil || next >= count {
					mu.Unlock()
					return
				}
				k := next
				next++
				mu.Unlock()
				if err := f(w, k); err != nil {
					mu.Lock()
					if ferr == nil {
						ferr = err
					}
					mu.Unlock()
					return
				}
			}
		}(w)
	}
	wg.Wait()
	return ferr
}
