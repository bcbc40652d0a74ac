package engine

import (
	"errors"
	"math"
	"testing"

	"github.com/cipherprune/cipherprune/models"
)

// TestSessionRequestHideLength checks the hide-length field of a session
// request: it round-trips, and a decoder refuses the flag without a group,
// a group without the flag and a group above MaxHideLength.
func TestSessionRequestHideLength(t *testing.T) {
	for _, g := range []int{0, 2, 8, MaxHideLength} {
		r := sessionRequest{length: 32, prune: true, hideLength: g}
		got, err := decodeSessionRequest(r.marshal())
		if err != nil || got != r {
			t.Errorf("group %d: decoded %+v, %v", g, got, err)
		}
	}
	good := sessionRequest{length: 32, prune: true, hideLength: 8}.marshal()
	for name, edit := range map[string]func(p []byte){
		"flag without group": func(p []byte) { p[2] = 0 },
		"group without flag": func(p []byte) { p[1] &^= flagHideLength },
		"group 1024":         func(p []byte) { p[2] = 10 },
		"reserved byte":      func(p []byte) { p[3] = 1 },
	} {
		p := append([]byte(nil), good...)
		edit(p)
		if _, err := decodeSessionRequest(p); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := NewClient(loadShipped(t).Client, ClientConfig{HideLength: 6}); err == nil {
		t.Error("HideLength 6 accepted")
	}
}

// TestHidingPadding checks that a client with HideLength pads with [SEP]
// (masked like [PAD]) and one without with [PAD].
func TestHidingPadding(t *testing.T) {
	m := loadShipped(t)
	tok := m.Client.Tokenizer
	for _, g := range []int{0, 8} {
		enc, err := testClient(t, m, ClientConfig{HideLength: g}).Encode("Nice place.")
		if err != nil {
			t.Fatal(err)
		}
		want := tok.PadID()
		if g > 0 {
			want = tok.SEPID()
		}
		pads := 0
		for i, mask := range enc.AttentionMask {
			if mask == 0 {
				pads++
				if enc.IDs[i] != want {
					t.Errorf("HideLength %d: padding position %d holds %d, want %d", g, i, enc.IDs[i], want)
				}
			}
		}
		if enc.Len() != MinLength || pads == 0 {
			t.Errorf("HideLength %d: %d positions, %d of them padding", g, enc.Len(), pads)
		}
	}
}

// TestInferHideLength runs private inferences of two texts of 9 and 11
// tokens padded to 32 with HideLength 8: both reveal the same counts (16
// rows kept after layer 0, CLS alone at the high degree), where the plain
// rule keeps 9 and 11 (so the test fails if the option is ignored), and the
// logits equal the plaintext forward with ReferenceScheduleHiding, whose
// kept padding rows are tokens of layer 1 as in the encrypted inference.
func TestInferHideLength(t *testing.T) {
	if testing.Short() {
		t.Skip("whole private inferences")
	}
	m := loadShipped(t)
	addr, logs := startServer(t, m, ServerConfig{Workers: 2, AllowOpenLogits: true})
	rules := Rules(m.Thresholds, m.Config().NumLayers(), Reductions{Prune: true, Reduce: true})
	var counts [][]LayerReport
	for _, text := range []string{"The food was great and cheap.", "Terrible service, I will never come back."} {
		c := testClient(t, m, ClientConfig{Length: 32, HideLength: 8, OpenLogits: true})
		res, err := c.Infer(testCtx(t), dial(t, addr), text)
		if err != nil {
			t.Fatalf("Infer: %v\nserver: %q", err, logs())
		}
		if res.Report.HideLength != 8 {
			t.Errorf("report: hide length %d", res.Report.HideLength)
		}
		x0, err := m.Client.Embed(res.Encoding.IDs, res.Encoding.TypeIDs)
		if err != nil {
			t.Fatal(err)
		}
		// The plain rule tells the two lengths apart.
		plain := &keptCounter{inner: ReferenceSchedule(rules)}
		if _, err := m.Server.Forward(x0, res.Encoding.AttentionMask, &models.ForwardOptions{Nonlinear: m.Approx.Clone(), Schedule: plain}); err != nil {
			t.Fatal(err)
		}
		if plain.kept[0] != res.Report.Tokens {
			t.Errorf("%q: the plain rule keeps %d rows of %d tokens", text, plain.kept[0], res.Report.Tokens)
		}
		hiding, err := ReferenceScheduleHiding(rules, 8)
		if err != nil {
			t.Fatal(err)
		}
		want, err := m.Server.Forward(x0, res.Encoding.AttentionMask, &models.ForwardOptions{Nonlinear: m.Approx.Clone(), Schedule: hiding})
		if err != nil {
			t.Fatal(err)
		}
		worst := 0.0
		for k := range want {
			worst = math.Max(worst, math.Abs(res.Logits[k]-want[k]))
		}
		t.Logf("%q: %d tokens; layers %+v; logits %.4f, reference %.4f (plain rule keeps %d)", text, res.Report.Tokens, res.Report.Layers, res.Logits, want, plain.kept[0])
		if worst > 1e-2 || argmax(want) != res.Label {
			t.Errorf("logits %v, label %d; reference %v", res.Logits, res.Label, want)
		}
		counts = append(counts, res.Report.Layers)
	}
	for l := range counts[0] {
		a, b := counts[0][l], counts[1][l]
		if a.In != b.In || a.Kept != b.Kept || a.High != b.High || a.Pruned && a.Kept%8 != 0 && a.Kept != a.In {
			t.Errorf("layer %d: counts %d/%d/%d and %d/%d/%d, want equal, kept a multiple of 8", l, a.In, a.Kept, a.High, b.In, b.Kept, b.High)
		}
	}
	if !counts[0][0].Pruned || counts[0][0].Kept != 16 {
		t.Errorf("layer 0 kept %d rows, want 16", counts[0][0].Kept)
	}
}

// keptCounter records the rows each decision of inner keeps.
type keptCounter struct {
	inner models.Schedule
	kept  []int
}

func (k *keptCounter) AfterAttention(att *models.LayerAttention) (models.Decision, error) {
	d, err := k.inner.AfterAttention(att)
	n := len(att.Tokens)
	if d.Keep != nil {
		n = 0
		for _, v := range d.Keep {
			if v {
				n++
			}
		}
	}
	k.kept = append(k.kept, n)
	return d, err
}
