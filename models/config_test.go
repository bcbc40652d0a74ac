package models

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// validLiteral returns a small valid configuration literal.
func validLiteral() ConfigLiteral {
	lit := DefaultConfigLiteral()
	lit.ModelType = "bert"
	lit.VocabSize = 64
	lit.HiddenSize = 16
	lit.NumHiddenLayers = 2
	lit.NumAttentionHeads = 4
	lit.IntermediateSize = 32
	lit.MaxPositionEmbeddings = 32
	lit.ID2Label = map[string]string{"0": "negative", "1": "positive"}
	return lit
}

func TestNewConfig(t *testing.T) {
	tests := []struct {
		name    string
		edit    func(*ConfigLiteral)
		wantErr string // empty: valid
	}{
		{"valid", func(*ConfigLiteral) {}, ""},
		{"model type roberta", func(l *ConfigLiteral) { l.ModelType = "roberta" }, "model_type"},
		{"model type missing", func(l *ConfigLiteral) { l.ModelType = "" }, "model_type"},
		{"vocab zero", func(l *ConfigLiteral) { l.VocabSize = 0 }, "vocab_size"},
		{"vocab huge", func(l *ConfigLiteral) { l.VocabSize = 1 << 30 }, "vocab_size"},
		{"hidden negative", func(l *ConfigLiteral) { l.HiddenSize = -16 }, "hidden_size"},
		{"layers zero", func(l *ConfigLiteral) { l.NumHiddenLayers = 0 }, "num_hidden_layers"},
		{"heads zero", func(l *ConfigLiteral) { l.NumAttentionHeads = 0 }, "num_attention_heads"},
		{"heads do not divide hidden", func(l *ConfigLiteral) { l.NumAttentionHeads = 3 }, "not divisible"},
		{"intermediate zero", func(l *ConfigLiteral) { l.IntermediateSize = 0 }, "intermediate_size"},
		{"positions zero", func(l *ConfigLiteral) { l.MaxPositionEmbeddings = 0 }, "max_position_embeddings"},
		{"type vocab zero", func(l *ConfigLiteral) { l.TypeVocabSize = 0 }, "type_vocab_size"},
		{"act gelu_new", func(l *ConfigLiteral) { l.HiddenAct = "gelu_new" }, "hidden_act"},
		{"act relu", func(l *ConfigLiteral) { l.HiddenAct = "relu" }, "hidden_act"},
		{"act empty", func(l *ConfigLiteral) { l.HiddenAct = "" }, "hidden_act"},
		{"relative positions", func(l *ConfigLiteral) { l.PositionEmbeddingType = "relative_key" }, "position_embedding_type"},
		{"positions absent", func(l *ConfigLiteral) { l.PositionEmbeddingType = "" }, ""},
		{"eps zero", func(l *ConfigLiteral) { l.LayerNormEps = 0 }, "layer_norm_eps"},
		{"eps NaN", func(l *ConfigLiteral) { l.LayerNormEps = math.NaN() }, "layer_norm_eps"},
		{"eps one", func(l *ConfigLiteral) { l.LayerNormEps = 1 }, "layer_norm_eps"},
		{"pad negative", func(l *ConfigLiteral) { l.PadTokenID = -1 }, "pad_token_id"},
		{"pad beyond vocab", func(l *ConfigLiteral) { l.PadTokenID = 64 }, "pad_token_id"},
		{"labels gap", func(l *ConfigLiteral) { l.ID2Label = map[string]string{"0": "a", "2": "b"} }, "id2label keys"},
		{"labels not numbers", func(l *ConfigLiteral) { l.ID2Label = map[string]string{"a": "x"} }, "id2label keys"},
		{"num_labels disagrees", func(l *ConfigLiteral) { l.NumLabels = 3 }, "num_labels is 3"},
		{"num_labels agrees", func(l *ConfigLiteral) { l.NumLabels = 2 }, ""},
		{"num_labels negative", func(l *ConfigLiteral) { l.ID2Label = nil; l.NumLabels = -1 }, "num_labels"},
		{"num_labels only", func(l *ConfigLiteral) { l.ID2Label = nil; l.NumLabels = 5 }, ""},
		{"no labels at all", func(l *ConfigLiteral) { l.ID2Label = nil }, ""},
		{"head and tail", func(l *ConfigLiteral) { l.TruncationHeadTokens = 8 }, ""},
		{"head is the whole span", func(l *ConfigLiteral) { l.TruncationHeadTokens = 30 }, ""},
		{"head beyond the span", func(l *ConfigLiteral) { l.TruncationHeadTokens = 31 }, "truncation_head_tokens"},
		{"head negative", func(l *ConfigLiteral) { l.TruncationHeadTokens = -1 }, "truncation_head_tokens"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lit := validLiteral()
			tt.edit(&lit)
			cfg, err := NewConfig(lit)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("NewConfig: %v", err)
				}
				if cfg.HiddenSize() != lit.HiddenSize || cfg.HeadDim() != lit.HiddenSize/lit.NumAttentionHeads {
					t.Errorf("sizes not kept: %+v", cfg.Literal())
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.HasPrefix(err.Error(), "cannot ") {
				t.Fatalf("NewConfig error = %v, want one mentioning %q", err, tt.wantErr)
			}
		})
	}
}

func TestConfigLabels(t *testing.T) {
	tests := []struct {
		name      string
		id2label  map[string]string
		numLabels int
		want      []string
	}{
		{"id2label", map[string]string{"1": "pos", "0": "neg"}, 0, []string{"neg", "pos"}},
		{"num_labels", nil, 3, []string{"LABEL_0", "LABEL_1", "LABEL_2"}},
		{"default two", nil, 0, []string{"LABEL_0", "LABEL_1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lit := validLiteral()
			lit.ID2Label, lit.NumLabels = tt.id2label, tt.numLabels
			cfg, err := NewConfig(lit)
			if err != nil {
				t.Fatal(err)
			}
			got := cfg.Labels()
			if strings.Join(got, ",") != strings.Join(tt.want, ",") || cfg.NumLabels() != len(tt.want) {
				t.Errorf("labels %q, want %q", got, tt.want)
			}
			got[0] = "mutated"
			if cfg.Labels()[0] == "mutated" {
				t.Error("Labels exposes the configuration's storage")
			}
		})
	}
}

func TestParseConfig(t *testing.T) {
	const hf = `{
  "architectures": ["BertForSequenceClassification"],
  "attention_probs_dropout_prob": 0.1,
  "classifier_dropout": null,
  "hidden_act": "gelu",
  "hidden_dropout_prob": 0.1,
  "hidden_size": 768,
  "id2label": {"0": "NEGATIVE", "1": "POSITIVE"},
  "initializer_range": 0.02,
  "intermediate_size": 3072,
  "label2id": {"NEGATIVE": 0, "POSITIVE": 1},
  "layer_norm_eps": 1e-12,
  "max_position_embeddings": 512,
  "model_type": "bert",
  "num_attention_heads": 12,
  "num_hidden_layers": 12,
  "pad_token_id": 0,
  "position_embedding_type": "absolute",
  "torch_dtype": "float32",
  "transformers_version": "4.40.0",
  "type_vocab_size": 2,
  "use_cache": true,
  "vocab_size": 30522
}`
	minimal := `{"model_type": "bert", "vocab_size": 100, "hidden_size": 8, "num_hidden_layers": 1,
		"num_attention_heads": 2, "intermediate_size": 16, "max_position_embeddings": 16}`
	tests := []struct {
		name    string
		json    string
		wantErr string
		check   func(*testing.T, Config)
	}{
		{"bert-base", hf, "", func(t *testing.T, c Config) {
			if c.HiddenSize() != 768 || c.NumLayers() != 12 || c.NumHeads() != 12 || c.HeadDim() != 64 ||
				c.VocabSize() != 30522 || c.MaxPositions() != 512 || c.LayerNormEps() != 1e-12 ||
				c.Labels()[1] != "POSITIVE" || c.IntermediateSize() != 3072 || c.TypeVocabSize() != 2 {
				t.Errorf("unexpected config %+v", c.Literal())
			}
		}},
		{"defaults", minimal, "", func(t *testing.T, c Config) {
			if c.TypeVocabSize() != 2 || c.LayerNormEps() != 1e-12 || c.PadTokenID() != 0 || c.NumLabels() != 2 {
				t.Errorf("defaults not applied: %+v", c.Literal())
			}
		}},
		{"gelu_new", strings.Replace(hf, `"hidden_act": "gelu"`, `"hidden_act": "gelu_new"`, 1), "hidden_act", nil},
		{"relative", strings.Replace(hf, `"absolute"`, `"relative_key_query"`, 1), "position_embedding_type", nil},
		{"trailing data", minimal + "{}", "trailing data", nil},
		{"not JSON", "model_type = bert", "cannot ParseConfig", nil},
		{"wrong type", `{"model_type": "bert", "vocab_size": "many"}`, "vocab_size", nil},
		{"empty", "", "cannot ParseConfig", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := ParseConfig([]byte(tt.json))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, cfg)
		})
	}
}

func TestConfigRoundTrip(t *testing.T) {
	cfg, err := NewConfig(validLiteral())
	if err != nil {
		t.Fatal(err)
	}
	again, err := NewConfig(cfg.Literal())
	if err != nil || !again.Equal(cfg) {
		t.Fatalf("NewConfig(Literal()) = %+v, %v", again.Literal(), err)
	}
	data, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var decoded Config
	if err := json.Unmarshal(data, &decoded); err != nil || !decoded.Equal(cfg) {
		t.Fatalf("JSON round trip = %+v, %v", decoded.Literal(), err)
	}
	other := validLiteral()
	other.ID2Label = map[string]string{"0": "negative", "1": "other"}
	if c2, _ := NewConfig(other); c2.Equal(cfg) {
		t.Error("configs with different labels compare equal")
	}
	headTail := validLiteral()
	headTail.TruncationHeadTokens = 8
	c3, err := NewConfig(headTail)
	if err != nil {
		t.Fatal(err)
	}
	if c3.Equal(cfg) || c3.TruncationHead() != 8 {
		t.Errorf("truncation head lost or ignored by Equal: %d", c3.TruncationHead())
	}
	if data, _ := json.Marshal(c3); !strings.Contains(string(data), `"truncation_head_tokens":8`) {
		t.Errorf("config.json of a head+tail model: %s", data)
	}
	if data, _ := json.Marshal(cfg); strings.Contains(string(data), "truncation_head_tokens") {
		t.Errorf("config.json of a head-only model names the key: %s", data)
	}
}

func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "config.json")
	data, _ := json.Marshal(validLiteral())
	if err := os.WriteFile(good, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadConfig(good); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big.json")
	if err := os.WriteFile(big, make([]byte, MaxConfigSize+1), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{filepath.Join(dir, "missing.json"), big} {
		if _, err := LoadConfig(path); err == nil || !strings.HasPrefix(err.Error(), "cannot LoadConfig") {
			t.Errorf("LoadConfig(%s) error = %v", path, err)
		}
	}
}
