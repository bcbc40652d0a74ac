package engine

import (
	"context"
	"fmt"
	"math"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/cipherprune/cipherprune/models"
	"github.com/cipherprune/cipherprune/mpcbridge/elementwise"
	"github.com/cipherprune/cipherprune/mpcbridge/prunestep"
	"github.com/cipherprune/cipherprune/prune"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// shippedModel is the shipped sentiment model.
var shippedModel = filepath.Join("..", "models", "trained", "sentiment-tiny")

var (
	modelOnce sync.Once
	modelVal  *Model
	modelErr  error
)

func loadShipped(t testing.TB) *Model {
	t.Helper()
	modelOnce.Do(func() { modelVal, modelErr = LoadModel(shippedModel) })
	if modelErr != nil {
		t.Fatalf("shipped model required: %v", modelErr)
	}
	return modelVal
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// startServer serves m on a loopback TCP listener until the test ends.
func startServer(t testing.TB, m *Model, cfg ServerConfig) (addr string, logs func() []string) {
	t.Helper()
	if cfg.Preset == "" {
		cfg.Preset, cfg.AllowInsecure = elementwise.InsecureElementwise11, true
	}
	var mu sync.Mutex
	var lines []string
	cfg.Logf = func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		lines = append(lines, fmt.Sprintf(format, args...))
	}
	srv, err := NewServer(m, cfg)
	if err != nil {
		t.Fatal(err)
	}
	addr, stop, err := srv.ServeLocal(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return addr, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), lines...)
	}
}

func dial(t testing.TB, addr string) net.Conn {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return nc
}

func testClient(t testing.TB, m *Model, cfg ClientConfig) *Client {
	t.Helper()
	if cfg.Preset == "" {
		cfg.Preset, cfg.AllowInsecure = elementwise.InsecureElementwise11, true
	}
	c, err := NewClient(m.Client, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// reference runs the plaintext approximate forward with the decisions the
// encrypted inference makes.
func reference(t testing.TB, m *Model, enc models.Encoding, r Reductions) []float64 {
	t.Helper()
	x0, err := m.Client.Embed(enc.IDs, enc.TypeIDs)
	if err != nil {
		t.Fatal(err)
	}
	rules := Rules(m.Thresholds, m.Config().NumLayers(), r)
	want, err := m.Server.Forward(x0, enc.AttentionMask, &models.ForwardOptions{Nonlinear: m.Approx.Clone(), Schedule: ReferenceSchedule(rules)})
	if err != nil {
		t.Fatal(err)
	}
	return want
}

// TestInferLoopback runs private inferences of the shipped model over
// loopback TCP, with and without the reductions, and compares the logits
// with the plaintext approximate forward making the same decisions.
func TestInferLoopback(t *testing.T) {
	if testing.Short() {
		t.Skip("whole private inferences")
	}
	m := loadShipped(t)
	addr, logs := startServer(t, m, ServerConfig{Workers: 2, AllowOpenLogits: true})
	for _, tc := range []struct {
		name string
		text string
		cfg  ClientConfig
	}{
		{"pruned", "The food was great and the staff were friendly.", ClientConfig{OpenLogits: true}},
		{"unpruned", "Terrible service, I will never come back.", ClientConfig{NoPruning: true, OpenLogits: true}},
		// 25 tokens padded to 64: the padding is masked until the first
		// pruning step drops it.
		{"padded", "The food was great, the staff were friendly and quick, and the prices were fair for such a lovely evening.", ClientConfig{Length: 64, OpenLogits: true}},
		// The default: only the label is opened, by a garbled argmax of
		// the logits' shares.
		{"label only", "Terrible service, I will never come back.", ClientConfig{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var events []Progress
			tc.cfg.Progress = func(p Progress) { events = append(events, p) }
			c := testClient(t, m, tc.cfg)
			res, err := c.Infer(testCtx(t), dial(t, addr), tc.text)
			if err != nil {
				t.Fatalf("Infer: %v\nserver: %q", err, logs())
			}
			want := reference(t, m, res.Encoding, Reductions{Prune: !tc.cfg.NoPruning, Reduce: !tc.cfg.NoDegreeReduction})
			worst := 0.0
			if !tc.cfg.OpenLogits {
				if res.Logits != nil {
					t.Errorf("default opening: logits %v opened", res.Logits)
				}
			} else {
				for k := range want {
					worst = math.Max(worst, math.Abs(res.Logits[k]-want[k]))
				}
			}
			t.Logf("%s: label %s, logits %.4f, approximate %.4f, max diff %.2e; %d tokens padded to %d; layers %+v; %.1f s, %d B sent (keys %d B), %d B received, %d rounds",
				tc.name, res.LabelName, res.Logits, want, worst, res.Report.Tokens, res.Report.Length, res.Report.Layers, res.Report.Seconds, res.Report.BytesSent, res.Report.KeyBytes, res.Report.BytesReceived, res.Report.Rounds)
			if worst > 1e-2 {
				t.Errorf("logits differ from the approximate forward by %g > 1e-2", worst)
			}
			if argmax(want) != res.Label {
				t.Errorf("label %d, approximate forward %d", res.Label, argmax(want))
			}
			pruned := false
			for l, lr := range res.Report.Layers {
				pruned = pruned || lr.Pruned
				if lr.Kept > lr.In || lr.High > lr.Kept || lr.Kept < 1 {
					t.Errorf("layer %d: inconsistent counts %+v", l, lr)
				}
			}
			if pruned == tc.cfg.NoPruning {
				t.Errorf("pruned = %v with NoPruning = %v", pruned, tc.cfg.NoPruning)
			}
			// Padding receives no attention: the first pruning step drops it.
			if l0 := res.Report.Layers[0]; l0.Pruned && l0.Kept > res.Report.Tokens {
				t.Errorf("layer 0 kept %d rows of %d real tokens", l0.Kept, res.Report.Tokens)
			}
			if len(events) == 0 || events[len(events)-1].Phase != PhaseOutput {
				t.Errorf("progress events %+v", events)
			}
		})
	}
}

func argmax(v []float64) int {
	best := 0
	for i := range v {
		if v[i] > v[best] {
			best = i
		}
	}
	return best
}

// TestMinThetaAgrees: the plaintext schedule's θ_min (prune.Schedule, which
// eval --prune and the search's golden files use) is the encrypted step's.
func TestMinThetaAgrees(t *testing.T) {
	if prune.MinTheta != prunestep.MinTheta {
		t.Errorf("prune.MinTheta = %g, prunestep.MinTheta = %g", prune.MinTheta, prunestep.MinTheta)
	}
}
