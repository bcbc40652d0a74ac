package engine

import (
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"slices"
	"time"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"

	"github.com/cipherprune/cipherprune/ckks"
	"github.com/cipherprune/cipherprune/models"
	"github.com/cipherprune/cipherprune/models/approx"
	"github.com/cipherprune/cipherprune/mpcbridge/elementwise"
	"github.com/cipherprune/cipherprune/mpcbridge/layers"
	"github.com/cipherprune/cipherprune/mpcbridge/prunestep"
	"github.com/cipherprune/cipherprune/mpcbridge/share"
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
	// Preset is the name of the CKKS preset of the calls in slots
	// (elementwise.PresetByName; empty: elementwise.DefaultPreset); the
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
	// OpenLogits opens the logits, rounded to 2^-16, instead of the label
	// alone. Off by default: the logits say more of the server's model
	// than its label, so the server must allow it too
	// (ServerConfig.AllowOpenLogits). Without it the logits' shares go
	// through a garbled argmax whose result only the client learns
	// (prunestep.Server.RevealLabelShares) and Result.Logits is nil.
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
	PhaseInput  Phase = "input"  // tokens and embedding of X_0 (the client's share)
	PhaseLayer  Phase = "layer"  // an encoder layer (both parties, on shares)
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
// fresh keys. A Client may run several inferences at once, each on its own
// connection.
type Client struct {
	pub     *models.ClientModel
	cfg     ClientConfig
	wireCfg wire.Config
}

// NewClient returns a client for the public model pub.
func NewClient(pub *models.ClientModel, cfg ClientConfig) (*Client, error) {
	if pub == nil {
		return nil, errors.New("cannot NewClient: nil model")
	}
	if cfg.Preset == "" {
		cfg.Preset = elementwise.DefaultPreset
	}
	if cfg.Rand == nil {
		cfg.Rand = crand.Reader
	}
	if _, err := elementwise.PresetByName(cfg.Preset, cfg.AllowInsecure); err != nil {
		return nil, fmt.Errorf("cannot NewClient: %w", err)
	}
	if maxN := planRows(pub.Config); cfg.Length < 0 || cfg.Length > maxN {
		return nil, fmt.Errorf("cannot NewClient: padded length %d not in [1, %d]", cfg.Length, maxN)
	}
	if g := cfg.HideLength; g != 0 && (g < 2 || g > MaxHideLength || g&(g-1) != 0) {
		return nil, fmt.Errorf("cannot NewClient: HideLength %d is not a power of two in [2, %d]", g, MaxHideLength)
	}
	if k := pub.Config.NumLabels(); !cfg.OpenLogits && k > prunestep.MaxLabels {
		return nil, fmt.Errorf("cannot NewClient: the label-only opening holds at most %d labels and this model has %d; set OpenLogits to open its logits", prunestep.MaxLabels, k)
	}
	fp, err := Fingerprint(pub)
	if err != nil {
		return nil, fmt.Errorf("cannot NewClient: %w", err)
	}
	return &Client{pub: pub, cfg: cfg, wireCfg: wire.Config{Role: wire.RoleClient, Version: ProtocolVersion, Params: sessionParams(cfg.Preset, fp)}}, nil
}

// Result is the outcome of one private inference.
type Result struct {
	// Label is the predicted class (the argmax of the logits) and
	// LabelName its name in the model's configuration.
	Label     int
	LabelName string
	// Logits are the opened logits (nil unless ClientConfig.OpenLogits).
	Logits []float64
	// Encoding is the padded input the client embedded.
	Encoding models.Encoding
	// Report says what the inference cost.
	Report Report
}

// Report is what one inference cost and what it revealed.
type Report struct {
	// Preset is the CKKS preset of the calls in slots.
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
	// the opening.
	HeadSeconds float64
	// KeyBytes is what the client's keys took on the wire.
	KeyBytes int64
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
	// its attention stage, High of those at the high degree. Pruned says
	// whether a pruning step ran (otherwise Kept = In and the degrees stay).
	In, Kept, High int
	Pruned         bool
	// Seconds is the server's time for the layer and StepSeconds the part
	// of it spent in the pruning step.
	Seconds, StepSeconds float64
	// BytesSent, BytesReceived and Rounds are the client's traffic during
	// the layer.
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
	maxN := planRows(c.pub.Config)
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

// Infer runs one private inference of text over nc, which it closes: a
// session of one inference (NewSession, Session.Infer, Session.Close).
func (c *Client) Infer(ctx context.Context, nc net.Conn, text string) (*Result, error) {
	enc, err := c.Encode(text)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("cannot Infer: %w", err)
	}
	res, err := c.oneShot(ctx, nc, enc)
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
	enc, err := c.checkEncoding(enc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("cannot InferEncoding: %w", err)
	}
	res, err := c.oneShot(ctx, nc, enc)
	if err != nil {
		return nil, fmt.Errorf("cannot InferEncoding: %w", err)
	}
	return res, nil
}

// checkEncoding checks a caller's encoding and pads it as Encode would.
func (c *Client) checkEncoding(enc models.Encoding) (models.Encoding, error) {
	n := enc.Len()
	if maxN := planRows(c.pub.Config); n < 1 || n > maxN {
		return enc, fmt.Errorf("%w: length %d, the limit is %d", ErrTooLong, n, maxN)
	}
	if len(enc.TypeIDs) != n || len(enc.AttentionMask) != n || enc.AttentionMask[0] != 1 {
		return enc, errors.New("inconsistent encoding (lengths differ or no [CLS])")
	}
	if c.cfg.HideLength > 0 {
		enc = HidingPadding(c.pub.Tokenizer, enc)
	}
	return enc, nil
}

// oneShot runs a session of the one inference enc on nc and closes it.
// A failure to close after the result only loses the server's nil
// return: the result stands.
func (c *Client) oneShot(ctx context.Context, nc net.Conn, enc models.Encoding) (*Result, error) {
	s, err := c.NewSession(ctx, nc)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	return s.infer(ctx, enc)
}

// clientInference is one inference's state on the client.
type clientInference struct {
	c          *Client
	s          *Session
	conn       *wire.Conn
	enc        models.Encoding
	rep        Report
	start      time.Time
	phaseStart time.Time
}

func (ci *clientInference) progress(p Progress) {
	if ci.c.cfg.Progress != nil {
		p.Layers = ci.c.pub.Config.NumLayers()
		p.Elapsed = time.Since(ci.start)
		ci.c.cfg.Progress(p)
	}
}

func (ci *clientInference) endPhase(ph Phase) {
	now := time.Now()
	ci.rep.Phases = append(ci.rep.Phases, PhaseTime{Phase: ph, Seconds: now.Sub(ci.phaseStart).Seconds()})
	ci.phaseStart = now
}

// plan is phase 1: the request, the server's answer checked against it
// and, after the session's first answer, against that one; the plan of the
// inference.
func (ci *clientInference) plan(ctx context.Context) (sessionAccept, sessionPlan, error) {
	c, conn, n := ci.c, ci.conn, ci.enc.Len()
	ci.rep = Report{Preset: c.cfg.Preset, Length: n, HideLength: c.cfg.HideLength}
	for _, m := range ci.enc.AttentionMask {
		ci.rep.Tokens += m
	}
	req := c.request(n)
	if err := conn.Send(ctx, MsgSession, req.marshal()); err != nil {
		return sessionAccept{}, sessionPlan{}, fmt.Errorf("session request: %w", err)
	}
	p, err := conn.Recv(ctx, MsgAccept)
	if err != nil {
		return sessionAccept{}, sessionPlan{}, fmt.Errorf("session: %w", err)
	}
	acc, err := decodeSessionAccept(p)
	if err == nil {
		err = ci.checkAccept(req, acc)
	}
	var pl sessionPlan
	if err == nil {
		pl, err = ci.sessionPlan(acc)
	}
	if err != nil {
		_ = conn.Abort(ctx, err.Error())
		return acc, pl, err
	}
	return acc, pl, nil
}

// request returns the request of an inference at padded length n: the
// options of every inference of c's sessions, and n.
func (c *Client) request(n int) sessionRequest {
	return sessionRequest{length: n, prune: !c.cfg.NoPruning, reduce: !c.cfg.NoDegreeReduction, labelOnly: !c.cfg.OpenLogits, hideLength: c.cfg.HideLength}
}

// checkAccept checks that the server answers the request it was sent
// (it may only turn the reductions off) for the model's layers and, after
// the session's first answer, with the same parameters and layers.
func (ci *clientInference) checkAccept(req sessionRequest, acc sessionAccept) error {
	a := acc.request
	if a.length != req.length || a.labelOnly != req.labelOnly || a.hideLength != req.hideLength ||
		(a.prune && !req.prune) || (a.reduce && !req.reduce) || len(acc.prunes) != ci.c.pub.Config.NumLayers() {
		return fmt.Errorf("%w: the server's answer (n=%d, label only %v, hide length %d, %d layers) is not the request's (n=%d, label only %v, hide length %d, %d layers)",
			ErrMalformed, a.length, a.labelOnly, a.hideLength, len(acc.prunes), req.length, req.labelOnly, req.hideLength, ci.c.pub.Config.NumLayers())
	}
	for _, p := range acc.prunes {
		if p && !a.prune {
			return fmt.Errorf("%w: a pruning layer in a session without pruning", ErrMalformed)
		}
	}
	if k := ci.s.keys; k != nil && !k.opening.sameSession(acc) {
		return fmt.Errorf("%w: the server's answer changes the session's parameters or reductions after its first inference (the keys are fixed for the session)", ErrMalformed)
	}
	return nil
}

// sessionPlan derives the inference's plan from the server's answer: the
// session's parameters, derived from its first answer, with this
// inference's request.
func (ci *clientInference) sessionPlan(acc sessionAccept) (sessionPlan, error) {
	if k := ci.s.keys; k != nil {
		pl := k.plan
		pl.req = acc.request
		return pl, nil
	}
	c := ci.c
	lit := layersLiteral(c.cfg.Preset, c.cfg.AllowInsecure, acc.logBoundOut, acc.sumsLogBound, 0)
	lit.OneRecipe = acc.oneRecipe
	p, err := layers.NewClientParameters(lit, acc.levels)
	if err != nil {
		return sessionPlan{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	pl, err := newPlan(acc.request, c.pub.Config, p)
	pl.allRowsLast = acc.allRowsLast
	return pl, err
}

// sendKeys is phase 2 of a session's first inference: fresh keys, the
// public ones sent, and the client's parties that hold the secret ones
// for the session.
func (ci *clientInference) sendKeys(ctx context.Context, acc sessionAccept, pl sessionPlan) (*clientKeys, error) {
	ci.progress(Progress{Phase: PhaseKeys})
	before := ci.conn.Stats()
	ew := pl.layers.Elementwise().Params()
	ck := ckks.GenSecretKeys(ew)
	msk, mpk := rlwe.NewKeyGenerator(pl.layers.MatMul().Ring().RLWE()).GenKeyPairNew()
	ssk, spk := rlwe.NewKeyGenerator(pl.layers.Scores().Ring().RLWE()).GenKeyPairNew()
	for _, k := range []struct {
		t       wire.Type
		what    string
		marshal func() ([]byte, error)
	}{
		{MsgPublicKey, "public key", ck.MarshalPublicKey},
		{MsgRelinKey, "relinearization key", ck.MarshalRelinKey},
		{MsgProductKey, "products' public key", mpk.MarshalBinary},
		{MsgSharedKey, "shared products' public key", spk.MarshalBinary},
	} {
		p, err := k.marshal()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k.what, err)
		}
		if err := ci.conn.Send(ctx, k.t, p); err != nil {
			return nil, fmt.Errorf("%s: %w", k.what, err)
		}
	}
	ci.rep.KeyBytes = ci.conn.Stats().Sub(before).BytesSent
	party, err := layers.NewClient(pl.layers, layers.ClientKeys{MatMul: msk, SharedMul: ssk, CKKS: ck.SK}, 0)
	if err != nil {
		return nil, err
	}
	step, err := prunestep.NewClient(pl.step, ci.c.cfg.Rand)
	if err != nil {
		return nil, err
	}
	ci.endPhase(PhaseKeys)
	return &clientKeys{opening: acc, plan: pl, limits: maskLimits(pl.layers), party: party, step: step}, nil
}

// newSide returns the client's side of this inference's encoder.
func (ci *clientInference) newSide(k *clientKeys, pl sessionPlan) *clientSide {
	valid := make([]bool, ci.enc.Len())
	for i, m := range ci.enc.AttentionMask {
		valid[i] = m == 1
	}
	ci.rep.Layers = make([]LayerReport, ci.c.pub.Config.NumLayers())
	return &clientSide{ci: ci, pl: pl, party: k.party, step: k.step, valid: valid}
}

// input is phase 3: the embedding of the padded text, the client's share
// of X_0 (the server's is zero), at f fractional bits.
func (ci *clientInference) input(f int) (share.Vector, error) {
	ci.progress(Progress{Phase: PhaseInput})
	x0, err := ci.c.pub.Embed(ci.enc.IDs, ci.enc.TypeIDs)
	if err != nil {
		return nil, err
	}
	x := make(share.Vector, len(x0.Data))
	for i, v := range x0.Data {
		if x[i], err = fixedPoint(v, f); err != nil {
			return nil, fmt.Errorf("embedding: %w", err)
		}
	}
	ci.endPhase(PhaseInput)
	return x, nil
}

// fixedPoint returns round(2^f·v), refusing values beyond the products'
// input bound.
func fixedPoint(v float64, f int) (share.Int128, error) {
	if !(math.Abs(v) <= math.Exp2(LinearLogBound)) {
		return share.Int128{}, fmt.Errorf("value %v beyond 2^%d", v, LinearLogBound)
	}
	return share.Int128FromInt64(int64(math.Round(math.Ldexp(v, f)))), nil
}

// output is phase 5's opening and phase 6.
func (ci *clientInference) output(ctx context.Context, sd *clientSide, pl sessionPlan, logits share.Vector) (*Result, error) {
	ci.progress(Progress{Phase: PhaseOutput})
	cfg := ci.c.pub.Config
	var values []float64
	label := 0
	var err error
	if pl.req.labelOnly {
		label, err = sd.step.RevealLabelShares(ctx, ci.conn, logits)
	} else if values, err = sd.step.RevealShares(ctx, ci.conn, logits); err == nil {
		for k, v := range values {
			if v > values[label] {
				label = k
			}
		}
	}
	if err != nil {
		return nil, fmt.Errorf("output: %w", err)
	}
	p, err := ci.conn.Recv(ctx, MsgReport)
	if err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	srep, err := decodeServerReport(p)
	if err == nil && len(srep.layers) != len(ci.rep.Layers) {
		err = fmt.Errorf("%w: report of %d layers, the model has %d", ErrMalformed, len(srep.layers), len(ci.rep.Layers))
	}
	if err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	for l, sl := range srep.layers {
		ci.rep.Layers[l].Seconds, ci.rep.Layers[l].StepSeconds = sl.seconds, sl.step
	}
	ci.rep.HeadSeconds = srep.head
	ci.endPhase(PhaseOutput)
	st := ci.conn.Stats().Sub(ci.s.mark)
	ci.rep.BytesSent, ci.rep.BytesReceived, ci.rep.Rounds = st.BytesSent, st.BytesReceived, int(st.Rounds)
	ci.rep.Seconds = time.Since(ci.start).Seconds()
	res := &Result{Label: label, Logits: values, Encoding: ci.enc, Report: ci.rep}
	if names := cfg.Labels(); label < len(names) {
		res.LabelName = names[label]
	}
	return res, nil
}

// clientSide is the client's side of the encoder.
type clientSide struct {
	ci    *clientInference
	pl    sessionPlan
	party *layers.Client
	step  *prunestep.Client
	valid []bool // the padding flags, secret until a pruning step
	mark  wire.Stats
}

func (sd *clientSide) attention(ctx context.Context, _ int, rows layers.Rows, x share.Vector) (share.Vector, share.Vector, error) {
	if rows.Hidden {
		rows.Valid = sd.valid
	}
	return sd.party.Attention(ctx, sd.ci.conn, sd.pl.attn, rows, x)
}

func (sd *clientSide) prune(ctx context.Context, l int, y, scores share.Vector) (share.Vector, prunestep.Counts, error) {
	out, c, err := sd.step.PruneShares(ctx, sd.ci.conn, prunestep.Rows{Layer: l, X: y, Cols: sd.pl.cfg.HiddenSize(), Scores: scores})
	if err == nil {
		sd.ci.progress(Progress{Phase: PhasePrune, Layer: l, Counts: c})
	}
	return out.X, c, err
}

func (sd *clientSide) ffn(ctx context.Context, _ int, degs []approx.Degree, h share.Vector) (share.Vector, error) {
	return sd.party.FFN(ctx, sd.ci.conn, sd.pl.ffn, degs, h)
}

func (sd *clientSide) head(ctx context.Context, cls share.Vector) (share.Vector, error) {
	sd.ci.progress(Progress{Phase: PhaseHead, Layer: sd.pl.cfg.NumLayers()})
	return sd.party.Head(ctx, sd.ci.conn, sd.pl.head, cls)
}

func (sd *clientSide) layerStart(l int) {
	sd.mark = sd.ci.conn.Stats()
	sd.ci.progress(Progress{Phase: PhaseLayer, Layer: l})
}

func (sd *clientSide) layerEnd(l int, c prunestep.Counts, pruned bool) {
	d := sd.ci.conn.Stats().Sub(sd.mark)
	sd.ci.rep.Layers[l] = LayerReport{In: c.In, Kept: c.Kept, High: c.High, Pruned: pruned,
		BytesSent: d.BytesSent, BytesReceived: d.BytesReceived, Rounds: int(d.Rounds)}
}
