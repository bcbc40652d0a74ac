package models

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// testTokenizer loads testdata/vocab.txt.
func testTokenizer(t testing.TB) *Tokenizer {
	t.Helper()
	tok, err := LoadTokenizer(filepath.Join("testdata", "vocab.txt"))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestTokenizerHFReference compares the basic tokens and the ids with those
// of Hugging Face's BertTokenizer algorithm (testdata/hf_reference_tokenizer.py)
// on hand-picked and random texts: control and format characters, Unicode
// spaces, accents precomposed and combining, CJK, punctuation of many
// scripts, special tokens inside the text, over-long words.
func TestTokenizerHFReference(t *testing.T) {
	tok := testTokenizer(t)
	var fixture struct {
		Cases []struct {
			Text  string   `json:"text"`
			Words []string `json:"words"`
			IDs   []int    `json:"ids"`
		} `json:"cases"`
	}
	readJSON(t, filepath.Join("testdata", "hf_tokenizer_cases.json"), &fixture)
	if len(fixture.Cases) < 500 {
		t.Fatalf("fixture has %d cases", len(fixture.Cases))
	}
	for i, c := range fixture.Cases {
		words, err := tok.words(c.Text)
		if err != nil {
			t.Fatalf("case %d %+q: %v", i, c.Text, err)
		}
		got := make([]string, len(words))
		for k, w := range words {
			got[k] = w.text
		}
		ids, err := tok.TokenizeIDs(c.Text)
		if err != nil {
			t.Fatalf("case %d %+q: %v", i, c.Text, err)
		}
		if !slices.Equal(got, c.Words) || !slices.Equal(ids, c.IDs) {
			t.Errorf("case %d %+q:\n got words %+q ids %v\nwant words %+q ids %v", i, c.Text, got, ids, c.Words, c.IDs)
		}
	}
}

func TestTokenize(t *testing.T) {
	tok := testTokenizer(t)
	tests := []struct {
		name string
		text string
		want []string
	}{
		{"punctuation", "Hello, world!", []string{"hello", ",", "world", "!"}},
		{"word pieces", "Unbelievable playing", []string{"un", "##believ", "##able", "play", "##ing"}},
		{"precomposed accent", "CAFÉ", []string{"cafe"}},
		{"combining accent", "cafe\u0301", []string{"cafe"}},
		{"no-break space", "foo\u00a0bar", []string{"foo", "bar"}},
		{"ideographic space", "foo\u3000bar", []string{"foo", "bar"}},
		{"control removed", "HELLO\x01 world\x7f", []string{"hello", "world"}},
		{"zero width joins", "foo\u200bbar", []string{"[UNK]"}},
		{"cjk split", "the中国film", []string{"the", "中", "国", "film"}},
		{"apostrophe", "don't", []string{"don", "'", "t"}},
		{"unknown word", "zebra", []string{"[UNK]"}},
		{"special token in text", "hello[SEP]world", []string{"hello", "[SEP]", "world"}},
		{"lowercase special is text", "[sep]", []string{"[UNK]", "[UNK]", "[UNK]"}},
		{"101 characters", strings.Repeat("a", 101), []string{"[UNK]"}},
		{"invalid UTF-8", "good\xffmovie", []string{"[UNK]"}},
		{"only spaces", " \t\n ", []string{}},
		{"empty", "", []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tok.Tokenize(tt.text)
			if err != nil {
				t.Fatal(err)
			}
			if got == nil {
				got = []string{}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("Tokenize(%+q) = %q, want %q", tt.text, got, tt.want)
			}
		})
	}
}

func TestEncode(t *testing.T) {
	tok := testTokenizer(t)
	cls, sep, pad := tok.CLSID(), tok.SEPID(), tok.PadID()
	good, _ := tok.TokenID("good")
	movie, _ := tok.TokenID("movie")
	tests := []struct {
		name     string
		text     string
		maxLen   int
		padTo    int // 0: no padding
		wantIDs  []int
		wantMask []int
		wantErr  string
	}{
		{"fits", "good movie", 8, 0, []int{cls, good, movie, sep}, []int{1, 1, 1, 1}, ""},
		{"exact fit", "good movie", 4, 0, []int{cls, good, movie, sep}, []int{1, 1, 1, 1}, ""},
		{"truncated", "good movie good", 4, 0, []int{cls, good, movie, sep}, []int{1, 1, 1, 1}, ""},
		{"only specials", "good", 2, 0, []int{cls, sep}, []int{1, 1}, ""},
		{"empty text", "", 5, 5, []int{cls, sep, pad, pad, pad}, []int{1, 1, 0, 0, 0}, ""},
		{"padded", "good movie", 6, 6, []int{cls, good, movie, sep, pad, pad}, []int{1, 1, 1, 1, 0, 0}, ""},
		{"max too small", "good", 1, 0, nil, nil, "maxLen is 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var enc Encoding
			var err error
			if tt.padTo > 0 {
				enc, err = tok.EncodePadded(tt.text, tt.padTo)
			} else {
				enc, err = tok.Encode(tt.text, tt.maxLen)
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(enc.IDs, tt.wantIDs) || !slices.Equal(enc.AttentionMask, tt.wantMask) ||
				len(enc.TypeIDs) != len(enc.IDs) || enc.Len() != len(tt.wantIDs) {
				t.Errorf("got %+v, want ids %v mask %v", enc, tt.wantIDs, tt.wantMask)
			}
		})
	}
	long, _ := tok.Encode("good movie good movie", 10)
	if _, err := tok.Pad(long, 3); err == nil || !strings.Contains(err.Error(), "more than n = 3") {
		t.Errorf("Pad to a shorter length: error %v", err)
	}
	if _, err := tok.Pad(Encoding{IDs: []int{1}}, 3); err == nil {
		t.Error("Pad of an inconsistent encoding succeeded")
	}
}

// TestEncodeHeadTail checks the head+tail truncation of WithTruncation
// against hand-cut id lists, at the model's length and at shorter ones.
func TestEncodeHeadTail(t *testing.T) {
	plain := testTokenizer(t)
	var words []string
	var body []int
	for _, w := range []string{"good", "movie", "bad", "the", "a", "good", "bad", "movie", "the", "a"} {
		id, ok := plain.TokenID(w)
		if !ok {
			t.Fatalf("testdata vocabulary lacks %q", w)
		}
		words = append(words, w)
		body = append(body, id)
	}
	text := strings.Join(words, " ")
	cls, sep := plain.CLSID(), plain.SEPID()
	wrap := func(ids ...[]int) []int {
		out := []int{cls}
		for _, s := range ids {
			out = append(out, s...)
		}
		return append(out, sep)
	}
	tests := []struct {
		name            string
		head, positions int
		maxLen          int
		want            []int
	}{
		{"fits: nothing cut", 2, 8, 12, wrap(body)},
		{"head 2 of 6", 2, 8, 8, wrap(body[:2], body[6:])},
		{"head 0 is head-only", 0, 8, 8, wrap(body[:6])},
		{"head is the span", 6, 8, 8, wrap(body[:6])},
		{"tail mostly", 1, 8, 8, wrap(body[:1], body[5:])},
		{"shorter length scales the head", 4, 10, 6, wrap(body[:2], body[8:])},
		{"scaled head rounds down", 3, 10, 6, wrap(body[:1], body[7:])},
		{"only specials", 2, 8, 2, wrap()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := plain.WithTruncation(tt.head, tt.positions)
			if err != nil {
				t.Fatal(err)
			}
			enc, err := tok.Encode(text, tt.maxLen)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(enc.IDs, tt.want) || len(enc.AttentionMask) != len(tt.want) {
				t.Errorf("ids %v, want %v", enc.IDs, tt.want)
			}
		})
	}
	if enc, _ := plain.Encode(text, 8); !slices.Equal(enc.IDs, wrap(body[:6])) {
		t.Errorf("WithTruncation changed its receiver: %v", enc.IDs)
	}
	for _, bad := range [][2]int{{-1, 8}, {7, 8}, {0, 1}} {
		if _, err := plain.WithTruncation(bad[0], bad[1]); err == nil || !strings.HasPrefix(err.Error(), "cannot WithTruncation") {
			t.Errorf("WithTruncation(%d, %d): error %v", bad[0], bad[1], err)
		}
	}
}

func TestParseVocab(t *testing.T) {
	tests := []struct {
		name string
		data string
		want []string
	}{
		{"unix", "a\nb\n", []string{"a", "b"}},
		{"no final newline", "a\nb", []string{"a", "b"}},
		{"crlf", "a\r\nb\r\n", []string{"a", "b"}},
		{"old mac", "a\rb", []string{"a", "b"}},
		{"blank line kept", "a\n\nb\n", []string{"a", "", "b"}},
		{"spaces kept", " a \n", []string{" a "}},
		{"empty", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ParseVocab(tt.data); !slices.Equal(got, tt.want) {
				t.Errorf("ParseVocab(%q) = %q, want %q", tt.data, got, tt.want)
			}
		})
	}
}

func TestNewTokenizer(t *testing.T) {
	tests := []struct {
		name    string
		vocab   []string
		wantErr string
	}{
		{"minimal", []string{"[PAD]", "[UNK]", "[CLS]", "[SEP]"}, ""},
		{"other order", []string{"a", "[SEP]", "[CLS]", "[UNK]", "[PAD]"}, ""},
		{"empty", nil, "empty vocabulary"},
		{"no cls", []string{"[PAD]", "[UNK]", "[SEP]"}, "no [CLS]"},
		{"no unk", []string{"[PAD]", "[CLS]", "[SEP]"}, "no [UNK]"},
		{"no pad", []string{"[UNK]", "[CLS]", "[SEP]"}, "no [PAD]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := NewTokenizer(tt.vocab)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, sp := range []struct {
				tok string
				id  int
			}{{"[CLS]", tok.CLSID()}, {"[SEP]", tok.SEPID()}, {"[PAD]", tok.PadID()}, {"[UNK]", tok.UNKID()}} {
				if got, _ := tok.Token(sp.id); got != sp.tok {
					t.Errorf("id of %s is %d, which is %q", sp.tok, sp.id, got)
				}
			}
		})
	}
}

func TestLoadTokenizer(t *testing.T) {
	dir := t.TempDir()
	crlf := filepath.Join(dir, "crlf.txt")
	if err := os.WriteFile(crlf, []byte("[PAD]\r\n[UNK]\r\n[CLS]\r\n[SEP]\r\ngood\r\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tok, err := LoadTokenizer(crlf)
	if err != nil {
		t.Fatal(err)
	}
	if id, ok := tok.TokenID("good"); !ok || id != 4 || tok.VocabSize() != 5 {
		t.Errorf("good has id %d (%v), vocabulary size %d", id, ok, tok.VocabSize())
	}
	if _, ok := tok.Token(5); ok {
		t.Error("Token(5) found a token beyond the vocabulary")
	}
	if v := tok.Vocab(); len(v) != 5 || v[4] != "good" {
		t.Errorf("Vocab() = %q", v)
	}
	if _, err := LoadTokenizer(filepath.Join(dir, "missing.txt")); err == nil || !strings.HasPrefix(err.Error(), "cannot LoadTokenizer") {
		t.Errorf("missing file: error %v", err)
	}
}

// FuzzTokenize checks that any text tokenizes without error into ids of the
// vocabulary, and encodes to at most maxLen ids framed by [CLS] and [SEP].
func FuzzTokenize(f *testing.F) {
	tok := testTokenizer(f)
	for _, s := range []string{"Hello, world!", "café\u00a0中国 [SEP] x\x00\x01", "\xff\xfe", strings.Repeat("ab", 80)} {
		f.Add(s, 8)
	}
	f.Fuzz(func(t *testing.T, text string, maxLen int) {
		maxLen = 2 + (maxLen&0xff)%64
		ids, err := tok.TokenizeIDs(text)
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range ids {
			if id < 0 || id >= tok.VocabSize() {
				t.Fatalf("id %d outside the vocabulary", id)
			}
		}
		if strings.TrimSpace(normalizeBERT(text)) != "" && len(ids) == 0 {
			t.Fatalf("%+q gave no tokens", text)
		}
		enc, err := tok.EncodePadded(text, maxLen)
		if err != nil {
			t.Fatal(err)
		}
		if enc.Len() != maxLen || enc.IDs[0] != tok.CLSID() {
			t.Fatalf("encoding %v", enc.IDs)
		}
		real := 0
		for _, m := range enc.AttentionMask {
			real += m
		}
		if enc.IDs[real-1] != tok.SEPID() || real != min(len(ids)+2, maxLen) {
			t.Fatalf("encoding %v with %d real ids for %d tokens", enc.IDs, real, len(ids))
		}
	})
}
