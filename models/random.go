package models

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
)

// NewRandomModel returns a model of configuration cfg with random weights,
// for tests and benchmarks. The weights are drawn from a generator seeded
// with seed, so equal seeds give equal models, and are scaled to keep
// activations of order one: embedding tables N(0, 1), other matrices
// N(0, 1/in), LayerNorm scales 1 + N(0, 0.01), biases and LayerNorm shifts
// N(0, 0.01). The tokenizer's vocabulary must fit cfg.
func NewRandomModel(cfg Config, tok *Tokenizer, seed uint64) (*Model, error) {
	if tok == nil {
		return nil, fmt.Errorf("cannot NewRandomModel: nil tokenizer")
	}
	if err := checkVocab(cfg, tok); err != nil {
		return nil, fmt.Errorf("cannot NewRandomModel: %w", err)
	}
	rng := rand.New(rand.NewPCG(seed, 0x6369706865727072))
	client := newClientModel(cfg, tok)
	server := newServerModel(cfg)
	for _, b := range append(client.tensors(), server.tensors()...) {
		n, _ := numElements(b.shape)
		data := make([]float64, n)
		mean, std := 0.0, 0.1
		switch {
		case strings.HasSuffix(b.name, "_embeddings.weight"):
			std = 1
		case b.mat != nil:
			std = 1 / math.Sqrt(float64(b.shape[1]))
		case strings.HasSuffix(b.name, "LayerNorm.weight"):
			mean = 1
		}
		for i := range data {
			data[i] = mean + std*rng.NormFloat64()
		}
		*b.data = data
		if b.mat != nil {
			b.mat.Rows, b.mat.Cols = b.shape[0], b.shape[1]
		}
	}
	return &Model{Client: client, Server: server}, nil
}
