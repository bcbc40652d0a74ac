package engine

import (
	"errors"
	"strings"
	"testing"

	"github.com/cipherprune/cipherprune/mpcbridge/layers"
)

// partyMasked returns the counts of masked values of a server's parties,
// by budget (maskCounts order).
func partyMasked(p *layers.Server) maskCounts {
	m := p.Masked()
	return maskCounts{m.Products, m.Sums, m.Scores, m.Context, m.Elementwise}
}

// TestMaskCounts: over a session of two inferences, the server's ledger
// (inferenceMasks of each inference's counts) equals what the parties'
// products counted, and bounds the elementwise coefficients they counted
// by at most one ciphertext per polynomial call (five per layer).
func TestMaskCounts(t *testing.T) {
	if testing.Short() {
		t.Skip("private inferences")
	}
	m := loadShipped(t)
	for _, tc := range []struct {
		name string
		cfg  ClientConfig
	}{
		{"pruned", ClientConfig{}},
		{"unpruned", ClientConfig{NoPruning: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ended := make(chan *serverSession, 1)
			addr, served := serveOneWith(t, m, ServerConfig{}, func(s *Server) {
				s.sessionEnd = func(ss *serverSession) { ended <- ss }
			})
			s := openSession(t, testClient(t, m, tc.cfg), addr)
			texts := sessionTexts[1:]
			for _, text := range texts {
				if _, err := s.Infer(testCtx(t), text); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if err := <-served; err != nil {
				t.Fatal(err)
			}
			ss := <-ended
			got := partyMasked(ss.party)
			if ss.spent != s.spent {
				t.Errorf("ledgers: server %v, client %v", ss.spent, s.spent)
			}
			ew := ss.party.Params().Elementwise().Params().N()
			slack := int64(len(texts) * 5 * m.Config().NumLayers() * ew)
			t.Logf("masked %v, ledger %v (elementwise slack %d of at most %d)", got, ss.spent, ss.spent[4]-got[4], slack)
			for i := range got[:4] {
				if got[i] != ss.spent[i] {
					t.Errorf("%s: masked %d, ledger %d", maskBudgets[i], got[i], ss.spent[i])
				}
			}
			if d := ss.spent[4] - got[4]; d < 0 || d > slack {
				t.Errorf("%s: masked %d, ledger %d: want the ledger at most %d above", maskBudgets[4], got[4], ss.spent[4], slack)
			}
		})
	}
}

// TestSessionBudget: with budgets for two inferences, the third is refused
// before any message of it: by the client, whose session stays open to be
// closed, or else by the server, which ends the session.
func TestSessionBudget(t *testing.T) {
	if testing.Short() {
		t.Skip("private inferences")
	}
	m := loadShipped(t)
	for _, tc := range []struct {
		name   string
		client bool   // the client's budgets are small, else the server's
		want   string // in ServeConn's error; empty: nil
	}{
		{"client refuses", true, ""},
		{"server refuses", false, "inference 3: engine: the session's mask budget is spent: an inference at n = 16"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var two maskCounts
			addr, served := serveOneWith(t, m, ServerConfig{}, func(s *Server) {
				pl, err := newPlan(sessionRequest{}, m.Config(), s.params)
				if err != nil {
					t.Fatal(err)
				}
				worst := inferenceMasks(pl, worstRows(m.Config().NumLayers(), 16))
				two = worst.add(worst)
				if !tc.client {
					s.budgets = two
				}
			})
			s := openSession(t, testClient(t, m, ClientConfig{}), addr)
			for i := range 2 {
				if _, err := s.Infer(testCtx(t), sessionTexts[1]); err != nil {
					t.Fatalf("inference %d: %v", i+1, err)
				}
				if tc.client {
					s.keys.limits = two
				}
			}
			before := s.Stats()
			_, err := s.Infer(testCtx(t), sessionTexts[1])
			if err == nil || !strings.Contains(err.Error(), "the session's mask budget is spent") {
				t.Fatalf("third inference: %v, want the budget spent", err)
			}
			if sent := s.Stats().Sub(before).BytesSent; tc.client != (sent == 0) || sent > 1024 {
				t.Errorf("third inference sent %d B (client refusal %v)", sent, tc.client)
			}
			if tc.client && !errors.Is(err, ErrSessionSpent) {
				t.Errorf("client refusal %v, want ErrSessionSpent", err)
			}
			if err := s.Close(); tc.client && err != nil {
				t.Errorf("Close: %v", err)
			}
			if err := <-served; tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("ServeConn: %v, want %q", err, tc.want)
			}
		})
	}
}
