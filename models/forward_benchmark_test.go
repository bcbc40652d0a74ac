package models

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
)

// sentimentTinyConfig returns the shape of models/trained/sentiment-tiny,
// from its config.json when present, else the training code's default
// (vocabulary 4000, hidden 128, 2 layers, 2 heads, intermediate 512, 128
// positions).
func sentimentTinyConfig(b *testing.B) Config {
	if cfg, err := LoadConfig(filepath.Join(trainedDir, "sentiment-tiny", ConfigFile)); err == nil {
		return cfg
	}
	lit := DefaultConfigLiteral()
	lit.ModelType = "bert"
	lit.VocabSize, lit.HiddenSize, lit.NumHiddenLayers, lit.NumAttentionHeads = 4000, 128, 2, 2
	lit.IntermediateSize, lit.MaxPositionEmbeddings = 512, 128
	cfg, err := NewConfig(lit)
	if err != nil {
		b.Fatal(err)
	}
	return cfg
}

// BenchmarkForward times the exact forward of a random model shaped like
// sentiment-tiny on n = 128 tokens, all real: the client's embedding, the
// server's part, and both.
func BenchmarkForward(b *testing.B) {
	cfg := sentimentTinyConfig(b)
	const n = 128
	if cfg.MaxPositions() < n {
		b.Skipf("model accepts %d positions", cfg.MaxPositions())
	}
	m := tinyModel(b, cfg, 1)
	ids, mask := testInput(rand.New(rand.NewPCG(1, 2)), m.Client.Tokenizer, n, n)
	x0, err := m.Client.Embed(ids, nil)
	if err != nil {
		b.Fatal(err)
	}
	name := fmt.Sprintf("L=%d,d=%d,H=%d,n=%d", cfg.NumLayers(), cfg.HiddenSize(), cfg.NumHeads(), n)
	b.Run("embed/"+name, func(b *testing.B) {
		for b.Loop() {
			if _, err := m.Client.Embed(ids, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("server/"+name, func(b *testing.B) {
		for b.Loop() {
			if _, err := m.Server.Forward(x0, mask, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("logits/"+name, func(b *testing.B) {
		for b.Loop() {
			if _, err := m.Logits(ids, mask); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkBERTBaseLayer times one BERT-base encoder layer (d = 768, 12
// heads, intermediate 3072) on n = 128 tokens.
func BenchmarkBERTBaseLayer(b *testing.B) {
	lit := DefaultConfigLiteral()
	lit.ModelType = "bert"
	lit.VocabSize, lit.HiddenSize, lit.NumHiddenLayers, lit.NumAttentionHeads = 64, 768, 1, 12
	lit.IntermediateSize, lit.MaxPositionEmbeddings = 3072, 128
	cfg, err := NewConfig(lit)
	if err != nil {
		b.Fatal(err)
	}
	m := tinyModel(b, cfg, 2)
	x := randomMatrix(rand.New(rand.NewPCG(3, 4)), 128, 768)
	for b.Loop() {
		h, _, err := m.Server.AttentionBlock(0, x, nil, nil, Exact{})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := m.Server.FeedForwardBlock(0, h, nil, Exact{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMulTransB times the matrix product behind every linear layer, at
// BERT-base shapes for n = 128 tokens, and reports GFLOP/s.
func BenchmarkMulTransB(b *testing.B) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, s := range [][3]int{{128, 768, 768}, {128, 768, 3072}, {128, 3072, 768}, {128, 64, 128}} {
		n, k, m := s[0], s[1], s[2]
		b.Run(fmt.Sprintf("%dx%dx%d", n, k, m), func(b *testing.B) {
			a, w, out := randomMatrix(rng, n, k), randomMatrix(rng, m, k), NewMatrix(n, m)
			for b.Loop() {
				if err := MulTransB(a, w, out); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(2*float64(n*k*m)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}
