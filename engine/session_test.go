package engine

import (
	"context"
	"errors"
	"math"
	"net"
	"slices"
	"strings"
	"testing"

	"github.com/cipherprune/cipherprune/models/approx"
	"github.com/cipherprune/cipherprune/mpcbridge/elementwise"
	"github.com/cipherprune/cipherprune/mpcbridge/wire"
)

// serveOne serves one connection with a server of m (cfg on
// InsecureElementwise11) and returns its address and ServeConn's error.
func serveOne(t *testing.T, m *Model, cfg ServerConfig) (addr string, served <-chan error) {
	t.Helper()
	return serveOneWith(t, m, cfg, nil)
}

// serveOneWith is serveOne with setup, if not nil, applied to the server
// before it serves.
func serveOneWith(t *testing.T, m *Model, cfg ServerConfig, setup func(*Server)) (addr string, served <-chan error) {
	t.Helper()
	cfg.Preset, cfg.AllowInsecure = elementwise.InsecureElementwise11, true
	srv, err := NewServer(m, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if setup != nil {
		setup(srv)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		defer ln.Close()
		nc, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		done <- srv.ServeConn(context.Background(), nc)
	}()
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().String(), done
}

// openSession opens a session of c to addr.
func openSession(t *testing.T, c *Client, addr string) *Session {
	t.Helper()
	s, err := c.NewSession(testCtx(t), dial(t, addr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// sessionTexts are three texts of different lengths, one padded to 32.
var sessionTexts = []string{
	"The food was great and the staff were friendly.",
	"Terrible service, I will never come back.",
	"The food was great, the staff were friendly and quick, and the prices were fair for such a lovely evening.",
}

// TestSessionKeysOnce runs three inferences on one connection and the same
// three each on its own: the labels and counts are the same, the session's
// first inference sends the keys and the other two none, and the session
// sends the one-shot inferences' bytes less two key uploads and two
// handshakes (1,655,840 B of keys at InsecureElementwise11). The server's ServeConn returns nil after Close.
func TestSessionKeysOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("six private inferences")
	}
	m := loadShipped(t)
	c := testClient(t, m, ClientConfig{})
	var single []*Result
	for _, text := range sessionTexts {
		addr, served := serveOne(t, m, ServerConfig{Workers: 2})
		res, err := c.Infer(testCtx(t), dial(t, addr), text)
		if err != nil {
			t.Fatal(err)
		}
		if err := <-served; err != nil {
			t.Fatalf("one-shot ServeConn: %v", err)
		}
		single = append(single, res)
	}
	addr, served := serveOne(t, m, ServerConfig{Workers: 2})
	s := openSession(t, c, addr)
	var sent, oneShotSent int64
	for i, text := range sessionTexts {
		res, err := s.Infer(testCtx(t), text)
		if err != nil {
			t.Fatalf("inference %d: %v", i, err)
		}
		one := single[i]
		t.Logf("inference %d: n=%d, label %s; session: keys %d B, sent %d B, received %d B, %d rounds; one-shot: keys %d B, sent %d B, received %d B, %d rounds",
			i, res.Report.Length, res.LabelName, res.Report.KeyBytes, res.Report.BytesSent, res.Report.BytesReceived, res.Report.Rounds,
			one.Report.KeyBytes, one.Report.BytesSent, one.Report.BytesReceived, one.Report.Rounds)
		if res.Label != one.Label || res.Report.Length != one.Report.Length {
			t.Errorf("inference %d: label %d at n=%d, one-shot %d at n=%d", i, res.Label, res.Report.Length, one.Label, one.Report.Length)
		}
		for l, lr := range res.Report.Layers {
			if o := one.Report.Layers[l]; lr.In != o.In || lr.Kept != o.Kept || lr.High != o.High {
				t.Errorf("inference %d, layer %d: counts %+v, one-shot %+v", i, l, lr, o)
			}
		}
		wantKeys := int64(0)
		if i == 0 {
			wantKeys = one.Report.KeyBytes
		}
		if one.Report.KeyBytes == 0 || res.Report.KeyBytes != wantKeys {
			t.Errorf("inference %d: keys %d B, want %d (one-shot %d)", i, res.Report.KeyBytes, wantKeys, one.Report.KeyBytes)
		}
		// With the same counts the same messages: the later inferences
		// save the keys and the handshake (under 1 KiB), nothing else.
		saved, least, most := one.Report.BytesSent-res.Report.BytesSent, one.Report.KeyBytes, one.Report.KeyBytes+1024
		if i == 0 {
			least, most = 0, 0
		}
		if saved < least || saved > most {
			t.Errorf("inference %d: sent %d B, the one-shot %d B: %d B saved, want [%d, %d]", i, res.Report.BytesSent, one.Report.BytesSent, saved, least, most)
		}
		sent += res.Report.BytesSent
		oneShotSent += one.Report.BytesSent
	}
	if total := s.Stats().BytesSent; total != sent {
		t.Errorf("session sent %d B, its inferences %d B", total, sent)
	}
	t.Logf("three inferences: session sent %d B, one-shot %d B (difference %d B, keys %d B each)", sent, oneShotSent, oneShotSent-sent, single[0].Report.KeyBytes)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-served; err != nil {
		t.Errorf("ServeConn after Close: %v", err)
	}
	if _, err := s.Infer(testCtx(t), "good"); !errors.Is(err, ErrSessionClosed) {
		t.Errorf("Infer after Close: %v, want ErrSessionClosed", err)
	}
}

// TestSessionEnds: a session the client leaves without closing after an
// inference, or that asks for other options in its second inference, ends
// with the reason on both sides; a failed session refuses further
// inferences.
func TestSessionEnds(t *testing.T) {
	if testing.Short() {
		t.Skip("private inferences")
	}
	m := loadShipped(t)
	for _, tc := range []struct {
		name string
		// second, if set, is the client of the second inference.
		second *Client
		want   string // in ServeConn's error and the client's
	}{
		{"client leaves", nil, "the client left after 1 inferences without closing the session"},
		{"other hide length", testClient(t, m, ClientConfig{HideLength: 4}), "the session's options are fixed by its first request"},
		{"other opening", testClient(t, m, ClientConfig{OpenLogits: true}), "label only true, hide length 0) and this one asks for pruning true, degree reduction true, label only false"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, served := serveOne(t, m, ServerConfig{AllowOpenLogits: true})
			s := openSession(t, testClient(t, m, ClientConfig{}), addr)
			if _, err := s.Infer(testCtx(t), sessionTexts[1]); err != nil {
				t.Fatal(err)
			}
			if tc.second == nil {
				s.conn.NetConn().Close()
			} else {
				s.c = tc.second
				_, err := s.Infer(testCtx(t), sessionTexts[1])
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("second inference: %v, want %q", err, tc.want)
				}
				if _, again := s.Infer(testCtx(t), sessionTexts[1]); again == nil || !strings.Contains(again.Error(), "the session failed earlier") {
					t.Errorf("third inference: %v, want the earlier failure", again)
				}
			}
			if err := <-served; err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ServeConn: %v, want %q", err, tc.want)
			}
		})
	}
}

// TestSessionFirstMessage: a session may close before any inference; any
// message but a request or a well-formed close is refused.
func TestSessionFirstMessage(t *testing.T) {
	m := loadShipped(t)
	for _, tc := range []struct {
		name    string
		typ     wire.Type
		payload []byte
		want    string // in ServeConn's error; empty: nil
	}{
		{"close", MsgClose, closeMessage(), ""},
		{"malformed close", MsgClose, []byte{msgVersion, 0}, "close message of 2 bytes"},
		{"key first", MsgPublicKey, []byte{0}, "engine.PublicKey(0x0403) where a session request or the session's close is due"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, served := serveOne(t, m, ServerConfig{})
			conn := rawClient(t, m, addr)
			if err := conn.Send(testCtx(t), tc.typ, tc.payload); err != nil {
				t.Fatal(err)
			}
			err := <-served
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("ServeConn: %v, want %q", err, tc.want)
			}
		})
	}
}

// TestLaterAccept: after a session's first answer, the client accepts a
// later one that differs in n alone.
func TestLaterAccept(t *testing.T) {
	m := loadShipped(t)
	c := testClient(t, m, ClientConfig{})
	prunes := []bool{true, false}
	first := testAccept(c.request(16), prunes)
	first.request.reduce = true
	for _, tc := range []struct {
		name   string
		change func(a *sessionAccept)
		ok     bool
	}{
		{"other n", func(a *sessionAccept) { a.request.length = 64 }, true},
		{"other output bound", func(a *sessionAccept) { a.logBoundOut++ }, false},
		{"other exp bound", func(a *sessionAccept) { a.sumsLogBound++ }, false},
		{"other level", func(a *sessionAccept) {
			a.levels = testAccept(a.request, prunes).levels
			a.levels[approx.Exp][approx.Low]++
		}, false},
		{"one recipe fewer", func(a *sessionAccept) { a.oneRecipe = a.oneRecipe[:1] }, false},
		{"other pruning layers", func(a *sessionAccept) { a.prunes = []bool{true, true} }, false},
		{"degree reduction off", func(a *sessionAccept) { a.request.reduce = false }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			later := first
			later.oneRecipe = slices.Clone(first.oneRecipe)
			tc.change(&later)
			ci := &clientInference{c: c, s: &Session{c: c, keys: &clientKeys{opening: first}}}
			err := ci.checkAccept(c.request(later.request.length), later)
			if tc.ok != (err == nil) || err != nil && !errors.Is(err, ErrMalformed) {
				t.Errorf("checkAccept: %v, want ok %v", err, tc.ok)
			}
		})
	}
}

// TestLastLayerCLSOnly checks the last layer on the CLS row alone against
// the same inference with every row of it (ServerConfig.AllRowsLastLayer,
// announced to the client): the same label and logits within the
// encryption's noise (3e-5 apart here), the same counts, and fewer bytes.
// A broken CLS-only stage moves the logits beyond the tolerance: with the
// last row as the query instead of CLS they were 2.3e-2 apart.
func TestLastLayerCLSOnly(t *testing.T) {
	if testing.Short() {
		t.Skip("private inferences")
	}
	m := loadShipped(t)
	const text = "The food was great and the staff were friendly."
	var res [2]*Result
	for i, all := range []bool{false, true} {
		addr, _ := startServer(t, m, ServerConfig{Workers: 2, AllowOpenLogits: true, AllRowsLastLayer: all})
		c := testClient(t, m, ClientConfig{OpenLogits: true})
		r, err := c.Infer(testCtx(t), dial(t, addr), text)
		if err != nil {
			t.Fatalf("all rows %v: %v", all, err)
		}
		res[i] = r
	}
	cls, all := res[0], res[1]
	sent := func(r *Result) int64 { return r.Report.BytesSent + r.Report.BytesReceived }
	t.Logf("CLS only: logits %v, %d bytes, %d rounds; every row: logits %v, %d bytes, %d rounds",
		cls.Logits, sent(cls), cls.Report.Rounds, all.Logits, sent(all), all.Report.Rounds)
	if cls.Label != all.Label || len(cls.Logits) != len(all.Logits) {
		t.Fatalf("labels %d and %d, logits %v and %v", cls.Label, all.Label, cls.Logits, all.Logits)
	}
	for k := range cls.Logits {
		if d := math.Abs(cls.Logits[k] - all.Logits[k]); d > 2e-3 {
			t.Errorf("logit %d: %v against %v", k, cls.Logits[k], all.Logits[k])
		}
	}
	for l, lr := range cls.Report.Layers {
		if o := all.Report.Layers[l]; lr.In != o.In || lr.Kept != o.Kept {
			t.Errorf("layer %d: counts %+v, every row %+v", l, lr, o)
		}
	}
	if sent(cls) >= sent(all) {
		t.Errorf("CLS only moved %d bytes, every row %d", sent(cls), sent(all))
	}
}
