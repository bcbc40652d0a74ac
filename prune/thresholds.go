// Package prune decides which tokens survive each encoder layer and which of
// the survivors get the high-degree polynomials, from importance scores and
// per-layer learned thresholds, and models what a schedule costs in the
// private protocol. It knows nothing of encryption: the encrypted path
// computes the same scores and compares them with the same thresholds inside
// the two-party bridge.
//
// At layer l, token j's importance s_j is the attention it receives,
// averaged over heads and non-padding query rows (models.LayerAttention's
// Importance). The token is kept for all later layers if s_j > θ_l, and a
// kept token uses the high-degree GELU and exp polynomials if s_j > β_l. The
// CLS token is always kept at the high degree; these public rules leak
// nothing.
package prune

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
)

// File is the name of a model directory's thresholds file.
const File = "prune.json"

// maxFileSize bounds prune.json.
const maxFileSize = 1 << 20

// LayerLiteral holds one layer's thresholds.
type LayerLiteral struct {
	// Theta is the pruning threshold θ_l: a token is kept if its score
	// exceeds it.
	Theta float64 `json:"theta"`
	// Beta is the degree threshold β_l: a kept token gets the high degree if
	// its score exceeds it.
	Beta float64 `json:"beta"`
}

// ThresholdsLiteral is the serializable, unchecked form of a model's
// thresholds (prune.json). NewThresholds checks it.
type ThresholdsLiteral struct {
	// Layers holds one entry per encoder layer.
	Layers []LayerLiteral `json:"layers"`
	// Search records how the thresholds were found (free-form metadata: the
	// λ, target accuracy drop, temperatures, measured accuracies). It does
	// not change what the thresholds mean.
	Search map[string]any `json:"search,omitempty"`
}

// Thresholds are a model's checked, immutable per-layer thresholds.
type Thresholds struct {
	theta, beta []float64
	lit         ThresholdsLiteral
}

// NewThresholds checks lit for a model of numLayers layers: one entry per
// layer, every threshold finite and in [0, 1] (scores are averages of
// probabilities, so they lie in [0, 1]).
func NewThresholds(lit ThresholdsLiteral, numLayers int) (*Thresholds, error) {
	if len(lit.Layers) != numLayers {
		return nil, fmt.Errorf("cannot use thresholds: %d layers given, model has %d", len(lit.Layers), numLayers)
	}
	t := &Thresholds{theta: make([]float64, numLayers), beta: make([]float64, numLayers), lit: lit}
	for l, ll := range lit.Layers {
		for name, v := range map[string]float64{"theta": ll.Theta, "beta": ll.Beta} {
			if math.IsNaN(v) || v < 0 || v > 1 {
				return nil, fmt.Errorf("cannot use thresholds: layer %d %s = %v is not in [0, 1]", l, name, v)
			}
		}
		t.theta[l], t.beta[l] = ll.Theta, ll.Beta
	}
	return t, nil
}

// NumLayers returns the number of layers.
func (t *Thresholds) NumLayers() int { return len(t.theta) }

// Theta returns θ_l.
func (t *Thresholds) Theta(l int) float64 { return t.theta[l] }

// Beta returns β_l.
func (t *Thresholds) Beta(l int) float64 { return t.beta[l] }

// Literal returns a copy of the literal t was built from.
func (t *Thresholds) Literal() ThresholdsLiteral {
	lit := t.lit
	lit.Layers = append([]LayerLiteral(nil), t.lit.Layers...)
	return lit
}

// ParseThresholds decodes a prune.json document, rejecting unknown fields.
func ParseThresholds(data []byte, numLayers int) (*Thresholds, error) {
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("cannot parse thresholds: %d bytes exceeds %d", len(data), maxFileSize)
	}
	var lit ThresholdsLiteral
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&lit); err != nil {
		return nil, fmt.Errorf("cannot parse thresholds: %w", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("cannot parse thresholds: trailing data")
	}
	return NewThresholds(lit, numLayers)
}

// LoadThresholds reads dir/prune.json.
func LoadThresholds(dir string, numLayers int) (*Thresholds, error) {
	path := filepath.Join(dir, File)
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read thresholds: %w", err)
	}
	t, err := ParseThresholds(b, numLayers)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// MarshalJSON encodes t as its literal.
func (t *Thresholds) MarshalJSON() ([]byte, error) { return json.Marshal(t.lit) }
