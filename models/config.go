package models

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
)

// MaxConfigSize bounds the size of a config.json file that LoadConfig reads.
const MaxConfigSize = 1 << 20

// Limits on the sizes a configuration may declare. They are far above any
// BERT-family model and keep a hostile config.json from asking for absurd
// allocations.
const (
	maxVocabSize    = 1 << 22
	maxHiddenSize   = 1 << 16
	maxLayers       = 1 << 10
	maxPositions    = 1 << 16
	maxTypeVocab    = 1 << 10
	maxLabels       = 1 << 16
	maxLabelNameLen = 1 << 10
)

// ConfigLiteral is the unchecked, serializable form of a BERT configuration,
// with the JSON names of a Hugging Face config.json. Fields a config.json
// may omit (hidden_act, layer_norm_eps, type_vocab_size, pad_token_id,
// position_embedding_type, id2label, num_labels) get the Hugging Face
// defaults in ParseConfig and LoadConfig; NewConfig itself assumes nothing
// and validates every field.
type ConfigLiteral struct {
	ModelType             string            `json:"model_type"`
	VocabSize             int               `json:"vocab_size"`
	HiddenSize            int               `json:"hidden_size"`
	NumHiddenLayers       int               `json:"num_hidden_layers"`
	NumAttentionHeads     int               `json:"num_attention_heads"`
	IntermediateSize      int               `json:"intermediate_size"`
	HiddenAct             string            `json:"hidden_act"`
	MaxPositionEmbeddings int               `json:"max_position_embeddings"`
	TypeVocabSize         int               `json:"type_vocab_size"`
	LayerNormEps          float64           `json:"layer_norm_eps"`
	PadTokenID            int               `json:"pad_token_id"`
	PositionEmbeddingType string            `json:"position_embedding_type,omitempty"`
	ID2Label              map[string]string `json:"id2label,omitempty"`
	NumLabels             int               `json:"num_labels,omitempty"`
	// TruncationHeadTokens, when positive, says how the model reads an
	// input longer than its positions: the first TruncationHeadTokens body
	// tokens and the last max_position_embeddings-2-TruncationHeadTokens
	// (Sun et al., 2019, "How to Fine-Tune BERT for Text Classification?",
	// head+tail). Zero, the default, keeps the first tokens, as Hugging Face
	// does. It is this project's key; Hugging Face ignores it.
	TruncationHeadTokens int `json:"truncation_head_tokens,omitempty"`
}

// DefaultConfigLiteral returns a ConfigLiteral holding the Hugging Face
// BertConfig defaults for the fields a config.json may omit; the sizes that
// every config.json states (vocabulary, hidden size, layers, heads,
// intermediate size, positions) are left zero.
func DefaultConfigLiteral() ConfigLiteral {
	return ConfigLiteral{
		HiddenAct:             "gelu",
		TypeVocabSize:         2,
		LayerNormEps:          1e-12,
		PadTokenID:            0,
		PositionEmbeddingType: "absolute",
	}
}

// Config is a validated, immutable BERT configuration. Build one with
// NewConfig, ParseConfig or LoadConfig; the zero Config is not valid.
type Config struct {
	vocabSize        int
	hiddenSize       int
	numLayers        int
	numHeads         int
	intermediateSize int
	maxPositions     int
	typeVocabSize    int
	layerNormEps     float64
	padTokenID       int
	labels           []string
	truncationHead   int
}

// NewConfig validates lit and returns the Config it describes.
//
// It accepts only model_type "bert", hidden_act "gelu" (the exact erf GELU)
// and absolute position embeddings. The labels come from id2label, whose keys
// must be exactly "0" to "k-1"; when id2label is empty they are LABEL_0 to
// LABEL_{k-1} with k = num_labels, or 2 when num_labels is zero as well.
func NewConfig(lit ConfigLiteral) (Config, error) {
	if lit.ModelType != "bert" {
		return Config{}, fmt.Errorf("cannot NewConfig: model_type is %q, want \"bert\"", lit.ModelType)
	}
	sizes := []struct {
		name     string
		val, max int
	}{
		{"vocab_size", lit.VocabSize, maxVocabSize},
		{"hidden_size", lit.HiddenSize, maxHiddenSize},
		{"num_hidden_layers", lit.NumHiddenLayers, maxLayers},
		{"num_attention_heads", lit.NumAttentionHeads, maxHiddenSize},
		{"intermediate_size", lit.IntermediateSize, maxHiddenSize},
		{"max_position_embeddings", lit.MaxPositionEmbeddings, maxPositions},
		{"type_vocab_size", lit.TypeVocabSize, maxTypeVocab},
	}
	for _, s := range sizes {
		if s.val <= 0 || s.val > s.max {
			return Config{}, fmt.Errorf("cannot NewConfig: %s is %d, want 1 to %d", s.name, s.val, s.max)
		}
	}
	if lit.HiddenSize%lit.NumAttentionHeads != 0 {
		return Config{}, fmt.Errorf("cannot NewConfig: hidden_size %d is not divisible by num_attention_heads %d",
			lit.HiddenSize, lit.NumAttentionHeads)
	}
	if lit.HiddenAct != "gelu" {
		return Config{}, fmt.Errorf("cannot NewConfig: hidden_act is %q, only \"gelu\" (exact erf GELU) is supported", lit.HiddenAct)
	}
	if lit.PositionEmbeddingType != "" && lit.PositionEmbeddingType != "absolute" {
		return Config{}, fmt.Errorf("cannot NewConfig: position_embedding_type is %q, only \"absolute\" is supported",
			lit.PositionEmbeddingType)
	}
	// The negated comparison also rejects NaN.
	if !(lit.LayerNormEps > 0 && lit.LayerNormEps < 1) {
		return Config{}, fmt.Errorf("cannot NewConfig: layer_norm_eps is %v, want a value in (0, 1)", lit.LayerNormEps)
	}
	if lit.PadTokenID < 0 || lit.PadTokenID >= lit.VocabSize {
		return Config{}, fmt.Errorf("cannot NewConfig: pad_token_id is %d, want 0 to vocab_size-1 = %d", lit.PadTokenID, lit.VocabSize-1)
	}
	if lit.TruncationHeadTokens < 0 || lit.TruncationHeadTokens > lit.MaxPositionEmbeddings-2 {
		return Config{}, fmt.Errorf("cannot NewConfig: truncation_head_tokens is %d, want 0 to max_position_embeddings-2 = %d",
			lit.TruncationHeadTokens, lit.MaxPositionEmbeddings-2)
	}
	labels, err := labelsOf(lit)
	if err != nil {
		return Config{}, fmt.Errorf("cannot NewConfig: %w", err)
	}
	return Config{
		vocabSize:        lit.VocabSize,
		hiddenSize:       lit.HiddenSize,
		numLayers:        lit.NumHiddenLayers,
		numHeads:         lit.NumAttentionHeads,
		intermediateSize: lit.IntermediateSize,
		maxPositions:     lit.MaxPositionEmbeddings,
		typeVocabSize:    lit.TypeVocabSize,
		layerNormEps:     lit.LayerNormEps,
		padTokenID:       lit.PadTokenID,
		labels:           labels,
		truncationHead:   lit.TruncationHeadTokens,
	}, nil
}

// labelsOf returns the class labels that lit's id2label and num_labels
// describe.
func labelsOf(lit ConfigLiteral) ([]string, error) {
	if lit.NumLabels < 0 || lit.NumLabels > maxLabels {
		return nil, fmt.Errorf("num_labels is %d, want 1 to %d", lit.NumLabels, maxLabels)
	}
	if len(lit.ID2Label) == 0 {
		k := lit.NumLabels
		if k == 0 {
			k = 2
		}
		labels := make([]string, k)
		for i := range labels {
			labels[i] = "LABEL_" + strconv.Itoa(i)
		}
		return labels, nil
	}
	k := len(lit.ID2Label)
	if k > maxLabels {
		return nil, fmt.Errorf("id2label has %d entries, want at most %d", k, maxLabels)
	}
	if lit.NumLabels != 0 && lit.NumLabels != k {
		return nil, fmt.Errorf("num_labels is %d but id2label has %d entries", lit.NumLabels, k)
	}
	labels := make([]string, k)
	for i := range labels {
		name, ok := lit.ID2Label[strconv.Itoa(i)]
		if !ok {
			keys := make([]string, 0, k)
			for key := range lit.ID2Label {
				keys = append(keys, key)
			}
			sort.Strings(keys)
			return nil, fmt.Errorf("id2label keys are %q, want \"0\" to \"%d\"", keys, k-1)
		}
		if len(name) > maxLabelNameLen {
			return nil, fmt.Errorf("id2label[%d] is %d bytes long, want at most %d", i, len(name), maxLabelNameLen)
		}
		labels[i] = name
	}
	return labels, nil
}

// ParseConfig decodes a Hugging Face config.json and validates it. Omitted
// optional fields take the defaults of DefaultConfigLiteral; unknown fields
// (dropout rates, architectures, ...) are ignored.
func ParseConfig(data []byte) (Config, error) {
	lit := DefaultConfigLiteral()
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&lit); err != nil {
		return Config{}, fmt.Errorf("cannot ParseConfig: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Config{}, fmt.Errorf("cannot ParseConfig: trailing data after the JSON object")
	}
	cfg, err := NewConfig(lit)
	if err != nil {
		return Config{}, fmt.Errorf("cannot ParseConfig: %w", err)
	}
	return cfg, nil
}

// LoadConfig reads and validates the config.json at path.
func LoadConfig(path string) (Config, error) {
	data, err := readFileLimited(path, MaxConfigSize)
	if err != nil {
		return Config{}, fmt.Errorf("cannot LoadConfig: %w", err)
	}
	cfg, err := ParseConfig(data)
	if err != nil {
		return Config{}, fmt.Errorf("cannot LoadConfig %s: %w", path, err)
	}
	return cfg, nil
}

// readFileLimited reads the file at path, failing if it is larger than limit
// bytes.
func readFileLimited(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, limit)
	}
	return data, nil
}

// Literal returns the ConfigLiteral that describes c; NewConfig(c.Literal())
// returns a Config equal to c.
func (c Config) Literal() ConfigLiteral {
	id2label := make(map[string]string, len(c.labels))
	for i, l := range c.labels {
		id2label[strconv.Itoa(i)] = l
	}
	return ConfigLiteral{
		ModelType:             "bert",
		VocabSize:             c.vocabSize,
		HiddenSize:            c.hiddenSize,
		NumHiddenLayers:       c.numLayers,
		NumAttentionHeads:     c.numHeads,
		IntermediateSize:      c.intermediateSize,
		HiddenAct:             "gelu",
		MaxPositionEmbeddings: c.maxPositions,
		TypeVocabSize:         c.typeVocabSize,
		LayerNormEps:          c.layerNormEps,
		PadTokenID:            c.padTokenID,
		PositionEmbeddingType: "absolute",
		ID2Label:              id2label,
		NumLabels:             len(c.labels),
		TruncationHeadTokens:  c.truncationHead,
	}
}

// MarshalJSON encodes c as a Hugging Face config.json object.
func (c Config) MarshalJSON() ([]byte, error) {
	return json.Marshal(c.Literal())
}

// UnmarshalJSON decodes and validates a Hugging Face config.json object into
// c, like ParseConfig.
func (c *Config) UnmarshalJSON(data []byte) error {
	cfg, err := ParseConfig(data)
	if err != nil {
		return err
	}
	*c = cfg
	return nil
}

// Equal reports whether c and other describe the same configuration.
func (c Config) Equal(other Config) bool {
	if len(c.labels) != len(other.labels) {
		return false
	}
	for i := range c.labels {
		if c.labels[i] != other.labels[i] {
			return false
		}
	}
	return c.vocabSize == other.vocabSize && c.hiddenSize == other.hiddenSize &&
		c.numLayers == other.numLayers && c.numHeads == other.numHeads &&
		c.intermediateSize == other.intermediateSize && c.maxPositions == other.maxPositions &&
		c.typeVocabSize == other.typeVocabSize && c.layerNormEps == other.layerNormEps &&
		c.padTokenID == other.padTokenID && c.truncationHead == other.truncationHead
}

// TruncationHead returns config.json's truncation_head_tokens: how many of
// a long input's first body tokens the model reads at its full length, the
// rest coming from the input's end; 0 means the first tokens only.
func (c Config) TruncationHead() int { return c.truncationHead }

// VocabSize returns the number of rows of the word-embedding table.
func (c Config) VocabSize() int { return c.vocabSize }

// HiddenSize returns d, the width of every token's hidden state.
func (c Config) HiddenSize() int { return c.hiddenSize }

// NumLayers returns the number of encoder layers.
func (c Config) NumLayers() int { return c.numLayers }

// NumHeads returns the number of attention heads per layer.
func (c Config) NumHeads() int { return c.numHeads }

// HeadDim returns d_h = HiddenSize / NumHeads.
func (c Config) HeadDim() int {
	if c.numHeads == 0 {
		return 0
	}
	return c.hiddenSize / c.numHeads
}

// IntermediateSize returns the width of the feed-forward hidden layer.
func (c Config) IntermediateSize() int { return c.intermediateSize }

// MaxPositions returns the number of position embeddings, the longest input
// the model accepts.
func (c Config) MaxPositions() int { return c.maxPositions }

// TypeVocabSize returns the number of token-type (segment) embeddings.
func (c Config) TypeVocabSize() int { return c.typeVocabSize }

// LayerNormEps returns the epsilon added to the variance in every LayerNorm.
func (c Config) LayerNormEps() float64 { return c.layerNormEps }

// PadTokenID returns the id of the padding token.
func (c Config) PadTokenID() int { return c.padTokenID }

// NumLabels returns the number of classes, the length of the logits.
func (c Config) NumLabels() int { return len(c.labels) }

// Labels returns a copy of the class names, indexed by class id.
func (c Config) Labels() []string { return append([]string(nil), c.labels...) }
