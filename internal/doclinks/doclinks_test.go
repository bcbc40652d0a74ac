package doclinks

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode"
)

// root is the repository root, relative to this package's directory.
const root = "../.."

// documents returns the Markdown files checked, relative to root.
func documents(t *testing.T) []string {
	t.Helper()
	docs, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	files := []string{"README.md", "mpcbridge/README.md", "cuda/README.md"}
	for _, d := range docs {
		rel, err := filepath.Rel(root, d)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, filepath.ToSlash(rel))
	}
	return files
}

// linkRE matches an inline link or image: [text](target) or
// [text](target "title"), capturing the target.
var linkRE = regexp.MustCompile(`!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)`)

// codeSpanRE matches an inline code span.
var codeSpanRE = regexp.MustCompile("`+[^`]*`+")

// line is one line of prose (outside fenced code) with its number.
type line struct {
	n    int
	text string
}

// parse returns a Markdown file's prose lines, inline code removed, and the
// anchors of its headings as GitHub makes them.
func parse(path string) ([]line, map[string]bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	var lines []line
	anchors := map[string]bool{}
	seen := map[string]int{}
	fence := ""
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for n := 1; sc.Scan(); n++ {
		s := sc.Text()
		trim := strings.TrimSpace(s)
		if fence != "" {
			if strings.HasPrefix(trim, fence) {
				fence = ""
			}
			continue
		}
		if strings.HasPrefix(trim, "```") || strings.HasPrefix(trim, "~~~") {
			fence = trim[:3]
			continue
		}
		if strings.HasPrefix(s, "    ") && strings.TrimSpace(s) != "" && !strings.HasPrefix(trim, "-") && !strings.HasPrefix(trim, "|") {
			// An indented code block (or a list continuation; links in
			// those are rare enough here to skip).
			if len(lines) == 0 || strings.TrimSpace(lines[len(lines)-1].text) == "" {
				continue
			}
		}
		if strings.HasPrefix(trim, "#") {
			h := strings.TrimLeft(trim, "#")
			if strings.HasPrefix(h, " ") {
				a := slug(h)
				if k := seen[a]; k > 0 {
					anchors[fmt.Sprintf("%s-%d", a, k)] = true
				} else {
					anchors[a] = true
				}
				seen[a]++
			}
		}
		lines = append(lines, line{n, codeSpanRE.ReplaceAllString(s, "")})
	}
	return lines, anchors, sc.Err()
}

// slug turns a heading's text into its anchor the way GitHub does:
// lower case, links reduced to their text, punctuation other than '-' and
// '_' dropped, spaces turned into '-'.
func slug(h string) string {
	h = regexp.MustCompile(`\[([^\]]*)\]\([^)]*\)`).ReplaceAllString(strings.TrimSpace(h), "$1")
	var b strings.Builder
	for _, r := range strings.ToLower(h) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

func TestSlug(t *testing.T) {
	for h, want := range map[string]string{
		"Dependencies and why":                    "dependencies-and-why",
		"The pruning step (bridge costs)":         "the-pruning-step-bridge-costs",
		"`eval --private`: accuracy":              "eval---private-accuracy",
		"BERT-base, n = 128":                      "bert-base-n--128",
		"1. HE to shares (share/)":                "1-he-to-shares-share",
		"See [the design](design.md) for details": "see-the-design-for-details",
		"Threshold search (CipherPrune's search)": "threshold-search-cipherprunes-search",
	} {
		if got := slug(h); got != want {
			t.Errorf("slug(%q) = %q, want %q", h, got, want)
		}
	}
}

// TestLinks fails on a relative link whose target does not exist in the
// repository, or whose #anchor names no heading of its Markdown target.
func TestLinks(t *testing.T) {
	absRoot, err := filepath.Abs(root)
	if err != nil {
		t.Fatal(err)
	}
	anchorsOf := map[string]map[string]bool{}
	anchors := func(path string) (map[string]bool, error) {
		if a, ok := anchorsOf[path]; ok {
			return a, nil
		}
		_, a, err := parse(path)
		anchorsOf[path] = a
		return a, err
	}
	checked := 0
	for _, doc := range documents(t) {
		path := filepath.Join(absRoot, filepath.FromSlash(doc))
		lines, own, err := parse(path)
		if err != nil {
			t.Errorf("%s: %v", doc, err)
			continue
		}
		anchorsOf[path] = own
		for _, l := range lines {
			for _, m := range linkRE.FindAllStringSubmatch(l.text, -1) {
				target := m[1]
				if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
					continue
				}
				checked++
				file, anchor, _ := strings.Cut(target, "#")
				dest := path
				if file != "" {
					dest = filepath.Join(filepath.Dir(path), filepath.FromSlash(file))
					rel, err := filepath.Rel(absRoot, dest)
					if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
						t.Errorf("%s:%d: link %q leaves the repository", doc, l.n, target)
						continue
					}
					if _, err := os.Stat(dest); err != nil {
						t.Errorf("%s:%d: link %q: no such file %s", doc, l.n, target, filepath.ToSlash(rel))
						continue
					}
				}
				if anchor == "" || !strings.HasSuffix(dest, ".md") {
					continue
				}
				a, err := anchors(dest)
				if err != nil {
					t.Errorf("%s:%d: link %q: %v", doc, l.n, target, err)
					continue
				}
				if !a[anchor] {
					t.Errorf("%s:%d: link %q: no heading with anchor #%s", doc, l.n, target, anchor)
				}
			}
		}
	}
	if checked == 0 {
		t.Error("no relative links found: is the parser broken?")
	}
}

// TestREADMELength keeps the front page short (issue 22: at most about 200
// lines); the rest belongs in docs/.
func TestREADMELength(t *testing.T) {
	p, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(p), "\n"); n > 200 {
		t.Errorf("README.md has %d lines, more than 200: move the detail into docs/", n)
	}
}
