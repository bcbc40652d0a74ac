package models

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// The files of a checkpoint directory, in the Hugging Face layout.
const (
	ConfigFile  = "config.json"
	WeightsFile = "model.safetensors"
	VocabFile   = "vocab.txt"
)

// Linear is a dense layer y = W·x + b, with W stored [out, in] as in PyTorch.
type Linear struct {
	Weight Matrix    // Out x In
	Bias   []float64 // Out
}

// In returns the input width.
func (l *Linear) In() int { return l.Weight.Cols }

// Out returns the output width.
func (l *Linear) Out() int { return l.Weight.Rows }

// LayerNorm normalizes each row to zero mean and unit variance, then scales
// by Gamma and shifts by Beta.
type LayerNorm struct {
	Gamma []float64 // "weight" in the checkpoint
	Beta  []float64 // "bias" in the checkpoint
	Eps   float64
}

// Embeddings is the embedding layer: X_0 = LayerNorm(word + position +
// token type).
type Embeddings struct {
	Word      Matrix // VocabSize x HiddenSize
	Position  Matrix // MaxPositions x HiddenSize
	TokenType Matrix // TypeVocabSize x HiddenSize
	LayerNorm LayerNorm
}

// EncoderLayer is one post-LayerNorm Transformer encoder layer.
type EncoderLayer struct {
	Query, Key, Value Linear    // hidden -> hidden, heads concatenated
	AttnOutput        Linear    // hidden -> hidden
	AttnNorm          LayerNorm // after the attention residual
	Intermediate      Linear    // hidden -> intermediate
	Output            Linear    // intermediate -> hidden
	OutputNorm        LayerNorm // after the feed-forward residual
}

// ClientModel is the public part of a model, the part the client holds: the
// public shape, the tokenizer and the embedding layer.
type ClientModel struct {
	Config     Config
	Tokenizer  *Tokenizer
	Embeddings Embeddings
}

// ServerModel is the secret part of a model, the part the server keeps: the
// encoder layers, the pooler and the classifier.
type ServerModel struct {
	Config     Config
	Layers     []EncoderLayer
	Pooler     Linear // hidden -> hidden, then tanh
	Classifier Linear // hidden -> NumLabels
}

// Model is a BERT sequence classifier: the client's public part and the
// server's secret part.
type Model struct {
	Client *ClientModel
	Server *ServerModel
}

// Config returns the model's configuration (the zero Config if both parts
// are nil).
func (m *Model) Config() Config {
	switch {
	case m.Server != nil:
		return m.Server.Config
	case m.Client != nil:
		return m.Client.Config
	}
	return Config{}
}

// Load reads a checkpoint directory holding config.json, model.safetensors
// (Hugging Face tensor names, with or without the "bert." prefix) and
// vocab.txt, and validates every tensor's shape against the configuration.
func Load(dir string) (*Model, error) {
	cfg, tok, err := loadConfigAndVocab(dir)
	if err != nil {
		return nil, fmt.Errorf("cannot Load: %w", err)
	}
	st, err := OpenSafetensors(filepath.Join(dir, WeightsFile))
	if err != nil {
		return nil, fmt.Errorf("cannot Load: %w", err)
	}
	defer st.Close()
	names := newCheckpointNames(st)
	client := newClientModel(cfg, tok)
	server := newServerModel(cfg)
	if err := names.load(append(client.tensors(), server.tensors()...)); err != nil {
		return nil, fmt.Errorf("cannot Load %s: %w", dir, err)
	}
	if err := names.checkNoExtraLayers(cfg.NumLayers()); err != nil {
		return nil, fmt.Errorf("cannot Load %s: %w", dir, err)
	}
	return &Model{Client: client, Server: server}, nil
}

// LoadClient reads the public part of a checkpoint directory: config.json,
// vocab.txt and the embedding tensors of model.safetensors.
func LoadClient(dir string) (*ClientModel, error) {
	cfg, tok, err := loadConfigAndVocab(dir)
	if err != nil {
		return nil, fmt.Errorf("cannot LoadClient: %w", err)
	}
	st, err := OpenSafetensors(filepath.Join(dir, WeightsFile))
	if err != nil {
		return nil, fmt.Errorf("cannot LoadClient: %w", err)
	}
	defer st.Close()
	client := newClientModel(cfg, tok)
	if err := newCheckpointNames(st).load(client.tensors()); err != nil {
		return nil, fmt.Errorf("cannot LoadClient %s: %w", dir, err)
	}
	return client, nil
}

// loadConfigAndVocab reads config.json and vocab.txt from dir and checks
// that they agree.
func loadConfigAndVocab(dir string) (Config, *Tokenizer, error) {
	cfg, err := LoadConfig(filepath.Join(dir, ConfigFile))
	if err != nil {
		return Config{}, nil, err
	}
	tok, err := LoadTokenizer(filepath.Join(dir, VocabFile))
	if err != nil {
		return Config{}, nil, err
	}
	if err := checkVocab(cfg, tok); err != nil {
		return Config{}, nil, err
	}
	if h := cfg.TruncationHead(); h > 0 {
		if tok, err = tok.WithTruncation(h, cfg.MaxPositions()); err != nil {
			return Config{}, nil, err
		}
	}
	return cfg, tok, nil
}

// checkVocab checks that every id tok produces has an embedding and that
// the padding ids agree.
func checkVocab(cfg Config, tok *Tokenizer) error {
	if tok.VocabSize() > cfg.VocabSize() {
		return fmt.Errorf("vocabulary has %d tokens but config vocab_size is %d", tok.VocabSize(), cfg.VocabSize())
	}
	if tok.PadID() != cfg.PadTokenID() {
		return fmt.Errorf("vocabulary's [PAD] has id %d but config pad_token_id is %d", tok.PadID(), cfg.PadTokenID())
	}
	return nil
}

// Save writes m to dir (created if needed) as config.json, vocab.txt and
// model.safetensors with the Hugging Face names (with the "bert." prefix)
// and elements stored as dtype (F16, F32 or F64).
func (m *Model) Save(dir string, dtype DType) error {
	if err := m.Validate(); err != nil {
		return fmt.Errorf("cannot Save: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("cannot Save: %w", err)
	}
	cfgJSON, err := json.MarshalIndent(m.Config().Literal(), "", "  ")
	if err != nil {
		return fmt.Errorf("cannot Save: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, ConfigFile), append(cfgJSON, '\n'), 0o644); err != nil {
		return fmt.Errorf("cannot Save: %w", err)
	}
	var vocab bytes.Buffer
	for _, tok := range m.Client.Tokenizer.vocab {
		if strings.ContainsAny(tok, "\r\n") {
			return fmt.Errorf("cannot Save: vocabulary token %q holds a line break", tok)
		}
		vocab.WriteString(tok)
		vocab.WriteByte('\n')
	}
	if err := os.WriteFile(filepath.Join(dir, VocabFile), vocab.Bytes(), 0o644); err != nil {
		return fmt.Errorf("cannot Save: %w", err)
	}
	if err := WriteSafetensorsFile(filepath.Join(dir, WeightsFile), m.Tensors(), dtype, map[string]string{"format": "pt"}); err != nil {
		return fmt.Errorf("cannot Save: %w", err)
	}
	return nil
}

// Validate checks that every weight of m has the shape its configuration
// asks for, and that the client's and server's configurations agree.
func (m *Model) Validate() error {
	if m.Client == nil || m.Server == nil {
		return fmt.Errorf("cannot Validate: model has a nil part")
	}
	if !m.Client.Config.Equal(m.Server.Config) {
		return fmt.Errorf("cannot Validate: client and server configurations differ")
	}
	if err := m.Client.Validate(); err != nil {
		return err
	}
	return m.Server.Validate()
}

// Validate checks the shapes of the embedding tables and the tokenizer
// against c.Config.
func (c *ClientModel) Validate() error {
	cfg := c.Config
	if c.Tokenizer == nil {
		return fmt.Errorf("cannot Validate: client model has no tokenizer")
	}
	if err := checkVocab(cfg, c.Tokenizer); err != nil {
		return fmt.Errorf("cannot Validate: %w", err)
	}
	for _, t := range c.tensors() {
		if err := t.check(); err != nil {
			return fmt.Errorf("cannot Validate: %w", err)
		}
	}
	if err := checkEps("embeddings.LayerNorm", c.Embeddings.LayerNorm.Eps); err != nil {
		return fmt.Errorf("cannot Validate: %w", err)
	}
	return nil
}

// Validate checks the shapes of the encoder, pooler and classifier weights
// against s.Config.
func (s *ServerModel) Validate() error {
	if len(s.Layers) != s.Config.NumLayers() {
		return fmt.Errorf("cannot Validate: %d encoder layers, config num_hidden_layers is %d", len(s.Layers), s.Config.NumLayers())
	}
	for _, t := range s.tensors() {
		if err := t.check(); err != nil {
			return fmt.Errorf("cannot Validate: %w", err)
		}
	}
	for l := range s.Layers {
		if err := checkEps(fmt.Sprintf("layer %d attention LayerNorm", l), s.Layers[l].AttnNorm.Eps); err != nil {
			return fmt.Errorf("cannot Validate: %w", err)
		}
		if err := checkEps(fmt.Sprintf("layer %d output LayerNorm", l), s.Layers[l].OutputNorm.Eps); err != nil {
			return fmt.Errorf("cannot Validate: %w", err)
		}
	}
	return nil
}

// checkEps checks that a LayerNorm epsilon is positive and finite.
func checkEps(name string, eps float64) error {
	if !(eps > 0 && eps < 1) {
		return fmt.Errorf("%s has epsilon %v, want a value in (0, 1)", name, eps)
	}
	return nil
}
