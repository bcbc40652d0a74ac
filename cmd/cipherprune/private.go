package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"strings"
	"time"

	"github.com/cipherprune/cipherprune/engine"
	"github.com/cipherprune/cipherprune/models"
	"github.com/cipherprune/cipherprune/models/dataset"
	"github.com/cipherprune/cipherprune/mpcbridge/elementwise"
)

// defaultModel is the shipped model the private commands use by default.
const defaultModel = "models/trained/sentiment-tiny"

// defaultDemoText is the demo's input when --text is not given.
const defaultDemoText = "The food was delicious and the staff were friendly."

// sessionFlags are the flags the private commands share.
type sessionFlags struct {
	model         string
	preset        string
	allowInsecure bool
	length        int
	noPrune       bool
	noReduce      bool
	openLogits    bool
	hideLength    int
	workers       int
}

// register adds the flags of the parties the command runs: client (the
// padded length, the reductions asked for) and server (the evaluator's
// options).
func (f *sessionFlags) register(fs *flag.FlagSet, client, server bool) {
	fs.StringVar(&f.model, "model", defaultModel, "model directory")
	fs.StringVar(&f.preset, "preset", elementwise.DefaultPreset, "CKKS parameter preset of the polynomials (both parties must use the same)")
	fs.BoolVar(&f.allowInsecure, "allow-insecure", false, "allow an InsecureTest... preset (tests only, NOT secure)")
	if client {
		fs.IntVar(&f.length, "length", 0, "padded input length the server sees (0: smallest power of two >= 16 that fits)")
		fs.BoolVar(&f.noPrune, "no-prune", false, "ask the server not to prune tokens")
		fs.BoolVar(&f.noReduce, "no-reduce", false, "ask the server not to use low-degree polynomials")
		fs.BoolVar(&f.openLogits, "open-logits", false, "open the logits instead of the label alone (they say more of the server's model than its label; the server must allow it)")
		fs.IntVar(&f.hideLength, "hide-length", 0, "hide the text's length: round every pruning step's kept count up to a multiple of this power of two, keeping the best-scoring dropped tokens (padding kept becomes a token of the later layers; 0: off)")
	}
	if !server {
		return
	}
	if !client {
		fs.BoolVar(&f.openLogits, "allow-open-logits", false, "let clients open the logits (infer --open-logits), not only the label: they say more of this server's model than its label")
	}
	fs.IntVar(&f.workers, "workers", 0, "server evaluator goroutines (0: all cores)")
}

func (f *sessionFlags) clientConfig(stderr io.Writer) engine.ClientConfig {
	return engine.ClientConfig{
		Preset:            f.preset,
		AllowInsecure:     f.allowInsecure,
		Length:            f.length,
		NoPruning:         f.noPrune,
		NoDegreeReduction: f.noReduce,
		OpenLogits:        f.openLogits,
		HideLength:        f.hideLength,
		Progress:          progressPrinter(stderr),
	}
}

func (f *sessionFlags) serverConfig(stderr io.Writer, maxSessions int) engine.ServerConfig {
	return engine.ServerConfig{
		Preset:        f.preset,
		AllowInsecure: f.allowInsecure,
		Workers:       f.workers,
		MaxSessions:   maxSessions,
		// demo and eval --private run both parties: --open-logits is both
		// the client's request and the server's consent.
		AllowOpenLogits: f.openLogits,
		Logf: func(format string, args ...any) {
			fmt.Fprintf(stderr, "server: "+format+"\n", args...)
		},
	}
}

// progressPrinter returns a progress function that draws, on w, one line
// per phase and per encoder layer with a bar of the layers done.
func progressPrinter(w io.Writer) func(engine.Progress) {
	const width = 24
	bar := func(done, total int) string {
		k := width * done / max(total, 1)
		return "[" + strings.Repeat("#", k) + strings.Repeat(".", width-k) + "]"
	}
	return func(p engine.Progress) {
		t := p.Elapsed.Seconds()
		switch p.Phase {
		case engine.PhaseKeys:
			fmt.Fprintf(w, "[%6.1fs] generating and sending the keys\n", t)
		case engine.PhaseInput:
			fmt.Fprintf(w, "[%6.1fs] embedding the input (the client's share)\n", t)
		case engine.PhaseLayer:
			fmt.Fprintf(w, "[%6.1fs] layer %d/%d %s private attention...\n", t, p.Layer+1, p.Layers, bar(p.Layer, p.Layers))
		case engine.PhasePrune:
			c := p.Counts
			fmt.Fprintf(w, "[%6.1fs] layer %d/%d %s encrypted pruning: %d of %d tokens kept, %d high-degree; feed-forward...\n",
				t, p.Layer+1, p.Layers, bar(p.Layer, p.Layers), c.Kept, c.In, c.High)
		case engine.PhaseHead:
			fmt.Fprintf(w, "[%6.1fs] layers  %s pooler and classifier...\n", t, bar(p.Layers, p.Layers))
		case engine.PhaseOutput:
			fmt.Fprintf(w, "[%6.1fs] opening the result to the client\n", t)
		}
	}
}

// printReport writes a report's table.
func printReport(w io.Writer, rep engine.Report) {
	fmt.Fprintf(w, "preset %s: %d tokens padded to %d, keys %s\n", rep.Preset, rep.Tokens, rep.Length, mib(rep.KeyBytes))
	if rep.HideLength > 0 {
		fmt.Fprintf(w, "kept counts rounded up to multiples of %d (--hide-length)\n", rep.HideLength)
	}
	fmt.Fprintln(w, "layer  in  kept  high  pruned  seconds  step_s  client_sent  received")
	for l, lr := range rep.Layers {
		fmt.Fprintf(w, "%5d %4d %5d %5d  %-6v %8.2f %7.2f %12s %9s\n", l, lr.In, lr.Kept, lr.High, lr.Pruned, lr.Seconds, lr.StepSeconds, mib(lr.BytesSent), mib(lr.BytesReceived))
	}
	fmt.Fprintf(w, "head: %.2f s\n", rep.HeadSeconds)
	for _, ph := range rep.Phases {
		fmt.Fprintf(w, "phase %-7s %8.2f s\n", ph.Phase, ph.Seconds)
	}
	fmt.Fprintf(w, "client sent %s, received %s, %d rounds, %.1f s in all\n", mib(rep.BytesSent), mib(rep.BytesReceived), rep.Rounds, rep.Seconds)
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// plaintextReference returns the exact model's logits and the approximate
// forward's with the decisions the encrypted run makes (kept counts rounded
// up to multiples of hideLength, 0: not rounded).
func plaintextReference(m *engine.Model, enc models.Encoding, r engine.Reductions, hideLength int) (exact, approx []float64, err error) {
	x0, err := m.Client.Embed(enc.IDs, enc.TypeIDs)
	if err != nil {
		return nil, nil, err
	}
	if exact, err = m.Server.Forward(x0, enc.AttentionMask, nil); err != nil {
		return nil, nil, err
	}
	rules := engine.Rules(m.Thresholds, m.Config().NumLayers(), r)
	sched, err := engine.ReferenceScheduleHiding(rules, hideLength)
	if err != nil {
		return nil, nil, err
	}
	approx, err = m.Server.Forward(x0, enc.AttentionMask, &models.ForwardOptions{Nonlinear: m.Approx.Clone(), Schedule: sched})
	return exact, approx, err
}

func argmaxOf(v []float64) int {
	best := 0
	for i := range v {
		if v[i] > v[best] {
			best = i
		}
	}
	return best
}

// logitDiff formats maxAbsDiff(opened, approx), or "hidden" when the logits
// were not opened.
func logitDiff(opened, approx []float64) string {
	if opened == nil {
		return "hidden"
	}
	return fmt.Sprintf("%.2e", maxAbsDiff(opened, approx))
}

func maxAbsDiff(a, b []float64) float64 {
	d := 0.0
	for i := range a {
		d = math.Max(d, math.Abs(a[i]-b[i]))
	}
	return d
}

// startLocal loads the model, serves it on a loopback port and returns a
// client for it: both parties of a one-process run (demo, eval --private).
// The server has two slots: a finished session's goroutine may still hold
// its slot when the next client connects.
func startLocal(ctx context.Context, sf sessionFlags, cc engine.ClientConfig) (m *engine.Model, cli *engine.Client, addr string, stop func(), err error) {
	if m, err = engine.LoadModel(sf.model); err != nil {
		return nil, nil, "", nil, err
	}
	srv, err := engine.NewServer(m, sf.serverConfig(io.Discard, 2))
	if err != nil {
		return nil, nil, "", nil, err
	}
	if cli, err = engine.NewClient(m.Client, cc); err != nil {
		return nil, nil, "", nil, err
	}
	if addr, stop, err = srv.ServeLocal(ctx); err != nil {
		return nil, nil, "", nil, err
	}
	return m, cli, addr, stop, nil
}

// runDemo starts a server and a client in one process on a loopback TCP
// port and runs one private inference.
func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("demo", stderr)
	var sf sessionFlags
	sf.register(fs, true, true)
	text := fs.String("text", defaultDemoText, "the client's private text")
	if err := fs.Parse(args); err != nil {
		return err
	}
	m, cli, addr, stop, err := startLocal(ctx, sf, sf.clientConfig(stderr))
	if err != nil {
		return err
	}
	defer stop()
	fmt.Fprintf(stderr, "demo: server listening on %s (model %s, preset %s); client text %q\n", addr, sf.model, sf.preset, *text)
	nc, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	res, err := cli.Infer(ctx, nc, *text)
	if err != nil {
		return err
	}
	exact, approx, err := plaintextReference(m, res.Encoding, engine.Reductions{Prune: !sf.noPrune, Reduce: !sf.noReduce}, sf.hideLength)
	if err != nil {
		return err
	}
	printReport(stdout, res.Report)
	names := m.Config().Labels()
	plain := names[argmaxOf(exact)]
	if res.Logits != nil {
		fmt.Fprintf(stdout, "private logits %.4f; plaintext approximate %.4f (same pruning); exact %.4f\n", res.Logits, approx, exact)
	} else {
		fmt.Fprintf(stdout, "private label only (logits hidden; --open-logits opens them); plaintext approximate %.4f (same pruning); exact %.4f\n", approx, exact)
	}
	fmt.Fprintf(stdout, "demo: label=%s plaintext=%s match=%v max_logit_diff=%s seconds=%.1f bytes=%d\n",
		res.LabelName, plain, res.LabelName == plain, logitDiff(res.Logits, approx), res.Report.Seconds, res.Report.BytesSent+res.Report.BytesReceived)
	return nil
}

// texts is a repeatable string flag.
type texts []string

func (t *texts) String() string { return strings.Join(*t, " | ") }

func (t *texts) Set(v string) error {
	*t = append(*t, v)
	return nil
}

// runInfer runs private inferences of one or more texts against a server,
// in one session: the keys are sent once.
func runInfer(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("infer", stderr)
	var sf sessionFlags
	sf.register(fs, true, false)
	connect := fs.String("connect", "127.0.0.1:7878", "server address")
	var txts texts
	fs.Var(&txts, "text", "a private text to classify (repeat it for several: one session, the keys sent once)")
	timeout := fs.Duration("timeout", engine.DefaultSessionTimeout, "give up after this long, all texts together (the server's default limit of one inference; an unpruned BERT-base inference at n=128 takes about 5 minutes on 2 cores)")
	caFile := fs.String("tls-ca", "", "connect over TLS 1.3, trusting the PEM certificates in this file")
	serverName := fs.String("tls-server-name", "", "with --tls-ca, the name the server's certificate must carry (default: the host of --connect)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if len(txts) == 0 {
		return errors.New("infer: --text is required")
	}
	pub, err := engine.LoadPublic(sf.model)
	if err != nil {
		return err
	}
	cli, err := engine.NewClient(pub, sf.clientConfig(stderr))
	if err != nil {
		return err
	}
	dial, err := inferDialer(*connect, *caFile, *serverName)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	ss := &sessions{cli: cli, dial: dial}
	defer ss.Close()
	for _, text := range txts {
		res, err := ss.infer(ctx, text)
		if err != nil {
			return err
		}
		printReport(stdout, res.Report)
		logits := "hidden"
		if res.Logits != nil {
			logits = fmt.Sprintf("%.4f", res.Logits)
		}
		fmt.Fprintf(stdout, "infer: label=%s logits=%s seconds=%.1f bytes=%d\n", res.LabelName, logits, res.Report.Seconds, res.Report.BytesSent+res.Report.BytesReceived)
	}
	return ss.Close()
}

// inferDialer returns infer's dial: TCP to connect, or TLS 1.3 trusting
// the certificates in caFile if it is set.
func inferDialer(connect, caFile, serverName string) (func(context.Context) (net.Conn, error), error) {
	if caFile == "" {
		return func(ctx context.Context) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "tcp", connect)
		}, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("infer: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("infer: no certificate in %s", caFile)
	}
	if serverName == "" {
		if serverName, _, err = net.SplitHostPort(connect); err != nil {
			return nil, fmt.Errorf("infer: %w", err)
		}
	}
	d := &tls.Dialer{Config: &tls.Config{RootCAs: pool, ServerName: serverName, MinVersion: tls.VersionTLS13}}
	return func(ctx context.Context) (net.Conn, error) {
		nc, err := d.DialContext(ctx, "tcp", connect)
		if err != nil {
			return nil, fmt.Errorf("infer: %w", err)
		}
		return nc, nil
	}, nil
}

// sessions runs inferences in one session, opening a new one when the
// last has spent its mask budget (engine.ErrSessionSpent).
type sessions struct {
	cli    *engine.Client
	dial   func(context.Context) (net.Conn, error)
	s      *engine.Session
	opened int
}

// infer runs a private inference of text.
func (ss *sessions) infer(ctx context.Context, text string) (*engine.Result, error) {
	for {
		fresh := ss.s == nil
		if fresh {
			nc, err := ss.dial(ctx)
			if err != nil {
				return nil, err
			}
			if ss.s, err = ss.cli.NewSession(ctx, nc); err != nil {
				return nil, err
			}
			ss.opened++
		}
		res, err := ss.s.Infer(ctx, text)
		if fresh || !errors.Is(err, engine.ErrSessionSpent) {
			return res, err
		}
		if err := ss.Close(); err != nil {
			return nil, err
		}
	}
}

// Close closes the session in use, if any.
func (ss *sessions) Close() error {
	if ss.s == nil {
		return nil
	}
	err := ss.s.Close()
	ss.s = nil
	return err
}

// evalPrivate runs the private inference on every example, in one session
// (a new one only when a session's mask budget is spent) against a server
// in this process over loopback TCP, and compares it with the exact
// model and with the approximate forward making the same decisions.
func evalPrivate(ctx context.Context, sf sessionFlags, exs []dataset.Example, stdout, stderr io.Writer) error {
	cc := sf.clientConfig(io.Discard)
	cc.Truncate = true
	m, cli, addr, stop, err := startLocal(ctx, sf, cc)
	if err != nil {
		return err
	}
	defer stop()
	red := engine.Reductions{Prune: !sf.noPrune, Reduce: !sf.noReduce}
	var exactOK, approxOK, privateOK, agree int
	var worst, seconds float64
	var bytes int64
	layers := m.Config().NumLayers()
	kept, in := make([]int, layers), make([]int, layers)
	start := time.Now()
	ss := &sessions{cli: cli, dial: func(ctx context.Context) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	}}
	defer ss.Close()
	for i, ex := range exs {
		res, err := ss.infer(ctx, ex.Text)
		if err != nil {
			return fmt.Errorf("example %d: %w", i, err)
		}
		exact, approx, err := plaintextReference(m, res.Encoding, red, sf.hideLength)
		if err != nil {
			return fmt.Errorf("example %d: %w", i, err)
		}
		if argmaxOf(exact) == ex.Label {
			exactOK++
		}
		if argmaxOf(approx) == ex.Label {
			approxOK++
		}
		if res.Label == ex.Label {
			privateOK++
		}
		if res.Label == argmaxOf(approx) {
			agree++
		}
		worst = math.Max(worst, maxAbsDiff(res.Logits, approx))
		seconds += res.Report.Seconds
		bytes += res.Report.BytesSent + res.Report.BytesReceived
		for l, lr := range res.Report.Layers {
			kept[l] += lr.Kept
			in[l] += lr.In
		}
		fmt.Fprintf(stderr, "[%6.0fs] %d/%d: label %d, private %d, approximate %d, exact %d, logit diff %s, %d tokens padded to %d, %.1f s\n",
			time.Since(start).Seconds(), i+1, len(exs), ex.Label, res.Label, argmaxOf(approx), argmaxOf(exact), logitDiff(res.Logits, approx), res.Report.Tokens, res.Report.Length, res.Report.Seconds)
	}
	k := float64(len(exs))
	fmt.Fprintf(stdout, "model=%s preset=%s examples=%d prune=%v reduce=%v hide_length=%d sessions=%d mean_seconds=%.1f mean_bytes=%d\n",
		sf.model, sf.preset, len(exs), red.Prune, red.Reduce, sf.hideLength, ss.opened, seconds/k, bytes/int64(len(exs)))
	for l := range kept {
		fmt.Fprintf(stdout, "layer %d: mean rows in=%.2f kept=%.2f\n", l, float64(in[l])/k, float64(kept[l])/k)
	}
	diff := "hidden"
	if sf.openLogits {
		diff = fmt.Sprintf("%.2e", worst)
	}
	fmt.Fprintf(stdout, "accuracy: exact=%.4f approx=%.4f private=%.4f agreement_with_approx=%.4f max_logit_diff=%s\n",
		float64(exactOK)/k, float64(approxOK)/k, float64(privateOK)/k, float64(agree)/k, diff)
	return nil
}
