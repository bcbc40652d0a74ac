package models

import (
	"errors"
	"fmt"
	"strings"
	"unicode"

	"github.com/sugarme/tokenizer"
	"github.com/sugarme/tokenizer/model"
	"github.com/sugarme/tokenizer/model/wordpiece"
	"github.com/sugarme/tokenizer/normalizer"
	"github.com/sugarme/tokenizer/pretokenizer"
	"golang.org/x/text/unicode/norm"
)

// MaxVocabFileSize bounds the size of a vocab.txt file that LoadTokenizer
// reads.
const MaxVocabFileSize = 64 << 20

// maxInputCharsPerWord is Hugging Face's limit on the characters of one
// word: longer words become [UNK] without being split.
const maxInputCharsPerWord = 100

// The special tokens of an uncased BERT vocabulary, looked up by string.
const (
	tokenPAD  = "[PAD]"
	tokenUNK  = "[UNK]"
	tokenCLS  = "[CLS]"
	tokenSEP  = "[SEP]"
	tokenMASK = "[MASK]"
)

// Tokenizer is the WordPiece tokenizer of an uncased BERT model. It returns
// the same ids as Hugging Face's BertTokenizer with do_lower_case=True (and
// its fast twin) for the same vocab.txt; testdata/hf_tokenizer_cases.json
// pins this against a transcription of Hugging Face's algorithm.
//
// It uses github.com/sugarme/tokenizer v0.3.0 for the BERT pre-tokenizer
// (whitespace and punctuation splitting) and the WordPiece model (greedy
// longest match with "##" continuations, [UNK] for words over 100
// characters), but not for normalization or vocabulary loading, where that
// version misbehaves:
//   - its BertNormalizer panics on some inputs with control characters
//     ("HELLO\tworld\x01!"), strips marks without decomposing first ("café"
//     becomes [UNK] instead of "cafe"), and keeps non-ASCII spaces such as
//     U+00A0 inside words;
//   - normalizer.IsChinese misses CJK extension A (U+3400-U+4DBF): its range
//     table is not sorted, which unicode.Is requires;
//   - NewWordPieceFromFile reads lines with bufio.Scanner (64 KiB limit, no
//     lone "\r" line ends).
//
// normalizeBERT, isCJK and ParseVocab implement Hugging Face's behaviour
// instead, and the sugarme calls are guarded so that a panic in them becomes
// an error. Like Hugging Face, Tokenizer splits the special tokens ([CLS],
// [SEP], [PAD], [UNK], [MASK], matched case-sensitively) out of the text
// first, so a literal "[SEP]" in the text is the [SEP] token.
//
// One difference remains by construction: Go's unicode tables are Unicode
// 15.0 and Python 3.11's are 14.0, so code points first assigned in 15.0 are
// kept here but dropped (as unassigned, category Cn) by Python.
//
// A Tokenizer is safe for concurrent use.
type Tokenizer struct {
	vocab    []string       // id -> token, as in vocab.txt
	ids      map[string]int // token -> id; a repeated token keeps its last id
	wp       wordpiece.WordPiece
	pre      *pretokenizer.BertPreTokenizer
	cls      int
	sep      int
	pad      int
	unk      int
	specials []string // special tokens present in the vocabulary
	head     int      // with span > 0: body tokens kept from the start at span
	span     int      // body tokens at the model's full length; 0: head-only truncation
}

// Encoding is a tokenized input: ids, token-type ids and the attention mask
// (1 for a real token, 0 for padding), all of the same length.
type Encoding struct {
	IDs           []int
	TypeIDs       []int
	AttentionMask []int
}

// Len returns the number of positions, padding included.
func (e Encoding) Len() int { return len(e.IDs) }

// NewTokenizer returns the tokenizer of the vocabulary whose token of id i
// is vocab[i]. The vocabulary must contain [CLS], [SEP], [PAD] and [UNK].
func NewTokenizer(vocab []string) (*Tokenizer, error) {
	if len(vocab) == 0 {
		return nil, errors.New("cannot NewTokenizer: empty vocabulary")
	}
	t := &Tokenizer{
		vocab: append([]string(nil), vocab...),
		ids:   make(map[string]int, len(vocab)),
		pre:   pretokenizer.NewBertPreTokenizer(),
	}
	for i, tok := range t.vocab {
		t.ids[tok] = i // later duplicates win, as in Hugging Face's load_vocab
	}
	for _, sp := range []struct {
		tok string
		id  *int
	}{{tokenCLS, &t.cls}, {tokenSEP, &t.sep}, {tokenPAD, &t.pad}, {tokenUNK, &t.unk}} {
		id, ok := t.ids[sp.tok]
		if !ok {
			return nil, fmt.Errorf("cannot NewTokenizer: the vocabulary has no %s token", sp.tok)
		}
		*sp.id = id
	}
	for _, tok := range []string{tokenCLS, tokenSEP, tokenPAD, tokenUNK, tokenMASK} {
		if _, ok := t.ids[tok]; ok {
			t.specials = append(t.specials, tok)
		}
	}
	wpVocab := model.Vocab(make(map[string]int, len(t.ids)))
	for tok, id := range t.ids {
		wpVocab[tok] = id
	}
	t.wp = wordpiece.NewWordPieceBuilder().
		Vocab(&wpVocab).
		UnkToken(tokenUNK).
		ContinuingSubwordPrefix("##").
		MaxInputCharsPerWord(maxInputCharsPerWord).
		Build()
	return t, nil
}

// LoadTokenizer reads a vocab.txt file, one token a line (id = line
// number, from 0), and returns its tokenizer. Lines end at "\n", "\r\n" or
// "\r", as Python's universal newlines do.
func LoadTokenizer(path string) (*Tokenizer, error) {
	data, err := readFileLimited(path, MaxVocabFileSize)
	if err != nil {
		return nil, fmt.Errorf("cannot LoadTokenizer: %w", err)
	}
	t, err := NewTokenizer(ParseVocab(string(data)))
	if err != nil {
		return nil, fmt.Errorf("cannot LoadTokenizer %s: %w", path, err)
	}
	return t, nil
}

// ParseVocab splits the contents of a vocab.txt file into its tokens, one a
// line, the way Hugging Face's load_vocab reads it: "\n", "\r\n" and "\r"
// end lines, a final line needs no terminator, and nothing else is
// stripped.
func ParseVocab(data string) []string {
	data = strings.ReplaceAll(data, "\r\n", "\n")
	data = strings.ReplaceAll(data, "\r", "\n")
	data = strings.TrimSuffix(data, "\n")
	if data == "" {
		return nil
	}
	return strings.Split(data, "\n")
}

// Vocab returns a copy of the vocabulary, indexed by id.
func (t *Tokenizer) Vocab() []string { return append([]string(nil), t.vocab...) }

// VocabSize returns the number of lines of the vocabulary; ids are below it.
func (t *Tokenizer) VocabSize() int { return len(t.vocab) }

// TokenID returns the id of token.
func (t *Tokenizer) TokenID(token string) (int, bool) {
	id, ok := t.ids[token]
	return id, ok
}

// Token returns the token of id.
func (t *Tokenizer) Token(id int) (string, bool) {
	if id < 0 || id >= len(t.vocab) {
		return "", false
	}
	return t.vocab[id], true
}

// CLSID returns the id of [CLS].
func (t *Tokenizer) CLSID() int { return t.cls }

// SEPID returns the id of [SEP].
func (t *Tokenizer) SEPID() int { return t.sep }

// PadID returns the id of [PAD].
func (t *Tokenizer) PadID() int { return t.pad }

// UNKID returns the id of [UNK].
func (t *Tokenizer) UNKID() int { return t.unk }

// Tokenize returns the WordPiece tokens of text, without [CLS] and [SEP]
// and without truncation.
func (t *Tokenizer) Tokenize(text string) ([]string, error) {
	ids, err := t.TokenizeIDs(text)
	if err != nil {
		return nil, err
	}
	toks := make([]string, len(ids))
	for i, id := range ids {
		toks[i] = t.vocab[id]
	}
	return toks, nil
}

// TokenizeIDs returns the ids of the WordPiece tokens of text, without
// [CLS] and [SEP] and without truncation.
func (t *Tokenizer) TokenizeIDs(text string) ([]int, error) {
	words, err := t.words(text)
	if err != nil {
		return nil, fmt.Errorf("cannot Tokenize: %w", err)
	}
	var ids []int
	for _, w := range words {
		if w.special {
			ids = append(ids, t.ids[w.text])
			continue
		}
		wids, err := t.wordPiece(w.text)
		if err != nil {
			return nil, fmt.Errorf("cannot Tokenize: %w", err)
		}
		ids = append(ids, wids...)
	}
	return ids, nil
}

// words returns the basic tokens of text, the words WordPiece splits
// further: special tokens, then each remaining chunk normalized and split on
// whitespace and punctuation.
func (t *Tokenizer) words(text string) ([]textChunk, error) {
	var words []textChunk
	for _, chunk := range splitSpecial(text, t.specials) {
		if chunk.special {
			words = append(words, chunk)
			continue
		}
		ws, err := t.preTokenize(normalizeBERT(chunk.text))
		if err != nil {
			return nil, err
		}
		for _, w := range ws {
			words = append(words, textChunk{text: w})
		}
	}
	return words, nil
}

// WithTruncation returns a tokenizer like t that cuts a long input to its
// first tokens and its last ones, as a model with config.json's
// truncation_head_tokens = head and max_position_embeddings = positions
// reads it: at maxLen = positions, Encode keeps head body tokens from the
// start and positions-2-head from the end; at a shorter maxLen the head is
// scaled to head·(maxLen-2)/(positions-2), rounded down. head = 0 gives back
// the default (the first tokens only). t itself is unchanged.
func (t *Tokenizer) WithTruncation(head, positions int) (*Tokenizer, error) {
	if positions < 2 || head < 0 || head > positions-2 {
		return nil, fmt.Errorf("cannot WithTruncation: head %d, positions %d: want 0 <= head <= positions-2", head, positions)
	}
	c := *t
	c.head, c.span = head, positions-2
	if head == 0 {
		c.span = 0
	}
	return &c, nil
}

// Encode returns [CLS] tokens [SEP] for text, with the tokens truncated so
// that the whole has at most maxLen ids (maxLen >= 2), all of token type 0
// and attention 1: at the end, or in the middle for a tokenizer made by
// WithTruncation. It does not pad; see Pad and EncodePadded.
func (t *Tokenizer) Encode(text string, maxLen int) (Encoding, error) {
	if maxLen < 2 {
		return Encoding{}, fmt.Errorf("cannot Encode: maxLen is %d, want at least 2 for [CLS] and [SEP]", maxLen)
	}
	toks, err := t.TokenizeIDs(text)
	if err != nil {
		return Encoding{}, err
	}
	if span := maxLen - 2; len(toks) > span {
		head := span
		if t.span > 0 {
			head = min(t.head*span/t.span, span)
		}
		toks = append(toks[:head:head], toks[len(toks)-(span-head):]...)
	}
	ids := make([]int, 0, len(toks)+2)
	ids = append(ids, t.cls)
	ids = append(ids, toks...)
	ids = append(ids, t.sep)
	mask := make([]int, len(ids))
	for i := range mask {
		mask[i] = 1
	}
	return Encoding{IDs: ids, TypeIDs: make([]int, len(ids)), AttentionMask: mask}, nil
}

// Pad returns e padded at the end to n positions with [PAD], token type 0
// and attention 0. It fails if e is longer than n.
func (t *Tokenizer) Pad(e Encoding, n int) (Encoding, error) {
	if len(e.TypeIDs) != len(e.IDs) || len(e.AttentionMask) != len(e.IDs) {
		return Encoding{}, fmt.Errorf("cannot Pad: encoding has %d ids, %d type ids and %d mask entries",
			len(e.IDs), len(e.TypeIDs), len(e.AttentionMask))
	}
	if len(e.IDs) > n {
		return Encoding{}, fmt.Errorf("cannot Pad: encoding has %d ids, more than n = %d", len(e.IDs), n)
	}
	out := Encoding{
		IDs:           make([]int, n),
		TypeIDs:       make([]int, n),
		AttentionMask: make([]int, n),
	}
	copy(out.IDs, e.IDs)
	copy(out.TypeIDs, e.TypeIDs)
	copy(out.AttentionMask, e.AttentionMask)
	for i := len(e.IDs); i < n; i++ {
		out.IDs[i] = t.pad
	}
	return out, nil
}

// EncodePadded returns the encoding of text truncated to n ids and padded to
// exactly n, the fixed-length input of a private inference.
func (t *Tokenizer) EncodePadded(text string, n int) (Encoding, error) {
	e, err := t.Encode(text, n)
	if err != nil {
		return Encoding{}, err
	}
	return t.Pad(e, n)
}

// preTokenize splits normalized text into words with sugarme's BERT
// pre-tokenizer: on whitespace, and around every punctuation character.
func (t *Tokenizer) preTokenize(text string) (words []string, err error) {
	if strings.TrimSpace(text) == "" {
		return nil, nil
	}
	defer func() {
		if r := recover(); r != nil {
			words, err = nil, fmt.Errorf("pre-tokenizer failed on %q: %v", text, r)
		}
	}()
	pt, err := t.pre.PreTokenize(tokenizer.NewPreTokenizedString(text))
	if err != nil {
		return nil, err
	}
	for _, s := range pt.GetSplits(normalizer.NormalizedTarget, tokenizer.Byte) {
		words = append(words, s.Value)
	}
	return words, nil
}

// wordPiece returns the ids of one pre-tokenized word, from sugarme's
// WordPiece model.
func (t *Tokenizer) wordPiece(word string) (ids []int, err error) {
	defer func() {
		if r := recover(); r != nil {
			ids, err = nil, fmt.Errorf("WordPiece failed on %q: %v", word, r)
		}
	}()
	toks, err := t.wp.Tokenize(word)
	if err != nil {
		return nil, err
	}
	ids = make([]int, len(toks))
	for i, tok := range toks {
		ids[i] = tok.Id
	}
	return ids, nil
}

// textChunk is a piece of the input text: a special token, or text to
// tokenize.
type textChunk struct {
	text    string
	special bool
}

// splitSpecial splits text around every occurrence of the special tokens,
// scanning left to right, as Hugging Face's added-token trie does. The
// special tokens are matched exactly (case-sensitively); none is a prefix
// of another.
func splitSpecial(text string, specials []string) []textChunk {
	var chunks []textChunk
	start := 0
	for i := 0; i < len(text); {
		if text[i] != '[' {
			i++
			continue
		}
		matched := ""
		for _, sp := range specials {
			if strings.HasPrefix(text[i:], sp) {
				matched = sp
				break
			}
		}
		if matched == "" {
			i++
			continue
		}
		if start < i {
			chunks = append(chunks, textChunk{text: text[start:i]})
		}
		chunks = append(chunks, textChunk{text: matched, special: true})
		i += len(matched)
		start = i
	}
	if start < len(text) {
		chunks = append(chunks, textChunk{text: text[start:]})
	}
	return chunks
}

// normalizeBERT applies the normalization of Hugging Face's uncased
// BertTokenizer to text that holds no special token, in its order:
// lowercase each character (BertTokenizer.tokenize does this one character
// at a time, so no final-sigma rule applies), drop NUL, U+FFFD and control
// characters (Unicode category C except tab, newline and carriage return,
// unassigned code points included), turn every whitespace character into a
// space, put spaces around CJK ideographs, NFC, then NFD and drop
// non-spacing marks (strip accents). Invalid UTF-8 bytes decode to U+FFFD
// and are dropped.
func normalizeBERT(text string) string {
	var b strings.Builder
	b.Grow(len(text))
	for _, r := range text {
		r = unicode.ToLower(r)
		switch {
		case r == 0 || r == unicode.ReplacementChar || isBERTControl(r):
			// dropped
		case isBERTWhitespace(r):
			b.WriteByte(' ')
		case isCJK(r):
			b.WriteByte(' ')
			b.WriteRune(r)
			b.WriteByte(' ')
		default:
			b.WriteRune(r)
		}
	}
	// BasicTokenizer: NFC, then per word lowercase (a no-op by now, kept for
	// fidelity) and strip accents: NFD and drop non-spacing marks.
	s := norm.NFD.String(strings.Map(unicode.ToLower, norm.NFC.String(b.String())))
	b.Reset()
	for _, r := range s {
		if !unicode.Is(unicode.Mn, r) {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// cjkRanges are the code point ranges Hugging Face's BasicTokenizer treats
// as CJK ideographs and surrounds with spaces: the CJK Unified Ideographs
// block, its extensions A to E and the compatibility ideographs. (sugarme's
// normalizer.IsChinese misses extension A because its range table is not
// sorted, so it is not used.)
var cjkRanges = [][2]rune{
	{0x3400, 0x4DBF}, {0x4E00, 0x9FFF}, {0xF900, 0xFAFF}, {0x20000, 0x2A6DF}, {0x2A700, 0x2B73F},
	{0x2B740, 0x2B81F}, {0x2B820, 0x2CEAF}, {0x2F800, 0x2FA1F},
}

// isCJK reports whether r is in cjkRanges.
func isCJK(r rune) bool {
	for _, rg := range cjkRanges {
		if r >= rg[0] && r <= rg[1] {
			return true
		}
	}
	return false
}

// isBERTControl reports whether Hugging Face's _is_control holds for r:
// Unicode category C (Cc, Cf, Co, Cs or unassigned), except tab, newline
// and carriage return.
func isBERTControl(r rune) bool {
	switch r {
	case '\t', '\n', '\r':
		return false
	}
	if unicode.Is(unicode.C, r) {
		return true
	}
	return !unicode.In(r, unicode.L, unicode.M, unicode.N, unicode.P, unicode.S, unicode.Z)
}

// isBERTWhitespace reports whether r separates words: Hugging Face's
// _is_whitespace (space, tab, newline, carriage return, category Zs) and the
// line and paragraph separators (Zl, Zp), which survive its clean-up and
// are then split on by Python's str.split.
func isBERTWhitespace(r rune) bool {
	switch r {
	case ' ', '\t', '\n', '\r':
		return true
	}
	return unicode.In(r, unicode.Zs, unicode.Zl, unicode.Zp)
}
