package engine

import (
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"time"

	"github.com/cipherprune/cipherprune/ckks"
	"github.com/cipherprune/cipherprune/models"
	"github.com/cipherprune/cipherprune/mpcbridge/prunestep"
	"github.com/cipherprune/cipherprune/mpcbridge/wire"
)

// MinLength is the smallest padded length a Client chooses by itself.
const MinLength = 16

// ErrTooLong means the text has more tokens than the model (or the asked
// padded length) holds, and ClientConfig.Truncate is not set.
var ErrTooLong = errors.New("engine: input too long")

// ClientConfig configures a Client. The zero value uses the default secure
// preset, pads to the smallest power of two that holds the text, and asks
// for pruning and degree reduction.
type ClientConfig struct {
	// Preset is the CKKS preset's name (empty: ckks.DefaultPreset); the
	// server must use the same.
	Preset string
	// AllowInsecure admits an InsecureTest... preset (tests only).
	AllowInsecure bool
	// Length is the padded length n, which the server learns (0: the
	// smallest power of two, at least MinLength and at most the model's
	// positions, that holds the text). Choose one fixed length to hide the
	// text's length class.
	Length int
	// HideLength, when not zero, is a group g (a power of two up to
	// MaxHideLength) that hides the text's real length: without it the first
	// pruning step reveals it, since padding receives no attention and is
	// exactly what that step drops (a 12-token text padded to 16 keeps 12
	// rows or fewer). With it every pruning step keeps a multiple of g rows,
	// CLS included (at most the rows in), adding the best-scoring rows
	// below the threshold, so the server and the client learn each count
	// only up to its group: the first one says the length is within g of it
	// (or below the padded length). The padding rows kept become tokens of
	// the later layers, as in the plaintext reference
	// (ReferenceScheduleHiding), so the client pads with [SEP] instead of
	// [PAD] (HidingPadding; masked all the same until kept): an attended
	// [SEP] barely moves the prediction, an attended [PAD] does (on the
	// sentiment model's test set, 0.8451 accuracy either way with [SEP],
	// 0.7710 with [PAD]). The extra rows and a larger garbled circuit per
	// step (gc's top-K circuit, mpcbridge/README.md section 3) cost time and
	// bytes. The later counts and the high-degree counts still depend on the
	// text, rounded the same way. The server must support it (older ones
	// refuse the request).
	HideLength int
	// Truncate cuts a text that does not fit instead of refusing it, by the
	// model's rule: its first tokens, or its first and last ones for a model
	// whose config.json sets truncation_head_tokens (models.Tokenizer's
	// WithTruncation).
	Truncate bool
	// NoPruning and NoDegreeReduction ask the server not to prune tokens or
	// not to give any token the low-degree polynomials.
	NoPruning, NoDegreeReduction bool
	// KeepBlock asks the server to keep the kept rows of every pruning step
	// in the first layer's block instead of re-packing them into a smaller
	// one. Re-packing makes the later layers cheaper but needs the Galois
	// keys of each new block, sent after the step (hundreds of MB on the
	// secure presets): on a slow link, or for a model with few layers after
	// the first pruning step, keeping the block can be faster overall. The
	// server learns nothing more either way.
	KeepBlock bool
	// OpenLogits opens the logits, rounded to 2^-14, instead of the label
	// alone. Off by default because the opened logits' low bits carry the
	// last ciphertext's noise, which depends on the server's weights: about
	// 2^-9 statistical distance per logit (mpcbridge/README.md section 7),
	// far from the 2^-40 of every other value the client sees. The server
	// must allow it too (ServerConfig.AllowOpenLogits). Without it the
	// server's ciphertext of the logits goes through a garbled comparison
	// whose bit only the client learns (prunestep.Server.RevealLabel) and
	// Result.Logits is nil; that opening exists for two-label models only,
	// so a model with more labels needs OpenLogits.
	OpenLogits bool
	// Progress, if not nil, is called as the inference advances, from the
	// goroutine running Infer. It must return quickly.
	Progress func(Progress)
	// Rand is the random source of the client's bridge randomness (nil:
	// crypto/rand; only tests should set it). Keys always come from
	// Lattigo's cryptographic generator.
	Rand io.Reader
}

// Phase names a part of an inference.
type Phase string

// The phases of an inference, in order.
const (
	PhaseKeys   Phase = "keys"   // key generation and upload
	PhaseInput  Phase = "input"  // embedding, encryption and upload of X_0
	PhaseLayer  Phase = "layer"  // an encoder layer (server computing, bridge steps)
	PhasePrune  Phase = "prune"  // a pruning step finished
	PhaseHead   Phase = "head"   // pooler and classifier
	PhaseOutput Phase = "output" // the logits are opened to the client
)

// Progress is one progress event of an inference.
type Progress struct {
	Phase Phase
	// Layer is the layer of PhaseLayer and PhasePrune; Layers is the
	// model's number of layers.
	Layer, Layers int
	// Counts are the counts of a pruning step (PhasePrune).
	Counts prunestep.Counts
	// Elapsed is the time since Infer started.
	Elapsed time.Duration
}

// Client runs private inferences against a Server: it holds a model's
// public part (configuration, vocabulary, embeddings) and, per inference,
// a fresh CKKS key pair. A Client may run several inferences at once, each
// on its own connection.
type Client struct {
	pub     *models.ClientModel
	cfg     ClientConfig
	preset  ckks.Preset
	params  ckks.Parameters
	step    prunestep.Parameters
	keep    prunestep.Parameters // step with KeepBlock
	wireCfg wire.Config
}

// NewClient returns a client for the public model pub.
func NewClient(pub *models.ClientModel, cfg ClientConfig) (*Client, error) {
	if pub == nil {
		return nil, errors.New("cannot NewClient: nil model")
	}
	if cfg.Preset == "" {
		cfg.Preset = ckks.DefaultPreset
	}
	if cfg.Rand == nil {
		cfg.Rand = crand.Reader
	}
	su, err := newSetup(cfg.Preset, cfg.AllowInsecure, pub)
	if err != nil {
		return nil, fmt.Errorf("cannot NewClient: %w", err)
	}
	maxN := min(pub.Config.MaxPositions(), su.step.MaxRows())
	if cfg.Length < 0 || cfg.Length > maxN {
		return nil, fmt.Errorf("cannot NewClient: padded length %d not in [1, %d]", cfg.Length, maxN)
	}
	if g := cfg.HideLength; g != 0 && (g < 2 || g > MaxHideLength || g&(g-1) != 0) {
		return nil, fmt.Errorf("cannot NewClient: HideLength %d is not a power of two in [2, %d]", g, MaxHideLength)
	}
	if k := pub.Config.NumLabels(); !cfg.OpenLogits && k != 2 {
		return nil, fmt.Errorf("cannot NewClient: the label-only opening needs a two-label model and this one has %d labels; set OpenLogits to open its logits (they carry a trace of the server's computation noise)", k)
	}
	return &Client{
		pub:     pub,
		cfg:     cfg,
		preset:  su.preset,
		params:  su.params,
		step:    su.step,
		keep:    su.keep,
		wireCfg: wire.Config{Role: wire.RoleClient, Version: ProtocolVersion, Params: su.session},
	}, nil
}

// Result is the outcome of one private inference.
type Result struct {
	// Label is the predicted class (the argmax of Logits) and LabelName
	// its name in the model's configuration.
	Label     int
	LabelName string
	// Logits are the opened logits (nil unless ClientConfig.OpenLogits).
	Logits []float64
	// Encoding is the padded input the client encrypted.
	Encoding models.Encoding
	// Report says what the inference cost.
	Report Report
}

// Report is what one inference cost and what it revealed.
type Report struct {
	// Preset is the CKKS preset.
	Preset string
	// Tokens is the number of real tokens ([CLS] and [SEP] included) and
	// Length the padded length n the server saw.
	Tokens, Length int
	// HideLength is the group the kept counts were rounded up to (0: none;
	// ClientConfig.HideLength).
	HideLength int
	// Layers holds one entry per encoder layer.
	Layers []LayerReport
	// Phases are the client's wall-clock times per phase, in order.
	Phases []PhaseTime
	// HeadSeconds is the server's time for the pooler, the classifier and
	// opening the logits.
	HeadSeconds float64
	// Block is the input packing's block size (ckks.Layout; each layer's
	// block after pruning is in Layers) and GaloisKeys the number of Galois
	// keys the client sent, those sent after a pruning step included.
	Block, GaloisKeys int
	// BytesSent and BytesReceived count the client's traffic (frames
	// included); Rounds counts its flights (mpcbridge/wire.Stats).
	BytesSent, BytesReceived int64
	Rounds                   int
	// Seconds is the whole inference's wall-clock time.
	Seconds float64
}

// LayerReport is one encoder layer's part of a Report. The counts are the
// leakage the protocol allows: both parties learn them.
type LayerReport struct {
	// In is the number of rows entering the layer; Kept of them survive
	// its attention block, High of those at the high degree. Pruned says
	// whether a pruning step ran (otherwise Kept = In and the degrees stay).
	In, Kept, High int
	Pruned         bool
	// Block is the block the kept rows were re-packed into (the input's
	// when nothing was pruned), and Keys the Galois keys the client sent
	// for it during the layer.
	Block, Keys int
	// Seconds is the server's time for the layer and BridgeSeconds the
	// part of it spent in the two-party bridge (both parties' work and the
	// network); Refreshes counts the bridge's refreshes.
	Seconds, BridgeSeconds float64
	Refreshes              int
	// BytesSent, BytesReceived and Rounds are the client's traffic from the
	// layer's start to the next layer's (or the head's).
	BytesSent, BytesReceived int64
	Rounds                   int
}

// PhaseTime is the wall-clock time of one phase.
type PhaseTime struct {
	Phase   Phase
	Seconds float64
}

// Encode tokenizes text and pads it as Infer would.
func (c *Client) Encode(text string) (models.Encoding, error) {
	tok := c.pub.Tokenizer
	maxN := min(c.pub.Config.MaxPositions(), c.step.MaxRows())
	limit := maxN
	if c.cfg.Length > 0 {
		limit = c.cfg.Length
	}
	ids, err := tok.TokenizeIDs(text)
	if err != nil {
		return models.Encoding{}, fmt.Errorf("cannot Encode: %w", err)
	}
	tokens := len(ids) + 2
	if tokens > limit && !c.cfg.Truncate {
		return models.Encoding{}, fmt.Errorf("cannot Encode: %w: %d tokens, the limit is %d (set Truncate to cut it)", ErrTooLong, tokens, limit)
	}
	e, err := tok.Encode(text, limit)
	if err != nil {
		return models.Encoding{}, fmt.Errorf("cannot Encode: %w", err)
	}
	n := c.cfg.Length
	if n == 0 {
		n = MinLength
		for n < e.Len() {
			n <<= 1
		}
		n = min(n, maxN)
	}
	if e, err = tok.Pad(e, n); err != nil {
		return models.Encoding{}, fmt.Errorf("cannot Encode: %w", err)
	}
	if c.cfg.HideLength > 0 {
		e = HidingPadding(tok, e)
	}
	return e, nil
}

// HidingPadding returns a copy of enc whose padding (the positions whose
// attention mask is 0) holds [SEP] tokens instead of [PAD]: how a Client
// with ClientConfig.HideLength pads. Masked padding contributes nothing, so
// the tokens it holds do not matter until a pruning step keeps some of them
// to fill its group; they are then attended like the text's tokens, and an
// extra [SEP] at the end of a text changes a model's output far less than
// an attended [PAD], which fine-tuning never showed it.
func HidingPadding(tok *models.Tokenizer, enc models.Encoding) models.Encoding {
	out := enc
	out.IDs = slices.Clone(enc.IDs)
	for i, m := range enc.AttentionMask {
		if m == 0 && i < len(out.IDs) {
			out.IDs[i] = tok.SEPID()
		}
	}
	return out
}

// Infer runs one private inference of text over nc, which it closes.
func (c *Client) Infer(ctx context.Context, nc net.Conn, text string) (*Result, error) {
	defer nc.Close()
	enc, err := c.Encode(text)
	if err != nil {
		return nil, fmt.Errorf("cannot Infer: %w", err)
	}
	res, err := c.infer(ctx, nc, enc)
	if err != nil {
		return nil, fmt.Errorf("cannot Infer: %w", err)
	}
	return res, nil
}

// InferEncoding is Infer on an already tokenized and padded input (ids,
// type ids and attention mask of the same length n; real tokens first).
// With ClientConfig.HideLength its padding is replaced with [SEP] tokens
// (HidingPadding), as Encode pads; Result.Encoding is what was encrypted.
func (c *Client) InferEncoding(ctx context.Context, nc net.Conn, enc models.Encoding) (*Result, error) {
	defer nc.Close()
	n := enc.Len()
	if maxN := min(c.pub.Config.MaxPositions(), c.step.MaxRows()); n < 1 || n > maxN {
		return nil, fmt.Errorf("cannot InferEncoding: %w: length %d, the limit is %d", ErrTooLong, n, maxN)
	}
	if len(enc.TypeIDs) != n || len(enc.AttentionMask) != n || enc.AttentionMask[0] != 1 {
		return nil, errors.New("cannot InferEncoding: inconsistent encoding (lengths differ or no [CLS])")
	}
	if c.cfg.HideLength > 0 {
		enc = HidingPadding(c.pub.Tokenizer, enc)
	}
	res, err := c.infer(ctx, nc, enc)
	if err != nil {
		return nil, fmt.Errorf("cannot InferEncoding: %w", err)
	}
	return res, nil
}

func (c *Client) infer(ctx context.Context, nc net.Conn, enc models.Encoding) (*Result, error) {
	start := time.Now()
	cfg := c.pub.Config
	params := c.params
	n := enc.Len()
	rep := Report{Preset: c.preset.Name, Length: n}
	for _, m := range enc.AttentionMask {
		rep.Tokens += m
	}
	progress := func(p Progress) {
		if c.cfg.Progress != nil {
			p.Layers = cfg.NumLayers()
			p.Elapsed = time.Since(start)
			c.cfg.Progress(p)
		}
	}
	phaseStart := start
	endPhase := func(ph Phase) {
		now := time.Now()
		rep.Phases = append(rep.Phases, PhaseTime{Phase: ph, Seconds: now.Sub(phaseStart).Seconds()})
		phaseStart = now
	}

	conn, err := wire.NewConn(nc, c.wireCfg)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if err := conn.Handshake(ctx); err != nil {
		return nil, err
	}
	req := sessionRequest{length: n, prune: !c.cfg.NoPruning, reduce: !c.cfg.NoDegreeReduction, keepBlock: c.cfg.KeepBlock, labelOnly: !c.cfg.OpenLogits,
		hideLength: c.cfg.HideLength}
	if err := conn.Send(ctx, MsgSession, req.marshal()); err != nil {
		return nil, fmt.Errorf("session request: %w", err)
	}
	p, err := conn.Recv(ctx, MsgAccept)
	if err != nil {
		return nil, fmt.Errorf("session: %w", err)
	}
	acc, err := decodeSessionAccept(p)
	if err != nil {
		_ = conn.Abort(ctx, err.Error())
		return nil, err
	}
	block, err := ckks.BlockFor(params.MaxSlots(), n, cfg.HeadDim(), cfg.NumHeads())
	if err != nil {
		return nil, err
	}
	galEls, err := ckks.GaloisElements(params, ckks.ShapeOf(cfg, block))
	if err != nil {
		return nil, err
	}
	// The client gives exactly the keys of the public rotation plan.
	if acc.request.length != n || acc.block != block || !slices.Equal(acc.galEls, galEls) || acc.request.keepBlock != req.keepBlock ||
		acc.request.labelOnly != req.labelOnly || acc.request.hideLength != req.hideLength {
		err := fmt.Errorf("%w: the server's plan (n=%d, block %d, %d Galois keys, keep block %v, hide length %d) is not the public plan (n=%d, block %d, %d keys, keep block %v, hide length %d)",
			ErrMalformed, acc.request.length, acc.block, len(acc.galEls), acc.request.keepBlock, acc.request.hideLength, n, block, len(galEls), req.keepBlock, req.hideLength)
		_ = conn.Abort(ctx, err.Error())
		return nil, err
	}
	stepParams, err := sessionStep(c.step, c.keep, req.keepBlock, req.hideLength)
	if err != nil {
		return nil, err
	}
	rep.Block, rep.GaloisKeys, rep.HideLength = block, len(galEls), req.hideLength

	// Keys: generated and sent one at a time, so at most one Galois key is
	// held in memory.
	progress(Progress{Phase: PhaseKeys})
	keys := ckks.GenSecretKeys(params)
	send := func(t wire.Type, what string, marshal func() ([]byte, error)) error {
		p, err := marshal()
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if err := conn.Send(ctx, t, p); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		return nil
	}
	if err := send(MsgPublicKey, "public key", keys.MarshalPublicKey); err != nil {
		return nil, err
	}
	if err := send(MsgRelinKey, "relinearization key", keys.MarshalRelinKey); err != nil {
		return nil, err
	}
	for i, g := range galEls {
		if err := send(MsgGaloisKey, fmt.Sprintf("Galois key %d", i), func() ([]byte, error) { return keys.MarshalGaloisKey(g) }); err != nil {
			return nil, err
		}
	}
	endPhase(PhaseKeys)

	// The input.
	progress(Progress{Phase: PhaseInput})
	x0, err := c.pub.Embed(enc.IDs, enc.TypeIDs)
	if err != nil {
		return nil, err
	}
	he, err := keys.Client()
	if err != nil {
		return nil, err
	}
	lay, err := ckks.NewLayout(params.MaxSlots(), n, cfg.HiddenSize(), block)
	if err != nil {
		return nil, err
	}
	lay = lay.WithHeadDim(cfg.HeadDim())
	x, err := he.EncryptMatrix(x0, lay, params.MaxLevel())
	if err != nil {
		return nil, err
	}
	valid := make([]bool, n)
	for i, m := range enc.AttentionMask {
		valid[i] = m == 1
	}
	masks, err := he.EncryptAttentionMasks(valid, lay)
	if err != nil {
		return nil, err
	}
	if err := conn.SendMessage(ctx, MsgInput, x); err != nil {
		return nil, fmt.Errorf("input: %w", err)
	}
	if err := conn.SendMessage(ctx, MsgMasks, masks); err != nil {
		return nil, fmt.Errorf("attention masks: %w", err)
	}
	endPhase(PhaseInput)

	// The encoder: the server computes, the client serves the bridge.
	step, err := prunestep.NewClient(params, keys.SK, stepParams, c.cfg.Rand)
	if err != nil {
		return nil, err
	}
	rep.Layers = make([]LayerReport, cfg.NumLayers())
	rows, high := n, n
	curLay := lay
	sent := make(map[uint64]bool, len(galEls))
	for _, g := range galEls {
		sent[g] = true
	}
	var layerErr error
	cur := -1 // the layer in progress
	var mark wire.Stats
	closeLayer := func() {
		if cur >= 0 {
			d := conn.Stats().Sub(mark)
			lr := &rep.Layers[cur]
			lr.BytesSent, lr.BytesReceived, lr.Rounds = d.BytesSent, d.BytesReceived, int(d.Rounds)
		}
	}
	counts, err := step.ServeBridgeEvents(ctx, conn, func(ev prunestep.Event) {
		switch ev.Op {
		case prunestep.RequestProgress:
			if ev.Stage == stageLayer && ev.Layer < len(rep.Layers) {
				closeLayer()
				cur, mark = ev.Layer, conn.Stats()
				rep.Layers[ev.Layer] = LayerReport{In: rows, Kept: rows, High: high, Block: curLay.Block}
				progress(Progress{Phase: PhaseLayer, Layer: ev.Layer})
			} else if ev.Stage == stageHead {
				closeLayer()
				cur = -1
				endPhase(PhaseLayer)
				progress(Progress{Phase: PhaseHead, Layer: cfg.NumLayers()})
			}
		case prunestep.RequestPrune:
			if ev.Layer >= len(rep.Layers) || ev.Counts.In != rows {
				layerErr = fmt.Errorf("%w: pruning step for layer %d on %d rows, expected %d", ErrMalformed, ev.Layer, ev.Counts.In, rows)
				return
			}
			rows, high = ev.Counts.Kept, ev.Counts.High
			lr := &rep.Layers[ev.Layer]
			lr.Kept, lr.High, lr.Pruned = rows, high, true
			// The server waits for the keys below: a failure here must end
			// the session at once, not after the bridge.
			fail := func(err error) {
				layerErr = err
				_ = conn.Abort(ctx, err.Error())
			}
			next, err := stepParams.NextLayout(curLay, rows)
			if err != nil {
				fail(fmt.Errorf("%w: no layout for %d kept rows: %v", ErrMalformed, rows, err))
				return
			}
			if next.Block != curLay.Block {
				// The server re-packs into a smaller block and waits for the
				// Galois keys its rotations need.
				missing, err := keyPlan(params, cfg, next.Block, sent)
				if err != nil {
					fail(err)
					return
				}
				for i, g := range missing {
					if err := send(MsgGaloisKey, fmt.Sprintf("Galois key %d for block %d", i, next.Block), func() ([]byte, error) { return keys.MarshalGaloisKey(g) }); err != nil {
						fail(err)
						return
					}
				}
				lr.Keys = len(missing)
				rep.GaloisKeys += len(missing)
			}
			curLay = next
			lr.Block = next.Block
			progress(Progress{Phase: PhasePrune, Layer: ev.Layer, Counts: ev.Counts})
		}
	})
	if err != nil {
		return nil, fmt.Errorf("encoder: %w", err)
	}
	if layerErr != nil {
		_ = conn.Abort(ctx, layerErr.Error())
		return nil, layerErr
	}
	_ = counts

	// The output.
	progress(Progress{Phase: PhaseOutput})
	var values []float64
	var slots []int
	label := 0
	if req.labelOnly {
		label, slots, err = step.RevealLabel(ctx, conn)
		if err != nil {
			return nil, fmt.Errorf("label: %w", err)
		}
	} else {
		values, slots, err = step.Reveal(ctx, conn)
		if err != nil {
			return nil, fmt.Errorf("logits: %w", err)
		}
		if len(values) != cfg.NumLabels() {
			err := fmt.Errorf("%w: %d logits opened, the model has %d labels", ErrMalformed, len(values), cfg.NumLabels())
			_ = conn.Abort(ctx, err.Error())
			return nil, err
		}
		for k, v := range values {
			if v > values[label] {
				label = k
			}
		}
	}
	for k, j := range slots {
		if j != k*curLay.Block {
			err := fmt.Errorf("%w: the server opened slot %d for label %d, want %d", ErrMalformed, j, k, k*curLay.Block)
			_ = conn.Abort(ctx, err.Error())
			return nil, err
		}
	}
	p, err = conn.Recv(ctx, MsgReport)
	if err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	srep, err := decodeServerReport(p)
	if err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	if len(srep.layers) != len(rep.Layers) {
		return nil, fmt.Errorf("%w: report of %d layers, the model has %d", ErrMalformed, len(srep.layers), len(rep.Layers))
	}
	for l, sl := range srep.layers {
		rep.Layers[l].Seconds, rep.Layers[l].BridgeSeconds, rep.Layers[l].Refreshes = sl.seconds, sl.bridge, sl.refreshes
	}
	rep.HeadSeconds = srep.head
	endPhase(PhaseOutput)
	st := conn.Stats()
	rep.BytesSent, rep.BytesReceived, rep.Rounds = st.BytesSent, st.BytesReceived, int(st.Rounds)
	rep.Seconds = time.Since(start).Seconds()

	res := &Result{Label: label, Logits: values, Encoding: enc, Report: rep}
	if names := cfg.Labels(); label < len(names) {
		res.LabelName = names[label]
	}
	return res, nil
}
