package models

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// bertPrefix starts the name of every tensor of a BertForSequenceClassification
// checkpoint except the classifier's; a bare BertModel checkpoint omits it.
const bertPrefix = "bert."

// binding ties a checkpoint tensor name to the weight that holds it.
type binding struct {
	name  string     // Hugging Face name, with the "bert." prefix where it has one
	shape []int      // the shape the configuration asks for
	data  *[]float64 // the weight's storage
	mat   *Matrix    // the matrix whose Data is *data, or nil for a vector
}

// check verifies that the bound weight holds shape's worth of values.
func (b binding) check() error {
	n, _ := numElements(b.shape)
	if int64(len(*b.data)) != n {
		return fmt.Errorf("weight %q holds %d values, want shape %v", b.name, len(*b.data), b.shape)
	}
	if b.mat != nil && (b.mat.Rows != b.shape[0] || b.mat.Cols != b.shape[1]) {
		return fmt.Errorf("weight %q is %dx%d, want shape %v", b.name, b.mat.Rows, b.mat.Cols, b.shape)
	}
	return nil
}

// matrixBinding binds a 2-D weight.
func matrixBinding(name string, m *Matrix, rows, cols int) binding {
	return binding{name: name, shape: []int{rows, cols}, data: &m.Data, mat: m}
}

// vectorBinding binds a 1-D weight.
func vectorBinding(name string, v *[]float64, n int) binding {
	return binding{name: name, shape: []int{n}, data: v}
}

// linearBindings binds a Linear layer's weight and bias.
func linearBindings(name string, l *Linear, out, in int) []binding {
	return []binding{
		matrixBinding(name+".weight", &l.Weight, out, in),
		vectorBinding(name+".bias", &l.Bias, out),
	}
}

// layerNormBindings binds a LayerNorm's scale and shift.
func layerNormBindings(name string, ln *LayerNorm, n int) []binding {
	return []binding{
		vectorBinding(name+".weight", &ln.Gamma, n),
		vectorBinding(name+".bias", &ln.Beta, n),
	}
}

// tensors returns the bindings of the client's weights.
func (c *ClientModel) tensors() []binding {
	cfg, e := c.Config, &c.Embeddings
	d := cfg.HiddenSize()
	p := bertPrefix + "embeddings."
	bs := []binding{
		matrixBinding(p+"word_embeddings.weight", &e.Word, cfg.VocabSize(), d),
		matrixBinding(p+"position_embeddings.weight", &e.Position, cfg.MaxPositions(), d),
		matrixBinding(p+"token_type_embeddings.weight", &e.TokenType, cfg.TypeVocabSize(), d),
	}
	return append(bs, layerNormBindings(p+"LayerNorm", &e.LayerNorm, d)...)
}

// tensors returns the bindings of the server's weights. It needs
// len(s.Layers) == s.Config.NumLayers().
func (s *ServerModel) tensors() []binding {
	d := s.Config.HiddenSize()
	var bs []binding
	for l := range s.Layers {
		bs = append(bs, s.layerTensors(l)...)
	}
	bs = append(bs, linearBindings(bertPrefix+"pooler.dense", &s.Pooler, d, d)...)
	return append(bs, linearBindings("classifier", &s.Classifier, s.Config.NumLabels(), d)...)
}

// layerTensors returns the bindings of encoder layer l's weights.
func (s *ServerModel) layerTensors(l int) []binding {
	d, di := s.Config.HiddenSize(), s.Config.IntermediateSize()
	ly := &s.Layers[l]
	p := bertPrefix + "encoder.layer." + strconv.Itoa(l) + "."
	var bs []binding
	bs = append(bs, linearBindings(p+"attention.self.query", &ly.Query, d, d)...)
	bs = append(bs, linearBindings(p+"attention.self.key", &ly.Key, d, d)...)
	bs = append(bs, linearBindings(p+"attention.self.value", &ly.Value, d, d)...)
	bs = append(bs, linearBindings(p+"attention.output.dense", &ly.AttnOutput, d, d)...)
	bs = append(bs, layerNormBindings(p+"attention.output.LayerNorm", &ly.AttnNorm, d)...)
	bs = append(bs, linearBindings(p+"intermediate.dense", &ly.Intermediate, di, d)...)
	bs = append(bs, linearBindings(p+"output.dense", &ly.Output, d, di)...)
	return append(bs, layerNormBindings(p+"output.LayerNorm", &ly.OutputNorm, d)...)
}

// newClientModel returns a client model with empty weights and the
// LayerNorm epsilon of cfg.
func newClientModel(cfg Config, tok *Tokenizer) *ClientModel {
	c := &ClientModel{Config: cfg, Tokenizer: tok}
	c.Embeddings.LayerNorm.Eps = cfg.LayerNormEps()
	return c
}

// newServerModel returns a server model with empty weights and the
// LayerNorm epsilon of cfg.
func newServerModel(cfg Config) *ServerModel {
	s := &ServerModel{Config: cfg, Layers: make([]EncoderLayer, cfg.NumLayers())}
	for l := range s.Layers {
		s.Layers[l].AttnNorm.Eps = cfg.LayerNormEps()
		s.Layers[l].OutputNorm.Eps = cfg.LayerNormEps()
	}
	return s
}

// Tensors returns every weight of m as a named tensor with its Hugging Face
// name (with the "bert." prefix). The tensors share m's storage.
func (m *Model) Tensors() []Tensor {
	bs := append(m.Client.tensors(), m.Server.tensors()...)
	ts := make([]Tensor, len(bs))
	for i, b := range bs {
		ts[i] = Tensor{Name: b.name, Shape: b.shape, Data: *b.data}
	}
	return ts
}

// checkpointNames maps the canonical tensor names onto those of one
// checkpoint, which may lack the "bert." prefix and may call LayerNorm
// parameters gamma and beta (older TensorFlow conversions).
type checkpointNames struct {
	st     *SafetensorsFile
	prefix string // "bert." or ""
}

// newCheckpointNames detects the naming convention of st.
func newCheckpointNames(st *SafetensorsFile) checkpointNames {
	probe := "embeddings.word_embeddings.weight"
	if _, ok := st.Info(bertPrefix + probe); !ok {
		if _, ok := st.Info(probe); ok {
			return checkpointNames{st: st, prefix: ""}
		}
	}
	return checkpointNames{st: st, prefix: bertPrefix}
}

// resolve returns the name under which st stores the canonical tensor name.
func (cn checkpointNames) resolve(name string) (string, bool) {
	if strings.HasPrefix(name, bertPrefix) {
		name = cn.prefix + strings.TrimPrefix(name, bertPrefix)
	}
	if _, ok := cn.st.Info(name); ok {
		return name, true
	}
	for _, alt := range [][2]string{{"LayerNorm.weight", "LayerNorm.gamma"}, {"LayerNorm.bias", "LayerNorm.beta"}} {
		if strings.HasSuffix(name, alt[0]) {
			old := strings.TrimSuffix(name, alt[0]) + alt[1]
			if _, ok := cn.st.Info(old); ok {
				return old, true
			}
		}
	}
	return name, false
}

// load reads every bound tensor from the checkpoint into its weight,
// checking names, shapes and values.
func (cn checkpointNames) load(bs []binding) error {
	for _, b := range bs {
		name, ok := cn.resolve(b.name)
		if !ok {
			return fmt.Errorf("tensor %q is missing from %s", name, WeightsFile)
		}
		info, _ := cn.st.Info(name)
		if !equalShapes(info.Shape, b.shape) {
			return fmt.Errorf("tensor %q has shape %v, want %v", name, info.Shape, b.shape)
		}
		t, err := cn.st.Tensor(name)
		if err != nil {
			return err
		}
		for i, v := range t.Data {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return fmt.Errorf("tensor %q holds %v at index %d", name, v, i)
			}
		}
		*b.data = t.Data
		if b.mat != nil {
			b.mat.Rows, b.mat.Cols = b.shape[0], b.shape[1]
		}
	}
	return nil
}

// checkNoExtraLayers fails if the checkpoint holds an encoder layer beyond
// the configuration's num_hidden_layers, a sign of a mismatched config.json.
func (cn checkpointNames) checkNoExtraLayers(numLayers int) error {
	extra := bertPrefix + "encoder.layer." + strconv.Itoa(numLayers) + "."
	if name, _ := cn.resolve(extra + "attention.self.query.weight"); cn.has(name) {
		return fmt.Errorf("checkpoint holds tensor %q but config num_hidden_layers is %d", name, numLayers)
	}
	return nil
}

// has reports whether the checkpoint holds a tensor called name.
func (cn checkpointNames) has(name string) bool {
	_, ok := cn.st.Info(name)
	return ok
}

// equalShapes reports whether a and b are the same shape.
func equalShapes(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
