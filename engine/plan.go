package engine

import (
	"fmt"

	"github.com/cipherprune/cipherprune/models"
	"github.com/cipherprune/cipherprune/models/approx"
	"github.com/cipherprune/cipherprune/mpcbridge/elementwise"
	"github.com/cipherprune/cipherprune/mpcbridge/layers"
	"github.com/cipherprune/cipherprune/mpcbridge/matmul"
	"github.com/cipherprune/cipherprune/mpcbridge/prunestep"
	"github.com/cipherprune/cipherprune/mpcbridge/share"
	"github.com/cipherprune/cipherprune/mpcbridge/sharedmul"
)

// Public bounds of the rotation-free layers (mpcbridge/layers), the same
// for every model so that they say nothing about its weights. They are
// promises the masks' widths rely on: every value must stay within them
// (TestBoundsHold checks the shipped models on their golden inputs).
const (
	// LinearLogBound bounds the inputs of the products by weights:
	// LayerNorm's outputs, GELU's and tanh's, the attention's context
	// vectors, |x| <= 2^5.
	LinearLogBound = 5
	// QueryLogBound, KeyLogBound and ValueLogBound bound the scaled
	// queries Q/√dh, the keys and the values (the shared products'
	// operands; QueryLogBound + KeyLogBound is at most 8 at dh = 64).
	QueryLogBound, KeyLogBound, ValueLogBound = 3, 5, 4
	// StepLogBound and StepFracBits are the pruning step's format: the
	// layers' shares (F = 16) enter it unchanged, and B + F <= 22 keeps the
	// step's ring-to-integer conversion within 2^-40 jointly
	// (prunestep.NewParameters).
	StepLogBound, StepFracBits = 6, 16
	// NormLogBound bounds LayerNorm's centred inputs, |x - mean| <= 2^6:
	// the residual stream of a deep model outgrows the 2^4 the variance's
	// square holds unscaled (layers.ParametersLiteral.NormLogBound).
	NormLogBound = 6
	// WeightBytesPerEntry bounds a matrix's pre-encoded weights by this
	// many bytes per weight (and by layers.DefaultMaxWeightBytes): the
	// blocks, which both parties derive, follow from it (a larger budget
	// buys larger blocks: fewer ciphertexts, more memory).
	WeightBytesPerEntry = 128
)

// sessionPlan is what both parties derive for one session from public
// values: the request, the model's shape, and the server's announced
// output bound, exp bound and polynomial levels (MsgAccept).
type sessionPlan struct {
	req    sessionRequest
	cfg    models.Config
	layers layers.Parameters
	attn   layers.AttnPlan
	ffn    layers.FFNPlan
	head   layers.HeadPlan
	step   prunestep.Parameters
	// allRowsLast makes the last layer compute every row instead of the
	// CLS row alone (sessionAccept.allRowsLast).
	allRowsLast bool
}

// layersLiteral returns the layers' literal of a session on the named
// elementwise preset, with the server's output bound and exp bound.
func layersLiteral(preset string, allowInsecure bool, logBoundOut, sumsLogBound int, shift float64) layers.ParametersLiteral {
	return layers.ParametersLiteral{
		MatMul:              matmul.ParametersLiteral{LogBound: LinearLogBound, LogBoundOut: logBoundOut},
		Elementwise:         elementwise.ParametersLiteral{Preset: preset, AllowInsecure: allowInsecure},
		WeightBytesPerEntry: WeightBytesPerEntry,
		NormLogBound:        NormLogBound,
		Scores:              sharedmul.ParametersLiteral{LogBoundX: QueryLogBound, LogBoundY: KeyLogBound},
		Context:             sharedmul.ParametersLiteral{LogBoundY: ValueLogBound},
		SoftmaxShift:        shift,
		SumsLogBound:        sumsLogBound,
	}
}

// planRows returns the most rows a layer of cfg may have: the weights'
// blocks are chosen for it.
func planRows(cfg models.Config) int { return min(cfg.MaxPositions(), layers.MaxTokens) }

// newPlan derives the stages' plans for p and cfg.
func newPlan(req sessionRequest, cfg models.Config, p layers.Parameters) (sessionPlan, error) {
	pl := sessionPlan{req: req, cfg: cfg, layers: p}
	rows := planRows(cfg)
	var err error
	if pl.attn, err = p.PlanAttention(layers.AttnShape{Rows: rows, Hidden: cfg.HiddenSize(), Heads: cfg.NumHeads()}); err != nil {
		return pl, err
	}
	if pl.ffn, err = p.PlanFFN(layers.FFNShape{Rows: rows, Hidden: cfg.HiddenSize(), Intermediate: cfg.IntermediateSize()}); err != nil {
		return pl, err
	}
	if pl.head, err = p.PlanHead(cfg.HiddenSize(), cfg.NumLabels()); err != nil {
		return pl, err
	}
	if pl.step, err = stepParameters(req.hideLength); err != nil {
		return pl, err
	}
	return pl, nil
}

// stepParameters returns the pruning step's parameters, with the kept
// counts rounded up to a multiple of hideLength (0: not rounded).
func stepParameters(hideLength int) (prunestep.Parameters, error) {
	return prunestep.NewParameters(prunestep.ParametersLiteral{
		Share:         share.ParametersLiteral{LogBound: StepLogBound, FracBits: StepFracBits},
		KeepGroup:     hideLength,
		ScoreFracBits: StepFracBits + layers.ScoreExtraBits, // the layers' scores
	})
}

// modelLogBoundOut returns the output bound of the model's products by
// weights (layers.LogBoundOut with LinearLogBound, one bit more for the
// quantization): the one figure of the weights a session makes public.
func modelLogBoundOut(s *models.ServerModel) (int, error) {
	lins := []*models.Linear{&s.Pooler, &s.Classifier}
	for l := range s.Layers {
		ly := &s.Layers[l]
		lins = append(lins, &ly.Query, &ly.Key, &ly.Value, &ly.AttnOutput, &ly.Intermediate, &ly.Output)
	}
	by := 0
	for _, l := range lins {
		v, err := layers.LogBoundOut(LinearLogBound, transposed(l), l.In(), l.Out())
		if err != nil {
			return 0, err
		}
		by = max(by, v+1)
	}
	return by, nil
}

// transposed returns l's weights In x Out, row-major.
func transposed(l *models.Linear) []float64 {
	w := l.Weight
	out := make([]float64, len(w.Data))
	for o := 0; o < w.Rows; o++ {
		for k, v := range w.Row(o) {
			out[k*w.Rows+o] = v
		}
	}
	return out
}

// polyLevelsBytes is the size of the levels in MsgAccept: one byte per
// function and degree, in approx.Funcs and approx.Degrees order.
var polyLevelsBytes = len(approx.Funcs()) * len(approx.Degrees())

func encodeLevels(lv layers.PolyLevels) []byte {
	out := make([]byte, 0, polyLevelsBytes)
	for _, fn := range approx.Funcs() {
		for _, d := range approx.Degrees() {
			out = append(out, byte(lv[fn][d]))
		}
	}
	return out
}

func decodeLevels(p []byte) (layers.PolyLevels, error) {
	if len(p) != polyLevelsBytes {
		return nil, fmt.Errorf("%w: %d level bytes, want %d", ErrMalformed, len(p), polyLevelsBytes)
	}
	lv := layers.PolyLevels{}
	k := 0
	for _, fn := range approx.Funcs() {
		lv[fn] = map[approx.Degree]int{}
		for _, d := range approx.Degrees() {
			lv[fn][d] = int(p[k])
			k++
		}
	}
	return lv, nil
}
