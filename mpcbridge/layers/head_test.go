package layers

import (
	"math/rand/v2"
	"testing"

	"github.com/cipherprune/cipherprune/mpcbridge/elementwise"
	"github.com/cipherprune/cipherprune/mpcbridge/share"
)

// TestHead runs sentiment-tiny's pooler, tanh and classifier on shares of
// the CLS row of the approximate forward's last layer and compares the
// logits with models.ServerModel.Head.
func TestHead(t *testing.T) {
	tn := loadTiny(t)
	tc := newTestContext(t, tinyLiteral(t, tn, elementwise.InsecureElementwise11), tn.reg)
	f := tc.p.FracBits()
	srvModel := tn.model.Server
	last := len(srvModel.Layers) - 1
	y, err := srvModel.FeedForwardBlock(last, tn.hidden(t, last, testRows), nil, tn.ap)
	if err != nil {
		t.Fatal(err)
	}
	cls := quantized(y, f).Row(0)
	want, err := srvModel.Head(cls, tn.ap)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := tc.p.PlanHead(len(cls), len(want))
	if err != nil {
		t.Fatal(err)
	}
	w, err := NewHeadWeights(bg(), tc.p, plan, &srvModel.Pooler, &srvModel.Classifier, 2)
	if err != nil {
		t.Fatal(err)
	}
	xa, xb := split(rand.New(rand.NewPCG(11, 12)), cls, f, 87)
	sc, cc := connPair(t)
	srv, cli := tc.parties(t, 2)
	var la, lb share.Vector
	runParties(t, sc, cc, func() (err error) {
		lb, err = srv.Head(bg(), sc, w, xb)
		return err
	}, func() (err error) {
		la, err = cli.Head(bg(), cc, plan, xa)
		return err
	})
	got := open(t, tc.p, la, lb)
	d := maxDiff(got, want)
	t.Logf("logits %.4f, want %.4f: max error %.3g", got, want, d)
	if d > tolerance {
		t.Fatalf("max error %.3g exceeds %g", d, tolerance)
	}
}
