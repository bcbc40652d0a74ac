package engine

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"

	"github.com/cipherprune/cipherprune/models"
	"github.com/cipherprune/cipherprune/prune"
)

// Model is what the server holds: the whole checkpoint (its public part
// included, to check the client holds the same), the approximation
// settings the encrypted path evaluates, and the learned thresholds.
type Model struct {
	// Model is the checkpoint: the public ClientModel and the secret
	// ServerModel.
	*models.Model
	// Approx is the approximate forward whose polynomials the encrypted
	// path evaluates (the registry and the softmax shift).
	Approx *models.Approximate
	// Thresholds are the learned θ and β per layer (nil: the model prunes
	// nothing).
	Thresholds *prune.Thresholds
}

// LoadModel reads a model directory: the checkpoint (models.Load), its
// approximation settings (approx.json, required: the encrypted path must
// evaluate calibrated intervals) and, if present, its thresholds
// (prune.json).
func LoadModel(dir string) (*Model, error) {
	m, err := models.Load(dir)
	if err != nil {
		return nil, fmt.Errorf("cannot LoadModel: %w", err)
	}
	settings, err := models.LoadApproxSettings(dir)
	if err != nil {
		return nil, fmt.Errorf("cannot LoadModel: %w", err)
	}
	ap, err := models.NewApproximate(settings)
	if err != nil {
		return nil, fmt.Errorf("cannot LoadModel: %w", err)
	}
	out := &Model{Model: m, Approx: ap}
	if _, err := os.Stat(filepath.Join(dir, prune.File)); err == nil {
		if out.Thresholds, err = prune.LoadThresholds(dir, m.Config().NumLayers()); err != nil {
			return nil, fmt.Errorf("cannot LoadModel: %w", err)
		}
	}
	return out, nil
}

// LoadPublic reads the public part of a model directory: what a client
// needs (configuration, vocabulary, embeddings).
func LoadPublic(dir string) (*models.ClientModel, error) {
	c, err := models.LoadClient(dir)
	if err != nil {
		return nil, fmt.Errorf("cannot LoadPublic: %w", err)
	}
	return c, nil
}

// Fingerprint returns the SHA-256 digest of a model's public part: its
// configuration, vocabulary and embedding tables. Client and server put it
// in the handshake, so a client holding another model's public part is
// refused before any key is sent.
func Fingerprint(pub *models.ClientModel) ([32]byte, error) {
	if pub == nil {
		return [32]byte{}, fmt.Errorf("cannot Fingerprint: nil model")
	}
	h := sha256.New()
	h.Write([]byte("cipherprune/engine public model v1\x00"))
	cfg, err := pub.Config.MarshalJSON()
	if err != nil {
		return [32]byte{}, fmt.Errorf("cannot Fingerprint: %w", err)
	}
	var b [8]byte
	writeLen := func(n int) {
		binary.BigEndian.PutUint64(b[:], uint64(n))
		h.Write(b[:])
	}
	writeLen(len(cfg))
	h.Write(cfg)
	vocab := pub.Tokenizer.Vocab()
	writeLen(len(vocab))
	for _, w := range vocab {
		writeLen(len(w))
		h.Write([]byte(w))
	}
	floats := func(v []float64) {
		writeLen(len(v))
		for _, x := range v {
			binary.BigEndian.PutUint64(b[:], math.Float64bits(x))
			h.Write(b[:])
		}
	}
	e := pub.Embeddings
	for _, m := range []models.Matrix{e.Word, e.Position, e.TokenType} {
		writeLen(m.Rows)
		floats(m.Data)
	}
	floats(e.LayerNorm.Gamma)
	floats(e.LayerNorm.Beta)
	binary.BigEndian.PutUint64(b[:], math.Float64bits(e.LayerNorm.Eps))
	h.Write(b[:])
	var out [32]byte
	h.Sum(out[:0])
	return out, nil
}
