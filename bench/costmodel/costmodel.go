// Package costmodel measures, on this machine and a CKKS preset, the
// per-operation weights of the threshold search's cost model
// (prune.CostModelLiteral), so that the search weighs each layer by what
// the protocol really costs here instead of by operation counts.
//
// Every weight is seconds per value, timed on the model's own shape with
// real ciphertexts and the real two-party bridge over loopback TCP (both
// parties in this process, so the figures include the client's work):
//
//   - PtMul: a d x d plaintext-weight matmul on n rows (ckks.Evaluator.Linear
//     at the top level), over d²·n multiply-accumulates;
//   - CtMul: a ciphertext product with relinearization and rescale, averaged
//     over the levels a polynomial runs through, over the slots;
//   - Bridge: one refresh (mask, client decrypts and re-encrypts, unmask),
//     over the slots of the ciphertext;
//   - Compare: one pruning step on n rows (prunestep: shares, garbled
//     comparisons, shuffle, back to ciphertexts), less the bridge weight of
//     its n·(d+1) values, over n;
//   - Attention: one attention block (ckks.Evaluator.AttentionBlock on n
//     rows with every refresh through the bridge), less what the other
//     weights already model of it (the four projections, the exp, the
//     reciprocals, LayerNorm), over the 2·n²·d values of Q·Kᵀ and A·V.
//
// The cost model keeps its form (attention quadratic in the rows, the rest
// linear); a packed engine's real cost moves in steps of its blocks, which
// the report's predicted-vs-measured figures show.
package costmodel

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"time"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"
	"github.com/tuneinsight/lattigo/v5/he/hefloat"

	"github.com/cipherprune/cipherprune/ckks"
	"github.com/cipherprune/cipherprune/models"
	"github.com/cipherprune/cipherprune/models/approx"
	"github.com/cipherprune/cipherprune/mpcbridge/prunestep"
	"github.com/cipherprune/cipherprune/mpcbridge/wire"
	"github.com/cipherprune/cipherprune/prune"
)

// Config says what to measure.
type Config struct {
	// Preset is the CKKS preset (its name goes into the result's Source).
	Preset ckks.Preset
	// Model is the model whose first layer is timed, on the embeddings of
	// random tokens (the shape is what matters; real weights and inputs keep
	// the polynomials' inputs in their intervals and the bridge's values in
	// its bound).
	Model *models.Model
	// ExpShift is the softmax shift.
	ExpShift float64
	// Registry holds the approximation recipes the evaluator runs.
	Registry *approx.Registry
	// Step are the pruning step's parameters (engine.StepParameters).
	Step prunestep.Parameters
	// Rows is n, the number of rows timed.
	Rows int
	// Workers is the evaluator's number of goroutines (0: 1).
	Workers int
	// Reps is how many times each timed operation runs (0: 1); the
	// result is the median.
	Reps int
	// Progress, if not nil, receives a line per measurement.
	Progress io.Writer
}

// Report holds the raw timings behind a measured cost model.
type Report struct {
	Preset            string
	Rows, Hidden      int
	Heads, Block      int
	Linear            time.Duration // d x d matmul on Rows rows
	MulRelin          time.Duration // mean over the polynomial levels
	MulRelinLevels    [2]int        // the levels averaged, low and high
	Refresh           time.Duration // one ciphertext
	Prune             time.Duration // one pruning step on Rows rows
	AttentionBlock    time.Duration // one attention block on Rows rows
	AttentionModelled time.Duration // the block's part the other weights model
	Slots             int
	// Model is the measured cost model.
	Model prune.CostModelLiteral
}

// Measure times the operations and returns the measured cost model.
func Measure(ctx context.Context, cfg Config) (*Report, error) {
	if cfg.Model == nil || cfg.Model.Client == nil || cfg.Model.Server == nil || len(cfg.Model.Server.Layers) == 0 || cfg.Registry == nil {
		return nil, errors.New("cannot Measure: no model or no registry")
	}
	mc := cfg.Model.Server.Config
	layer := &cfg.Model.Server.Layers[0]
	heads := mc.NumHeads()
	if cfg.Rows < 2 || cfg.Rows > mc.MaxPositions() {
		return nil, fmt.Errorf("cannot Measure: %d rows not in [2, %d]", cfg.Rows, mc.MaxPositions())
	}
	reps := max(cfg.Reps, 1)
	workers := max(cfg.Workers, 1)
	params, err := cfg.Preset.Params()
	if err != nil {
		return nil, fmt.Errorf("cannot Measure: %w", err)
	}
	d := mc.HiddenSize()
	slots := params.MaxSlots()
	lay, err := ckks.LayoutFor(slots, cfg.Rows, d, mc.HeadDim(), mc.NumHeads())
	if err != nil {
		return nil, fmt.Errorf("cannot Measure: %w", err)
	}
	block := lay.Block
	logf := func(format string, a ...any) {
		if cfg.Progress != nil {
			fmt.Fprintf(cfg.Progress, "costmodel: "+format+"\n", a...)
		}
	}
	rep := &Report{Preset: cfg.Preset.Name, Rows: cfg.Rows, Hidden: d, Heads: heads, Block: block, Slots: slots}

	// Keys: the relinearization key and the Galois keys of one layer.
	kgen := rlwe.NewKeyGenerator(params)
	sk, pk := kgen.GenKeyPairNew()
	shape := ckks.Shape{Rows: cfg.Rows, Hidden: d, Heads: heads, Intermediate: mc.IntermediateSize(), Labels: 2}
	gals, err := ckks.GaloisElements(params, shape)
	if err != nil {
		return nil, fmt.Errorf("cannot Measure: %w", err)
	}
	logf("generating %d Galois keys", len(gals))
	evk := rlwe.NewMemEvaluationKeySet(kgen.GenRelinearizationKeyNew(sk), kgen.GenGaloisKeysNew(gals, sk)...)
	he, err := ckks.NewClient(params, pk, sk)
	if err != nil {
		return nil, fmt.Errorf("cannot Measure: %w", err)
	}
	srvStep, err := prunestep.NewServer(params, pk, cfg.Step, nil)
	if err != nil {
		return nil, fmt.Errorf("cannot Measure: %w", err)
	}
	cliStep, err := prunestep.NewClient(params, sk, cfg.Step, nil)
	if err != nil {
		return nil, fmt.Errorf("cannot Measure: %w", err)
	}
	reserve := srvStep.MinLevel()
	ev, err := ckks.NewEvaluator(params, evk, cfg.Registry, workers, ckks.WithReserve(reserve))
	if err != nil {
		return nil, fmt.Errorf("cannot Measure: %w", err)
	}
	r := rand.New(rand.NewPCG(uint64(cfg.Rows), uint64(d)))
	ids, types := make([]int, cfg.Rows), make([]int, cfg.Rows)
	for i := 1; i < cfg.Rows; i++ {
		ids[i] = r.IntN(mc.VocabSize())
	}
	x, err := cfg.Model.Client.Embed(ids, types)
	if err != nil {
		return nil, fmt.Errorf("cannot Measure: %w", err)
	}
	xc, err := he.EncryptMatrix(x, lay, params.MaxLevel())
	if err != nil {
		return nil, fmt.Errorf("cannot Measure: %w", err)
	}

	// PtMul: the query projection.
	el, err := ckks.NewEncodedLinear(&layer.Query, block, slots, 1, 0)
	if err != nil {
		return nil, fmt.Errorf("cannot Measure: %w", err)
	}
	if rep.Linear, err = median(ctx, reps, func() error { _, err := ev.Linear(ctx, xc, el); return err }); err != nil {
		return nil, fmt.Errorf("cannot Measure (matmul): %w", err)
	}
	logf("%dx%d matmul on %d rows (block %d): %v", d, d, cfg.Rows, block, rep.Linear)

	// CtMul: products at every level a polynomial uses, reserve+1 .. top.
	eval := hefloat.NewEvaluator(params, evk)
	lo, hi := reserve+1, params.MaxLevel()
	rep.MulRelinLevels = [2]int{lo, hi}
	var sum time.Duration
	for level := lo; level <= hi; level++ {
		ct := xc.Cts[0].CopyNew()
		eval.DropLevel(ct, ct.Level()-level)
		t, err := median(ctx, reps, func() error {
			p, err := eval.MulRelinNew(ct, ct)
			if err != nil {
				return err
			}
			return eval.Rescale(p, p)
		})
		if err != nil {
			return nil, fmt.Errorf("cannot Measure (product): %w", err)
		}
		sum += t
	}
	rep.MulRelin = sum / time.Duration(hi-lo+1)
	logf("ciphertext product, mean over levels %d..%d: %v", lo, hi, rep.MulRelin)

	// The bridge: a connection pair with the client serving it.
	srvConn, cliConn, closeConns, err := connPair()
	if err != nil {
		return nil, fmt.Errorf("cannot Measure: %w", err)
	}
	defer closeConns()
	bctx, cancel := context.WithCancel(ctx)
	defer cancel()
	served := make(chan error, 1)
	go func() {
		_, err := cliStep.ServeBridge(bctx, cliConn)
		served <- err
	}()
	// fail returns err with the client's error, if it failed.
	fail := func(stage string, err error) error {
		cancel()
		if cerr := <-served; cerr != nil {
			return fmt.Errorf("cannot Measure (%s): %w (client: %v)", stage, err, cerr)
		}
		return fmt.Errorf("cannot Measure (%s): %w", stage, err)
	}
	br := &refresher{s: srvStep, conn: srvConn}
	low := xc.Cts[0].CopyNew()
	eval.DropLevel(low, low.Level()-reserve)
	if rep.Refresh, err = median(ctx, reps, func() error { _, err := br.Refresh(ctx, []*rlwe.Ciphertext{low}); return err }); err != nil {
		return nil, fail("refresh", err)
	}
	logf("refresh of one ciphertext: %v", rep.Refresh)

	// Compare: one pruning step on the rows, about half kept.
	scores := make([]float64, cfg.Rows)
	for i := range scores {
		scores[i] = 2 * r.Float64() / float64(cfg.Rows)
	}
	hidden := xc.CopyNew()
	for i, ct := range hidden.Cts {
		eval.DropLevel(ct, ct.Level()-reserve)
		hidden.Cts[i] = ct
	}
	sv, err := he.EncryptVector(lay.TokenVector(func(i int) float64 { return scores[i] }), reserve)
	if err != nil {
		return nil, fmt.Errorf("cannot Measure: %w", err)
	}
	theta, beta := 1/float64(cfg.Rows), 1.5/float64(cfg.Rows)
	out := &ckks.AttentionOutput{Layer: 0, Hidden: hidden, Scores: sv}
	if rep.Prune, err = median(ctx, reps, func() error { _, _, err := srvStep.Prune(ctx, srvConn, out, theta, beta); return err }); err != nil {
		return nil, fail("pruning step", err)
	}
	logf("pruning step on %d rows: %v", cfg.Rows, rep.Prune)

	// Attention: one block with the bridge's refreshes.
	valid := make([]bool, cfg.Rows)
	for i := range valid {
		valid[i] = true
	}
	masks, err := he.EncryptAttentionMasks(valid, lay)
	if err != nil {
		return nil, fmt.Errorf("cannot Measure: %w", err)
	}
	enc, err := ckks.NewEncodedLayer(layer, ckks.AttentionConfig{Heads: heads, ExpShift: cfg.ExpShift}, block, slots, cfg.Registry)
	if err != nil {
		return nil, fmt.Errorf("cannot Measure: %w", err)
	}
	if rep.AttentionBlock, err = median(ctx, reps, func() error {
		_, err := ev.AttentionBlock(ctx, xc, enc, masks, nil, br, nil)
		return err
	}); err != nil {
		return nil, fail("attention", err)
	}
	logf("attention block on %d rows: %v", cfg.Rows, rep.AttentionBlock)
	if err := srvStep.Done(ctx, srvConn); err != nil {
		return nil, fmt.Errorf("cannot Measure: %w", err)
	}
	if err := <-served; err != nil {
		return nil, fmt.Errorf("cannot Measure: client: %w", err)
	}

	rep.Model = rep.weights(cfg.Registry)
	return rep, nil
}

// weights turns the timings into per-value weights.
func (rep *Report) weights(reg *approx.Registry) prune.CostModelLiteral {
	n, d, h := float64(rep.Rows), float64(rep.Hidden), float64(rep.Heads)
	slots := float64(rep.Slots)
	w := prune.CostModelLiteral{
		PtMul:  rep.Linear.Seconds() / (d * d * n),
		CtMul:  rep.MulRelin.Seconds() / slots,
		Bridge: rep.Refresh.Seconds() / slots,
	}
	w.Compare = math.Max(0, rep.Prune.Seconds()-w.Bridge*n*(d+1)) / n
	muls := func(fn approx.Func) float64 { return float64(reg.Recipe(fn, approx.High).Cost().CtCtMuls) }
	// What prune.Coster.LayerCost's other terms charge for this block.
	modelled := 4*d*d*n*w.PtMul +
		h*n*(n*muls(approx.Exp)+n)*w.CtMul +
		h*n*muls(approx.Reciprocal)*w.CtMul +
		n*(2*d+muls(approx.InvSqrt))*w.CtMul
	rep.AttentionModelled = time.Duration(modelled * float64(time.Second))
	w.Attention = math.Max(0, rep.AttentionBlock.Seconds()-modelled) / (2 * n * n * d)
	w.Source = fmt.Sprintf("measured: cipherprune costmodel, preset %s, n=%d, d=%d, %d heads, block %d: "+
		"matmul %.3gs, product %.3gs (levels %d..%d), refresh %.3gs/ct, pruning step %.3gs, attention block %.3gs",
		rep.Preset, rep.Rows, rep.Hidden, rep.Heads, rep.Block, rep.Linear.Seconds(), rep.MulRelin.Seconds(),
		rep.MulRelinLevels[0], rep.MulRelinLevels[1], rep.Refresh.Seconds(), rep.Prune.Seconds(), rep.AttentionBlock.Seconds())
	return w
}

// refresher refreshes through the pruning step's server.
type refresher struct {
	s    *prunestep.Server
	conn *wire.Conn
}

func (b *refresher) Refresh(ctx context.Context, cts []*rlwe.Ciphertext) ([]*rlwe.Ciphertext, error) {
	return b.s.Refresh(ctx, b.conn, cts)
}

func (b *refresher) RefreshTo(ctx context.Context, cts []*rlwe.Ciphertext, level int) ([]*rlwe.Ciphertext, error) {
	return b.s.RefreshTo(ctx, b.conn, cts, level)
}

// minTotal is how long median keeps repeating a fast operation.
const minTotal = time.Second

// median runs f reps times, and more until the runs took minTotal, and
// returns the median wall time.
func median(ctx context.Context, reps int, f func() error) (time.Duration, error) {
	var ts []time.Duration
	var total time.Duration
	for len(ts) < reps || total < minTotal {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		start := time.Now()
		if err := f(); err != nil {
			return 0, err
		}
		ts = append(ts, time.Since(start))
		total += ts[len(ts)-1]
	}
	for i := 1; i < len(ts); i++ {
		for j := i; j > 0 && ts[j] < ts[j-1]; j-- {
			ts[j], ts[j-1] = ts[j-1], ts[j]
		}
	}
	return ts[len(ts)/2], nil
}

// connPair returns the two ends of a loopback TCP connection as wire
// connections.
func connPair() (srv, cli *wire.Conn, closeFn func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, nil, err
	}
	defer ln.Close()
	type accepted struct {
		c   net.Conn
		err error
	}
	ch := make(chan accepted, 1)
	go func() {
		c, err := ln.Accept()
		ch <- accepted{c, err}
	}()
	a, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		return nil, nil, nil, err
	}
	acc := <-ch
	if acc.err != nil {
		a.Close()
		return nil, nil, nil, acc.err
	}
	params := []byte("cipherprune-costmodel")
	if srv, err = wire.NewConn(acc.c, wire.Config{Role: wire.RoleServer, Version: 1, Params: params}); err != nil {
		a.Close()
		acc.c.Close()
		return nil, nil, nil, err
	}
	if cli, err = wire.NewConn(a, wire.Config{Role: wire.RoleClient, Version: 1, Params: params}); err != nil {
		srv.Close()
		a.Close()
		return nil, nil, nil, err
	}
	return srv, cli, func() { srv.Close(); cli.Close() }, nil
}
