package models

import (
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// tinyConfig returns a small configuration that fits testdata/vocab.txt.
func tinyConfig(t testing.TB, layers, hidden, heads, inter int) Config {
	t.Helper()
	lit := DefaultConfigLiteral()
	lit.ModelType = "bert"
	lit.VocabSize = 64
	lit.HiddenSize = hidden
	lit.NumHiddenLayers = layers
	lit.NumAttentionHeads = heads
	lit.IntermediateSize = inter
	lit.MaxPositionEmbeddings = 40
	lit.NumLabels = 3
	cfg, err := NewConfig(lit)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// tinyModel returns a random model of configuration cfg with the test
// vocabulary.
func tinyModel(t testing.TB, cfg Config, seed uint64) *Model {
	t.Helper()
	m, err := NewRandomModel(cfg, testTokenizer(t), seed)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// saveTensors writes tensors and the model's config and vocabulary to a new
// directory, as a checkpoint another tool might have written.
func saveTensors(t *testing.T, m *Model, tensors []Tensor, dtype DType) string {
	t.Helper()
	dir := t.TempDir()
	if err := m.Save(dir, F64); err != nil {
		t.Fatal(err)
	}
	if err := WriteSafetensorsFile(filepath.Join(dir, WeightsFile), tensors, dtype, nil); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestSaveLoad(t *testing.T) {
	cfg := tinyConfig(t, 2, 8, 2, 16)
	m := tinyModel(t, cfg, 1)
	for _, dtype := range []DType{F64, F32, F16} {
		t.Run(string(dtype), func(t *testing.T) {
			dir := t.TempDir()
			if err := m.Save(dir, dtype); err != nil {
				t.Fatal(err)
			}
			got, err := Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			if !got.Config().Equal(cfg) || !slices.Equal(got.Client.Tokenizer.Vocab(), m.Client.Tokenizer.Vocab()) {
				t.Fatal("configuration or vocabulary changed")
			}
			want, have := m.Tensors(), got.Tensors()
			if len(want) != len(have) {
				t.Fatalf("%d tensors, want %d", len(have), len(want))
			}
			for i := range want {
				if have[i].Name != want[i].Name || !slices.Equal(have[i].Shape, want[i].Shape) {
					t.Fatalf("tensor %d is %s %v, want %s %v", i, have[i].Name, have[i].Shape, want[i].Name, want[i].Shape)
				}
				if dtype == F64 && !slices.Equal(have[i].Data, want[i].Data) {
					t.Fatalf("tensor %s changed", want[i].Name)
				}
			}
			client, err := LoadClient(dir)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(client.Embeddings.Word.Data, got.Client.Embeddings.Word.Data) {
				t.Error("LoadClient and Load disagree on the word embeddings")
			}
		})
	}
}

func TestLoadNameVariants(t *testing.T) {
	cfg := tinyConfig(t, 1, 8, 2, 16)
	m := tinyModel(t, cfg, 2)
	rename := func(f func(string) string) []Tensor {
		var ts []Tensor
		for _, tn := range m.Tensors() {
			tn.Name = f(tn.Name)
			ts = append(ts, tn)
		}
		return append(ts, Tensor{Name: "bert.embeddings.position_ids", Shape: []int{1}, Data: []float64{0}})
	}
	tests := []struct {
		name   string
		rename func(string) string
	}{
		{"hf names", func(s string) string { return s }},
		{"no bert prefix", func(s string) string { return strings.TrimPrefix(s, "bert.") }},
		{"gamma beta", func(s string) string {
			s = strings.Replace(s, "LayerNorm.weight", "LayerNorm.gamma", 1)
			return strings.Replace(s, "LayerNorm.bias", "LayerNorm.beta", 1)
		}},
	}
	x0, err := m.Client.Embed([]int{2, 20, 23, 3}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want, err := m.Server.Forward(x0, []int{1, 1, 1, 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Load(saveTensors(t, m, rename(tt.rename), F64))
			if err != nil {
				t.Fatal(err)
			}
			logits, err := got.Logits([]int{2, 20, 23, 3}, []int{1, 1, 1, 1})
			if err != nil || !slices.Equal(logits, want) {
				t.Fatalf("logits %v, %v; want %v", logits, err, want)
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	cfg := tinyConfig(t, 1, 8, 2, 16)
	m := tinyModel(t, cfg, 3)
	without := func(name string) []Tensor {
		var ts []Tensor
		for _, tn := range m.Tensors() {
			if tn.Name != name {
				ts = append(ts, tn)
			}
		}
		return ts
	}
	replace := func(name string, shape ...int) []Tensor {
		ts := without(name)
		n, _ := numElements(shape)
		return append(ts, Tensor{Name: name, Shape: shape, Data: make([]float64, n)})
	}
	extraLayer := append(m.Tensors(), Tensor{Name: "bert.encoder.layer.1.attention.self.query.weight", Shape: []int{8, 8}, Data: make([]float64, 64)})
	nan := replace("classifier.bias", 3)
	nan[len(nan)-1].Data[1] = math.NaN()
	tests := []struct {
		name    string
		tensors []Tensor
		wantErr string
	}{
		{"missing query", without("bert.encoder.layer.0.attention.self.query.weight"), `tensor "bert.encoder.layer.0.attention.self.query.weight" is missing`},
		{"missing classifier", without("classifier.weight"), `tensor "classifier.weight" is missing`},
		{"missing LayerNorm", without("bert.embeddings.LayerNorm.bias"), `"bert.embeddings.LayerNorm.bias" is missing`},
		{"transposed weight", replace("bert.encoder.layer.0.intermediate.dense.weight", 8, 16), `has shape [8 16], want [16 8]`},
		{"vector as matrix", replace("bert.pooler.dense.bias", 1, 8), `"bert.pooler.dense.bias" has shape [1 8], want [8]`},
		{"short vocabulary table", replace("bert.embeddings.word_embeddings.weight", 60, 8), `has shape [60 8], want [64 8]`},
		{"wrong label count", replace("classifier.weight", 2, 8), `"classifier.weight" has shape [2 8], want [3 8]`},
		{"extra layer", extraLayer, `holds tensor "bert.encoder.layer.1.attention.self.query.weight" but config num_hidden_layers is 1`},
		{"NaN weight", nan, `"classifier.bias" holds NaN at index 1`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(saveTensors(t, m, tt.tensors, F32))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.HasPrefix(err.Error(), "cannot Load") {
				t.Fatalf("error = %v, want one mentioning %s", err, tt.wantErr)
			}
		})
	}
}

func TestLoadDirectoryErrors(t *testing.T) {
	cfg := tinyConfig(t, 1, 8, 2, 16)
	m := tinyModel(t, cfg, 4)
	tests := []struct {
		name    string
		edit    func(t *testing.T, dir string)
		wantErr string
	}{
		{"no config", func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, ConfigFile)) }, "config.json"},
		{"no vocab", func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, VocabFile)) }, "vocab.txt"},
		{"no weights", func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, WeightsFile)) }, "model.safetensors"},
		{"corrupt weights", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, WeightsFile), []byte("not a safetensors file"), 0o644)
		}, "header length"},
		{"vocab too large", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, VocabFile), []byte("[PAD]\n[UNK]\n[CLS]\n[SEP]\n"+strings.Repeat("x\n", 61)), 0o644)
		}, "vocabulary has 65 tokens but config vocab_size is 64"},
		{"pad id mismatch", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, VocabFile), []byte("[UNK]\n[PAD]\n[CLS]\n[SEP]\n"), 0o644)
		}, "[PAD] has id 1 but config pad_token_id is 0"},
		{"bad config", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, ConfigFile), []byte(`{"model_type": "bert", "hidden_act": "relu"}`), 0o644)
		}, "vocab_size"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := m.Save(dir, F32); err != nil {
				t.Fatal(err)
			}
			tt.edit(t, dir)
			_, err := Load(dir)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error = %v, want one mentioning %q", err, tt.wantErr)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	cfg := tinyConfig(t, 2, 8, 2, 16)
	tests := []struct {
		name    string
		edit    func(m *Model)
		wantErr string
	}{
		{"valid", func(*Model) {}, ""},
		{"short bias", func(m *Model) { m.Server.Layers[1].Query.Bias = m.Server.Layers[1].Query.Bias[:7] }, `"bert.encoder.layer.1.attention.self.query.bias" holds 7 values`},
		{"layer missing", func(m *Model) { m.Server.Layers = m.Server.Layers[:1] }, "1 encoder layers"},
		{"zero eps", func(m *Model) { m.Server.Layers[0].AttnNorm.Eps = 0 }, "epsilon 0"},
		{"reshaped matrix", func(m *Model) { w := &m.Server.Layers[0].Output.Weight; w.Rows, w.Cols = w.Cols, w.Rows }, "is 16x8"},
		{"no tokenizer", func(m *Model) { m.Client.Tokenizer = nil }, "no tokenizer"},
		{"nil server", func(m *Model) { m.Server = nil }, "nil part"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := tinyModel(t, cfg, 5)
			tt.edit(m)
			err := m.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error = %v, want one mentioning %q", err, tt.wantErr)
			}
			// A broken model is refused by the forward, without panicking.
			if _, err := m.Logits([]int{2, 3}, []int{1, 1}); err == nil {
				t.Error("Logits accepted a broken model")
			}
		})
	}
}
