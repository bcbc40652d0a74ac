package engine

import (
	"encoding/hex"
	"fmt"

	"github.com/cipherprune/cipherprune/models"
	"github.com/cipherprune/cipherprune/mpcbridge/elementwise"
	"github.com/cipherprune/cipherprune/mpcbridge/prunestep"
	"github.com/cipherprune/cipherprune/prune"
)

// ProtocolVersion is the version of the engine's session protocol, checked
// in the wire handshake. Version 2: seeds expand with AES-256-CTR
// (internal/xof) instead of blake2b, and the kept rows move to smaller
// blocks with their keys sent after the pruning step. Version 3: a refresh
// request names the level of its answer (share.Server.RefreshTo), so the
// server asks only for the levels it uses before its next refresh. Version
// 4: several heads share a ciphertext once few rows are left (ckks.BlockFor
// with the model's heads), and an encrypted matrix carries its head
// dimension. Version 5: a session request may ask to keep the first block
// (ClientConfig.KeepBlock), and the bridge's fingerprint covers it.
// Version 6: the pruning step shuffles ring shares modulo 2^128 and
// converts them back with 88-bit masks (mpcbridge/prunestep), so a step's
// values are hidden to 2^-40 jointly, not only one by one. Version 7: the
// label alone is opened unless the client asks for the logits and the
// server allows it (ClientConfig.OpenLogits, ServerConfig.AllowOpenLogits),
// and a request may round the kept counts up to a group
// (ClientConfig.HideLength, the top-K garbled circuit). Version 8: the
// rotation-free layers on additive shares (mpcbridge/layers): no Galois
// key, no encrypted input, the pruning step and the output on shares.
// Version 9: a session carries any number of inferences, the keys sent
// with the first; MsgClose ends it. Version 10: the importance scores
// carry F + 4 fraction bits (layers.ScoreExtraBits) and the pruning step
// compares them at that precision; several polynomials share a round trip
// (elementwise's Polys) and the heads' shared products one call each.
// Version 11: LayerNorm takes 1/√x and the normalization in one call
// (elementwise's MulScaledPolys) where the rows fit. Version 12: the
// pruning step's fingerprint covers its own parameters only
// (prunestep.Server.Fingerprint), not the CKKS parameters.
const ProtocolVersion uint32 = 13

// sessionParams are the bytes both ends compare in the wire handshake: the
// protocol, the preset's name, the public model's fingerprint and the
// bounds every session uses.
func sessionParams(preset string, fp [32]byte) []byte {
	return []byte(fmt.Sprintf("cipherprune-engine preset=%s model=%s bounds=L%dQ%dK%dV%dN%d step=B%dF%d", preset, hex.EncodeToString(fp[:]),
		LinearLogBound, QueryLogBound, KeyLogBound, ValueLogBound, NormLogBound, StepLogBound, StepFracBits))
}

// Reductions selects what a session prunes and reduces.
type Reductions struct {
	// Prune removes the tokens whose importance is at most θ_l after layer
	// l's attention block (layers whose θ_l is at most prunestep.MinTheta
	// prune nothing).
	Prune bool
	// Reduce gives the kept tokens whose importance is at most β_l the
	// low-degree polynomials (only at layers that prune).
	Reduce bool
}

// Rules returns the bridge's per-layer rules for thresholds th (nil: no
// pruning) under r. A layer prunes when r.Prune is set and θ_l exceeds
// prunestep.MinTheta (the encrypted step needs θ above the HE noise on the
// zero scores of padding rows); without r.Reduce every kept row is high
// degree (β = θ). ReferenceSchedule is the same rule for the plaintext
// forward.
func Rules(th *prune.Thresholds, layers int, r Reductions) []prunestep.LayerRule {
	rules := make([]prunestep.LayerRule, layers)
	if th == nil || !r.Prune {
		return rules
	}
	for l := range rules {
		theta, beta := th.Theta(l), th.Beta(l)
		if !(theta > prunestep.MinTheta) {
			continue
		}
		if !r.Reduce || beta < theta {
			beta = theta
		}
		rules[l] = prunestep.LayerRule{Prune: true, Theta: theta, Beta: beta}
	}
	return rules
}

// ReferenceSchedule returns the plaintext schedule (models.Schedule) that
// makes the decisions of rules: the approximate forward run with it is what
// the encrypted inference computes. At a layer that prunes, row i (CLS
// always) is kept if its importance exceeds θ and is high degree if it
// exceeds β, and the kept rows are real tokens from then on (the bridge's
// next masks are all-valid); a layer that does not prune keeps every row
// and its degrees.
func ReferenceSchedule(rules []prunestep.LayerRule) models.Schedule {
	return &referenceSchedule{rules: rules}
}

// ReferenceScheduleHiding is ReferenceSchedule for a session with
// ClientConfig.HideLength g (0: ReferenceSchedule): a layer that prunes
// keeps its rows by prunestep.Parameters.Decide with KeepGroup g, the kept
// count rounded up to a multiple of g (at most the rows in) by the
// best-scoring rows at or below θ. Padding rows kept so become real tokens
// of the later layers, in the encrypted inference and here alike.
func ReferenceScheduleHiding(rules []prunestep.LayerRule, g int) (models.Schedule, error) {
	if g == 0 {
		return ReferenceSchedule(rules), nil
	}
	step, err := stepParameters(g)
	if err != nil {
		return nil, fmt.Errorf("cannot ReferenceScheduleHiding: %w", err)
	}
	return &referenceSchedule{rules: rules, step: &step}, nil
}

type referenceSchedule struct {
	rules []prunestep.LayerRule
	step  *prunestep.Parameters // with a KeepGroup; nil: the plain rule
	degs  []models.Degree
}

func (s *referenceSchedule) AfterAttention(att *models.LayerAttention) (models.Decision, error) {
	if att.Layer < 0 || att.Layer >= len(s.rules) {
		return models.Decision{}, fmt.Errorf("cannot schedule layer %d: %d rules", att.Layer, len(s.rules))
	}
	rows := len(att.Tokens)
	r := s.rules[att.Layer]
	if !r.Prune {
		if s.degs == nil {
			return models.Decision{}, nil
		}
		if len(s.degs) != rows {
			return models.Decision{}, fmt.Errorf("cannot schedule layer %d: %d rows, %d degrees", att.Layer, rows, len(s.degs))
		}
		return models.Decision{Degrees: append([]models.Degree(nil), s.degs...)}, nil
	}
	scores := att.Importance()
	d := models.Decision{Keep: make([]bool, rows), Degrees: make([]models.Degree, rows), AllValid: true}
	var high []bool
	if s.step != nil {
		var err error
		if d.Keep, high, err = s.step.Decide(scores, r.Theta, r.Beta); err != nil {
			return models.Decision{}, fmt.Errorf("cannot schedule layer %d: %w", att.Layer, err)
		}
	}
	var next []models.Degree
	for i, v := range scores {
		if s.step == nil {
			d.Keep[i] = i == 0 || v > r.Theta
		}
		if i != 0 && (s.step == nil && !(v > r.Beta) || s.step != nil && !high[i]) {
			d.Degrees[i] = models.DegreeLow
		}
		if d.Keep[i] {
			next = append(next, d.Degrees[i])
		}
	}
	s.degs = next
	return d, nil
}

// LevelBudget returns the depth a polynomial recipe may have on the named
// preset of the calls in slots: the levels between the top and the mask
// level (elementwise.Parameters). Every approximation recipe must fit it
// (models.CalibrateApproxWithin).
func LevelBudget(preset string, allowInsecure bool) (int, error) {
	p, err := elementwise.NewParameters(elementwise.ParametersLiteral{Preset: preset, AllowInsecure: allowInsecure})
	if err != nil {
		return 0, fmt.Errorf("cannot LevelBudget: %w", err)
	}
	return p.Params().MaxLevel() - p.MaskLevel(), nil
}
