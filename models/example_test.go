package models_test

import (
	"fmt"
	"log"
	"path/filepath"

	"github.com/cipherprune/cipherprune/models"
)

// Example runs one input through a checkpoint the way a private inference
// splits it: the client tokenizes, pads to the public length n and embeds;
// the server runs the encoder, the pooler and the classifier.
func Example() {
	m, err := models.Load(filepath.Join("testdata", "tiny-torch"))
	if err != nil {
		log.Fatal(err)
	}
	const n = 16

	// Client side.
	tok := m.Client.Tokenizer
	words, _ := tok.Tokenize("This movie was NOT good.")
	enc, err := tok.EncodePadded("This movie was NOT good.", n)
	if err != nil {
		log.Fatal(err)
	}
	x0, err := m.Client.Embed(enc.IDs, enc.TypeIDs)
	if err != nil {
		log.Fatal(err)
	}

	// Server side.
	logits, err := m.Server.Forward(x0, enc.AttentionMask, nil)
	if err != nil {
		log.Fatal(err)
	}
	best := 0
	for i := range logits {
		if logits[i] > logits[best] {
			best = i
		}
	}
	fmt.Println(words)
	fmt.Println(enc.IDs)
	fmt.Printf("%.4f -> %s\n", logits, m.Config().Labels()[best])
	// Output:
	// [this movie was not good .]
	// [2 19 25 21 22 23 10 3 0 0 0 0 0 0 0 0]
	// [-0.3976 0.2986 0.6934] -> positive
}

// ExampleSchedule prunes, after every layer's attention, the tokens whose
// importance score is below half the average, as a CipherPrune schedule
// does with learned thresholds, and gives the rest the low degree unless
// their score is above average.
func ExampleSchedule() {
	m, err := models.Load(filepath.Join("testdata", "tiny-torch"))
	if err != nil {
		log.Fatal(err)
	}
	enc, err := m.Client.Tokenizer.EncodePadded("i don't like this film at all, it was bad", 16)
	if err != nil {
		log.Fatal(err)
	}
	sched := models.ScheduleFunc(func(a *models.LayerAttention) (models.Decision, error) {
		scores := a.Importance()
		avg := 1 / float64(len(scores))
		dec := models.Decision{Keep: make([]bool, len(scores)), Degrees: make([]models.Degree, len(scores))}
		kept, low := 0, 0
		for i, s := range scores {
			dec.Keep[i] = i == 0 || s >= avg/2 // CLS is always kept
			if i > 0 && s < avg {
				dec.Degrees[i] = models.DegreeLow
			}
			if dec.Keep[i] {
				kept++
				if dec.Degrees[i] == models.DegreeLow {
					low++
				}
			}
		}
		fmt.Printf("layer %d: %d rows in, %d kept, %d of them low degree\n", a.Layer, len(scores), kept, low)
		return dec, nil
	})
	if _, err := m.Forward(enc, &models.ForwardOptions{Schedule: sched}); err != nil {
		log.Fatal(err)
	}
	// Output:
	// layer 0: 16 rows in, 15 kept, 7 of them low degree
	// layer 1: 15 rows in, 11 kept, 6 of them low degree
}
