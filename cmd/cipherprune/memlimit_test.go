package main

import "testing"

func TestGCPercentFor(t *testing.T) {
	for _, c := range []struct {
		live uint64
		want int
	}{
		{0, 100},
		{100 << 20, 100}, // sentiment-tiny's server: the default
		{1 << 30, 100},   // the headroom itself
		{2 << 30, 50},    // grows by a gigabyte
		{10 << 30, 10},   // at the floor
		{12 << 30, 10},   // BERT-base's weights: not below the floor
		{1 << 40, 10},
	} {
		if got := gcPercentFor(c.live); got != c.want {
			t.Errorf("gcPercentFor(%d) = %d, want %d", c.live, got, c.want)
		}
	}
}
