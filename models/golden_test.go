package models

import (
	"encoding/json"
	"errors"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// goldenTolerance is the largest absolute logit difference allowed between
// the Go forward and PyTorch's float64 forward on the same weights.
const goldenTolerance = 1e-5

// trainedDir holds the models the training code ships (models/trained).
const trainedDir = "trained"

// requiredTrained lists the trained models whose absence fails the test.
var requiredTrained = []string{"sentiment-tiny", "spam-mini"}

// expectedTrained lists the trained models checked when present.
var expectedTrained = []string{"sentiment-tiny", "spam-mini"}

// goldenExample is one input of a golden file with PyTorch's logits.
type goldenExample struct {
	Text          string    `json:"text"`
	InputIDs      []int     `json:"input_ids"`
	AttentionMask []int     `json:"attention_mask"`
	Logits        []float64 `json:"logits"`
}

// goldenFile is a golden.json: the training code writes its examples under
// "examples"; "inputs" is accepted too.
type goldenFile struct {
	Model    string          `json:"model"`
	N        int             `json:"n"`
	Inputs   []goldenExample `json:"inputs"`
	Examples []goldenExample `json:"examples"`
}

// tokenizerGolden is a tokenizer_golden.json: unpadded encodings of texts.
type tokenizerGolden struct {
	MaxLen     int `json:"max_len"`
	HeadTokens int `json:"head_tokens"` // the config's truncation_head_tokens; 0: head-only
	Cases      []struct {
		Text     string   `json:"text"`
		Tokens   []string `json:"tokens"`
		InputIDs []int    `json:"input_ids"`
	} `json:"cases"`
}

// TestGolden checks every trained model against the golden logits PyTorch
// computed: the tokenizer must reproduce the input ids from the text and the
// exact forward the logits. It fails when models/trained/sentiment-tiny is
// missing.
func TestGolden(t *testing.T) {
	dirs := map[string]bool{}
	for _, name := range expectedTrained {
		dirs[name] = true
	}
	entries, err := os.ReadDir(trainedDir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	for _, e := range entries {
		if _, err := os.Stat(filepath.Join(trainedDir, e.Name(), "golden.json")); e.IsDir() && err == nil {
			dirs[e.Name()] = true
		}
	}
	names := make([]string, 0, len(dirs))
	for name := range dirs {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(trainedDir, name)
			if _, err := os.Stat(filepath.Join(dir, "golden.json")); err != nil {
				if slices.Contains(requiredTrained, name) {
					t.Fatalf("trained model %s is required: %v (train it with the training code)", dir, err)
				}
				t.Skipf("trained model %s not present: %v", dir, err)
			}
			checkGoldenDir(t, dir)
		})
	}
}

// TestGoldenTinyTorch checks the forward and tokenizer against a tiny random
// model written and evaluated by the project's PyTorch code
// (testdata/make_tiny_torch.py), with F16 weights and padded inputs.
func TestGoldenTinyTorch(t *testing.T) {
	checkGoldenDir(t, filepath.Join("testdata", "tiny-torch"))
}

// checkGoldenDir loads the model in dir and checks it against dir's
// golden.json and, if present, tokenizer_golden.json.
func checkGoldenDir(t *testing.T, dir string) {
	t.Helper()
	m, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	var g goldenFile
	readJSON(t, filepath.Join(dir, "golden.json"), &g)
	examples := append(g.Inputs, g.Examples...)
	if len(examples) == 0 {
		t.Fatalf("%s/golden.json has no inputs", dir)
	}
	if g.N < 2 || g.N > m.Config().MaxPositions() {
		t.Fatalf("%s/golden.json: n = %d, want 2 to %d", dir, g.N, m.Config().MaxPositions())
	}
	tok := m.Client.Tokenizer
	worst := 0.0
	for i, ex := range examples {
		enc, err := tok.Encode(ex.Text, g.N)
		if err != nil {
			t.Fatalf("example %d: %v", i, err)
		}
		if len(ex.InputIDs) == g.N { // the golden ids are padded
			if enc, err = tok.Pad(enc, g.N); err != nil {
				t.Fatalf("example %d: %v", i, err)
			}
		}
		if !slices.Equal(enc.IDs, ex.InputIDs) {
			t.Errorf("example %d (%.60q): tokenizer ids\n got %v\nwant %v", i, ex.Text, enc.IDs, ex.InputIDs)
		}
		if len(ex.InputIDs) == g.N && !slices.Equal(enc.AttentionMask, ex.AttentionMask) {
			t.Errorf("example %d: attention mask\n got %v\nwant %v", i, enc.AttentionMask, ex.AttentionMask)
		}
		logits, err := m.Logits(ex.InputIDs, ex.AttentionMask)
		if err != nil {
			t.Fatalf("example %d: %v", i, err)
		}
		if len(logits) != len(ex.Logits) {
			t.Fatalf("example %d: %d logits, golden has %d", i, len(logits), len(ex.Logits))
		}
		for j := range logits {
			d := math.Abs(logits[j] - ex.Logits[j])
			worst = max(worst, d)
			if !(d <= goldenTolerance) {
				t.Errorf("example %d: logit %d = %.9f, golden %.9f (diff %.2e > %.0e)", i, j, logits[j], ex.Logits[j], d, goldenTolerance)
			}
		}
	}
	t.Logf("%s: %d examples, max |logit diff| = %.2e", dir, len(examples), worst)

	path := filepath.Join(dir, "tokenizer_golden.json")
	if _, err := os.Stat(path); err != nil {
		return
	}
	var tg tokenizerGolden
	readJSON(t, path, &tg)
	if tg.HeadTokens != m.Config().TruncationHead() {
		t.Fatalf("%s: head_tokens %d, config.json's truncation_head_tokens %d", path, tg.HeadTokens, m.Config().TruncationHead())
	}
	for i, c := range tg.Cases {
		enc, err := tok.Encode(c.Text, tg.MaxLen)
		if err != nil {
			t.Fatalf("tokenizer case %d: %v", i, err)
		}
		if !slices.Equal(enc.IDs, c.InputIDs) {
			toks, _ := tok.Tokenize(c.Text)
			t.Errorf("tokenizer case %d (%.60q): ids\n got %v\nwant %v\n got tokens %q\nwant tokens %q",
				i, c.Text, enc.IDs, c.InputIDs, toks, c.Tokens)
		}
	}
}

// readJSON decodes the JSON file at path into v.
func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
