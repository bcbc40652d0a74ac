package kernels

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/tuneinsight/lattigo/v5/ring"
)

var flagUpdateKAT = flag.Bool("kernels.update-kat", false, "regenerate testdata/ntt_kat.json from Lattigo")

const katFile = "ntt_kat.json"

// katVector is one known answer: a polynomial modulo one prime and its
// transforms as Lattigo v5.0.7 computes them.
type katVector struct {
	LogN     int      `json:"logN"`
	Modulus  uint64   `json:"modulus"`
	Input    []uint64 `json:"input"`
	NTT      []uint64 `json:"ntt"`
	NTTLazy  []uint64 `json:"nttLazy"`
	INTT     []uint64 `json:"intt"`
	INTTLazy []uint64 `json:"inttLazy"`
}

type katSet struct {
	Comment string      `json:"comment"`
	Vectors []katVector `json:"vectors"`
}

// lattigoKAT computes the vectors with Lattigo for small rings and a 30-,
// 46- and 61-bit prime; the input is fixed by a seeded PCG.
func lattigoKAT(t *testing.T) katSet {
	set := katSet{Comment: "NTT known answers from github.com/tuneinsight/lattigo/v5 v5.0.7 ring.Ring.{NTT,NTTLazy,INTT,INTTLazy}; " +
		"regenerate with: go test ./kernels -run TestNTTKnownAnswers -kernels.update-kat"}
	rng := rand.New(rand.NewPCG(2024, 7))
	for _, logN := range []int{4, 5, 6} {
		for _, bits := range []uint64{30, 46, 61} {
			g := ring.NewNTTFriendlyPrimesGenerator(bits, 2<<logN)
			q, err := g.NextAlternatingPrime()
			if err != nil {
				t.Fatal(err)
			}
			v := katVector{LogN: logN, Modulus: q}
			r, err := ring.NewRing(1<<logN, []uint64{q})
			if err != nil {
				t.Fatal(err)
			}
			in := r.NewPoly()
			for j := range in.Coeffs[0] {
				in.Coeffs[0][j] = rng.Uint64N(q)
			}
			v.Input = slices.Clone(in.Coeffs[0])
			out := r.NewPoly()
			for _, f := range []struct {
				tr  func(a, b ring.Poly)
				dst *[]uint64
			}{{r.NTT, &v.NTT}, {r.NTTLazy, &v.NTTLazy}, {r.INTT, &v.INTT}, {r.INTTLazy, &v.INTTLazy}} {
				f.tr(in, out)
				*f.dst = slices.Clone(out.Coeffs[0])
			}
			set.Vectors = append(set.Vectors, v)
		}
	}
	return set
}

// TestNTTKnownAnswers checks every CPU variant against the committed known
// answers, and that Lattigo still produces them.
func TestNTTKnownAnswers(t *testing.T) {
	path := filepath.Join("testdata", katFile)
	fromLattigo := lattigoKAT(t)
	if *flagUpdateKAT {
		data, err := json.MarshalIndent(fromLattigo, "", " ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var set katSet
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&set); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if len(set.Vectors) == 0 {
		t.Fatalf("%s: no vectors", path)
	}
	for i, v := range set.Vectors {
		if i >= len(fromLattigo.Vectors) || !equalKAT(v, fromLattigo.Vectors[i]) {
			t.Fatalf("vector %d (logN=%d q=%d): Lattigo no longer produces the committed answer", i, v.LogN, v.Modulus)
		}
		r, err := ring.NewRing(1<<v.LogN, []uint64{v.Modulus})
		if err != nil {
			t.Fatal(err)
		}
		mod := &moduliOf(r)[0]
		for _, variant := range []Variant{VariantGeneric, VariantUnrolled} {
			c := &CPU{variant: variant, workers: 1}
			n := 1 << v.LogN
			for _, f := range []struct {
				name string
				run  func(z, x []uint64)
				want []uint64
			}{
				{"NTT", func(z, x []uint64) { c.ntt1(z, x, mod) }, v.NTT},
				{"NTTLazy", func(z, x []uint64) { c.nttLazy1(z, x, mod) }, v.NTTLazy},
				{"INTT", func(z, x []uint64) { c.intt1(z, x, mod, false) }, v.INTT},
				{"INTTLazy", func(z, x []uint64) { c.intt1(z, x, mod, true) }, v.INTTLazy},
			} {
				t.Run(fmt.Sprintf("%s/logN=%d/q=%d/%s", f.name, v.LogN, v.Modulus, variant), func(t *testing.T) {
					got := make([]uint64, n)
					f.run(got, v.Input)
					if !slices.Equal(got, f.want) {
						t.Fatalf("got %v\nwant %v", got, f.want)
					}
				})
			}
		}
	}
}

func equalKAT(a, b katVector) bool {
	return a.LogN == b.LogN && a.Modulus == b.Modulus && slices.Equal(a.Input, b.Input) &&
		slices.Equal(a.NTT, b.NTT) && slices.Equal(a.NTTLazy, b.NTTLazy) &&
		slices.Equal(a.INTT, b.INTT) && slices.Equal(a.INTTLazy, b.INTTLazy)
}
