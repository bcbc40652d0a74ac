package engine

import (
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"time"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"

	"github.com/cipherprune/cipherprune/ckks"
	"github.com/cipherprune/cipherprune/models"
	"github.com/cipherprune/cipherprune/models/approx"
	"github.com/cipherprune/cipherprune/mpcbridge/elementwise"
	"github.com/cipherprune/cipherprune/mpcbridge/layers"
	"github.com/cipherprune/cipherprune/mpcbridge/prunestep"
	"github.com/cipherprune/cipherprune/mpcbridge/share"
	"github.com/cipherprune/cipherprune/mpcbridge/wire"
)

// ServerConfig configures a Server. The zero value serves one session at a
// time on the default secure preset.
type ServerConfig struct {
	// Preset is the name of the CKKS preset of the calls in slots
	// (elementwise.PresetByName; empty: elementwise.DefaultPreset).
	Preset string
	// AllowInsecure admits an InsecureTest... preset (tests only).
	AllowInsecure bool
	// Workers is the number of evaluator goroutines of a session
	// (0: GOMAXPROCS).
	Workers int
	// MaxSessions bounds the sessions served at once (0: 1). A session is
	// one connection, of any number of inferences: it holds its client's
	// keys (a relinearization key: 7 MB at Elementwise14) from its first
	// inference to its close, and one inference's shares at a time, so this
	// bounds the memory. A client that arrives when every slot is taken is
	// told so in the handshake's place and disconnected.
	MaxSessions int
	// SessionTimeout bounds each inference of a session, from its request
	// to its report, the keys' upload included in the first
	// (0: DefaultSessionTimeout). Between two inferences the server waits
	// at most IdleTimeout for the next request or the session's close.
	SessionTimeout time.Duration
	// HandshakeTimeout bounds a connection's handshake, TLS's included on a
	// TLS listener (0: DefaultHandshakeTimeout). A client that has not
	// completed it by then is disconnected before it can take a session.
	HandshakeTimeout time.Duration
	// IdleTimeout bounds how long the server waits for a client that sends
	// nothing while a message is due, or reads nothing while the server
	// sends (wire.Config.IdleTimeout; 0: DefaultIdleTimeout). It restarts
	// with every byte, so it must only exceed the longest a client computes
	// between two messages. A client found idle is told so and disconnected.
	IdleTimeout time.Duration
	// MaxConns bounds the connections Serve holds open at once, in the
	// handshake or in a session (0: DefaultMaxConns, or MaxSessions if that
	// is more; it may not be less than MaxSessions). At the limit Serve
	// accepts no more until one closes: new clients wait in the listener's
	// backlog, where they cost the server nothing.
	MaxConns int
	// AllRowsLastLayer makes the model's last layer compute every row
	// instead of the CLS row alone, the head's only input: for a model
	// that is the first layers of a deeper one, whose last layer is not
	// the deeper model's (bench's measured prefix). Announced to the
	// client. Off by default.
	AllRowsLastLayer bool
	// AllowOpenLogits lets a client open the logits (ClientConfig.OpenLogits)
	// instead of the label alone. Off by default: the logits themselves
	// say more about the model than its label (and, rounded to 2^-16, the
	// last product's rounding), so a server protecting its model refuses
	// such sessions.
	AllowOpenLogits bool
	// Logf, if not nil, receives one line per session event.
	Logf func(format string, args ...any)
	// Rand is the random source of the bridge's masks (nil: crypto/rand;
	// only tests should set it).
	Rand io.Reader
}

// Server serves private inferences of one model: it holds the model's
// weights (quantized and encoded once, for every session), its
// approximations and thresholds, and runs the server's side of the session
// protocol (see the package documentation) for each client. It is safe for
// concurrent use.
type Server struct {
	model   *Model
	cfg     ServerConfig
	params  layers.Parameters
	weights *modelWeights
	accept  sessionAccept // the fields every session's answer shares
	budgets maskCounts    // a session's budgets of masked values (maskLimits)
	wireCfg wire.Config
	sem     chan struct{} // a slot per session
	conns   chan struct{} // a slot per connection Serve holds open

	// sessionEnd, if set (tests only), sees each session as it ends.
	sessionEnd func(*serverSession)
}

// modelWeights are the model's weights encoded for the plans of every
// session (the blocks depend on the model's shape only).
type modelWeights struct {
	attn []*layers.AttnWeights
	ffn  []*layers.FFNWeights
	head *layers.HeadWeights
}

// NewServer returns a server for model m. It quantizes and encodes the
// weights (seconds to minutes at BERT-base's size).
func NewServer(m *Model, cfg ServerConfig) (*Server, error) {
	if m == nil || m.Model == nil || m.Approx == nil {
		return nil, errors.New("cannot NewServer: incomplete model (use LoadModel)")
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("cannot NewServer: %w", err)
	}
	if m.Thresholds != nil && m.Thresholds.NumLayers() != m.Config().NumLayers() {
		return nil, fmt.Errorf("cannot NewServer: thresholds for %d layers, model has %d", m.Thresholds.NumLayers(), m.Config().NumLayers())
	}
	s := &Server{model: m, cfg: cfg, sem: make(chan struct{}, cfg.MaxSessions), conns: make(chan struct{}, cfg.MaxConns)}
	if err := s.prepare(); err != nil {
		return nil, fmt.Errorf("cannot NewServer: %w", err)
	}
	fp, err := Fingerprint(m.Client)
	if err != nil {
		return nil, fmt.Errorf("cannot NewServer: %w", err)
	}
	s.wireCfg = wire.Config{Role: wire.RoleServer, Version: ProtocolVersion, Params: sessionParams(cfg.Preset, fp), IdleTimeout: cfg.IdleTimeout}
	return s, nil
}

// withDefaults fills cfg's zero fields and checks the limits.
func (cfg ServerConfig) withDefaults() (ServerConfig, error) {
	if cfg.Preset == "" {
		cfg.Preset = elementwise.DefaultPreset
	}
	if cfg.Workers <= 0 {
		cfg.Workers = runtime.GOMAXPROCS(0)
	}
	if cfg.MaxSessions <= 0 {
		cfg.MaxSessions = 1
	}
	if cfg.SessionTimeout <= 0 {
		cfg.SessionTimeout = DefaultSessionTimeout
	}
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	switch {
	case cfg.MaxConns <= 0:
		cfg.MaxConns = max(DefaultMaxConns, cfg.MaxSessions)
	case cfg.MaxConns < cfg.MaxSessions:
		return cfg, fmt.Errorf("MaxConns %d is less than MaxSessions %d", cfg.MaxConns, cfg.MaxSessions)
	}
	if cfg.Rand == nil {
		cfg.Rand = crand.Reader
	}
	return cfg, nil
}

// prepare derives the server's parameters from its model and encodes the
// weights for the plans.
func (s *Server) prepare() error {
	m := s.model
	by, err := modelLogBoundOut(m.Server)
	if err != nil {
		return err
	}
	reg := m.Approx.Registry()
	lit := layersLiteral(s.cfg.Preset, s.cfg.AllowInsecure, by, layers.SumsLogBoundFor(reg), m.Approx.SoftmaxShift())
	if s.params, err = layers.NewParameters(lit, reg); err != nil {
		return err
	}
	pl, err := newPlan(sessionRequest{}, m.Config(), s.params)
	if err != nil {
		return err
	}
	if s.weights, err = encodeWeights(m.Server, pl, s.cfg.Workers); err != nil {
		return err
	}
	s.budgets = maskLimits(s.params)
	lp := s.params.Literal()
	s.accept = sessionAccept{logBoundOut: by, sumsLogBound: lp.SumsLogBound, levels: s.params.PolyLevels(), oneRecipe: lp.OneRecipe, allRowsLast: s.cfg.AllRowsLastLayer}
	return nil
}

// encodeWeights quantizes and encodes every layer's weights and the head's
// for pl.
func encodeWeights(sm *models.ServerModel, pl sessionPlan, workers int) (*modelWeights, error) {
	ctx := context.Background()
	w := &modelWeights{}
	for l := range sm.Layers {
		ly := &sm.Layers[l]
		a, err := layers.NewAttnWeights(ctx, pl.layers, pl.attn, &ly.Query, &ly.Key, &ly.Value, &ly.AttnOutput, &ly.AttnNorm, workers)
		if err != nil {
			return nil, fmt.Errorf("layer %d: %w", l, err)
		}
		f, err := layers.NewFFNWeights(ctx, pl.layers, pl.ffn, &ly.Intermediate, &ly.Output, &ly.OutputNorm, workers)
		if err != nil {
			return nil, fmt.Errorf("layer %d: %w", l, err)
		}
		w.attn, w.ffn = append(w.attn, a), append(w.ffn, f)
	}
	var err error
	if w.head, err = layers.NewHeadWeights(ctx, pl.layers, pl.head, &sm.Pooler, &sm.Classifier, workers); err != nil {
		return nil, fmt.Errorf("head: %w", err)
	}
	return w, nil
}

// Params returns the server's parameters of the layers.
func (s *Server) Params() layers.Parameters { return s.params }

func (s *Server) logf(format string, args ...any) {
	if s.cfg.Logf != nil {
		s.cfg.Logf(format, args...)
	}
}

// serverSession is one session's state on the server: a connection, and
// from its first inference on the client's keys in the server's parties,
// whose counts of masked values span the session.
type serverSession struct {
	s       *Server
	conn    *wire.Conn
	opening *sessionRequest // the first request as the client sent it
	party   *layers.Server
	step    *prunestep.Server
	done    int        // inferences served
	spent   maskCounts // the masked values of the done inferences, bounded (inferenceMasks)
}

func (ss *serverSession) abort(ctx context.Context, reason string) {
	_ = ss.conn.Abort(context.WithoutCancel(ctx), reason)
}

// fail aborts the session with a reason naming what failed, and returns
// err wrapped with it.
func (ss *serverSession) fail(ctx context.Context, what string, err error) error {
	ss.abort(ctx, "server failed: "+what)
	return fmt.Errorf("%s: %w", what, err)
}

// run serves the session's inferences until the client closes it
// (MsgClose: nil) or one fails. It waits for each request within ctx and
// the wire's IdleTimeout, and runs each inference within SessionTimeout.
func (ss *serverSession) run(ctx context.Context) error {
	for {
		req, ok, err := ss.next(ctx)
		if err != nil || !ok {
			return err
		}
		ictx, cancel := context.WithTimeout(ctx, ss.s.cfg.SessionTimeout)
		err = ss.infer(ictx, req)
		cancel()
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
				err = fmt.Errorf("session timeout (%v per inference): %w", ss.s.cfg.SessionTimeout, err)
				ss.abort(ctx, err.Error()) // if the Conn still can
			}
			return fmt.Errorf("inference %d: %w", ss.done+1, err)
		}
		ss.done++
	}
}

// next receives the next inference's request, or the client's MsgClose
// (ok false).
func (ss *serverSession) next(ctx context.Context) (req sessionRequest, ok bool, err error) {
	t, p, err := ss.conn.RecvAny(ctx)
	if err != nil {
		if ss.done > 0 && errors.Is(err, io.EOF) {
			return req, false, fmt.Errorf("the client left after %d inferences without closing the session: %w", ss.done, err)
		}
		return req, false, fmt.Errorf("session request: %w", err)
	}
	switch t {
	case MsgClose:
		if err := decodeClose(p); err != nil {
			ss.abort(ctx, err.Error())
			return req, false, err
		}
		ss.s.logf("session: closed by the client after %d inferences", ss.done)
		return req, false, nil
	case MsgSession:
		if req, err = decodeSessionRequest(p); err != nil {
			ss.abort(ctx, err.Error())
			return req, false, err
		}
		return req, true, nil
	}
	err = fmt.Errorf("%v where a session request or the session's close is due", t)
	ss.abort(ctx, err.Error())
	return req, false, err
}

// infer is the server's side of one inference: the phases of session.go,
// in order, the keys only in the session's first.
func (ss *serverSession) infer(ctx context.Context, req sessionRequest) error {
	pl, err := ss.plan(ctx, &req)
	if err != nil {
		return err
	}
	if ss.party == nil {
		if err := ss.openParties(ctx, pl); err != nil {
			return err
		}
	}
	sd := ss.newSide(pl)
	x := make(share.Vector, req.length*pl.cfg.HiddenSize()) // the server's share of X_0
	t := time.Now()
	logits, err := encoder(ctx, sd, pl, ss.prunes(req), x)
	if err != nil {
		return ss.fail(ctx, "encoder", err)
	}
	if req.labelOnly {
		err = sd.step.RevealLabelShares(ctx, ss.conn, logits)
	} else {
		err = sd.step.RevealShares(ctx, ss.conn, logits)
	}
	if err != nil {
		return fmt.Errorf("output: %w", err)
	}
	sd.rep.head = time.Since(t).Seconds() - sd.layerTotal
	if err := ss.conn.Send(ctx, MsgReport, sd.rep.marshal()); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	ss.spent = ss.spent.add(inferenceMasks(pl, rowsOf(sd.layers)))
	st := ss.conn.Stats()
	ss.s.logf("session: inference %d done, %d bytes sent, %d received, %d rounds in the session", ss.done+1, st.BytesSent, st.BytesReceived, st.Rounds)
	return nil
}

// openParties is phase 2 of the session's first inference: the client's
// keys, and the server's parties that hold them for the session.
func (ss *serverSession) openParties(ctx context.Context, pl sessionPlan) error {
	t0 := time.Now()
	keys, err := ss.receiveKeys(ctx, pl)
	if err != nil {
		return err
	}
	ss.s.logf("session: keys received in %.1f s", time.Since(t0).Seconds())
	s := ss.s
	if ss.party, err = layers.NewServer(s.params, keys, s.cfg.Workers); err != nil {
		return ss.fail(ctx, "parties", err)
	}
	if ss.step, err = prunestep.NewServer(pl.step, s.cfg.Rand); err != nil {
		ss.party = nil
		return ss.fail(ctx, "parties", err)
	}
	return nil
}

// prunes returns the layers that run a pruning step in a session of req.
func (ss *serverSession) prunes(req sessionRequest) []bool {
	rules := ss.rules(req)
	out := make([]bool, len(rules))
	for l, r := range rules {
		out[l] = r.Prune
	}
	return out
}

// rules returns the layers' rules of a session of req.
func (ss *serverSession) rules(req sessionRequest) []prunestep.LayerRule {
	m := ss.s.model
	return Rules(m.Thresholds, m.Config().NumLayers(), Reductions{Prune: req.prune, Reduce: req.reduce})
}

// plan is phase 1: the request, checked (against the session's first
// after that one), and the answer.
func (ss *serverSession) plan(ctx context.Context, req *sessionRequest) (sessionPlan, error) {
	s, conn := ss.s, ss.conn
	var err error
	if ss.opening == nil {
		first := *req
		ss.opening = &first
	} else if !req.sameOptions(*ss.opening) {
		o := ss.opening
		err = fmt.Errorf("the session's options are fixed by its first request (pruning %v, degree reduction %v, label only %v, hide length %d) and this one asks for pruning %v, degree reduction %v, label only %v, hide length %d: open a new session",
			o.prune, o.reduce, o.labelOnly, o.hideLength, req.prune, req.reduce, req.labelOnly, req.hideLength)
	}
	if err == nil {
		err = s.checkRequest(req)
	}
	if err != nil {
		ss.abort(ctx, err.Error())
		return sessionPlan{}, err
	}
	pl, err := newPlan(*req, s.model.Config(), s.params)
	pl.allRowsLast = s.cfg.AllRowsLastLayer
	if err != nil {
		return pl, ss.fail(ctx, "plan", err)
	}
	if err := checkBudget(pl, req.length, ss.spent, s.budgets); err != nil {
		ss.abort(ctx, err.Error())
		return pl, err
	}
	acc := s.accept // the fields every answer shares
	acc.request, acc.prunes = *req, ss.prunes(*req)
	if err := conn.Send(ctx, MsgAccept, acc.marshal()); err != nil {
		return pl, fmt.Errorf("accept: %w", err)
	}
	s.logf("session: inference %d: n=%d prune=%v reduce=%v label_only=%v hide_length=%d", ss.done+1, req.length, req.prune, req.reduce, req.labelOnly, req.hideLength)
	return pl, nil
}

// checkRequest refuses what the server cannot or will not serve, and
// turns off the reductions its model has no thresholds for.
func (s *Server) checkRequest(req *sessionRequest) error {
	cfg := s.model.Config()
	if maxN := planRows(cfg); req.length > maxN {
		return fmt.Errorf("padded length %d exceeds the model's limit of %d tokens", req.length, maxN)
	}
	if k := cfg.NumLabels(); req.labelOnly && k > prunestep.MaxLabels {
		return fmt.Errorf("label-only opening holds at most %d labels, this model has %d", prunestep.MaxLabels, k)
	}
	if !req.labelOnly && !s.cfg.AllowOpenLogits {
		return errors.New("this server opens the label only, not the logits (it does not allow OpenLogits)")
	}
	if s.model.Thresholds == nil {
		req.prune = false
	}
	if !req.prune {
		req.reduce = false
	}
	return nil
}

// receiveKeys is phase 2: the client's keys, each checked against the
// session's parameters.
func (ss *serverSession) receiveKeys(ctx context.Context, pl sessionPlan) (layers.ServerKeys, error) {
	var keys layers.ServerKeys
	kr, err := ckks.NewKeyReceiver(pl.layers.Elementwise().Params())
	if err != nil {
		return keys, err
	}
	if err := ss.recvKey(ctx, MsgPublicKey, "public key", kr.SetPublicKey); err != nil {
		return keys, err
	}
	if err := ss.recvKey(ctx, MsgRelinKey, "relinearization key", kr.SetRelinKey); err != nil {
		return keys, err
	}
	evk, err := kr.EvaluationKeys()
	if err != nil {
		return keys, err
	}
	if keys.RLK, err = evk.GetRelinearizationKey(); err != nil {
		return keys, err
	}
	keys.PK = kr.PublicKey()
	ringKey := func(t wire.Type, what string, params rlwe.ParameterProvider, dst **rlwe.PublicKey) error {
		return ss.recvKey(ctx, t, what, func(p []byte) (err error) {
			*dst, err = ckks.DecodePublicKey(params, p)
			return err
		})
	}
	if err := ringKey(MsgProductKey, "products' public key", pl.layers.MatMul().Ring().RLWE(), &keys.MatMul); err != nil {
		return keys, err
	}
	if err := ringKey(MsgSharedKey, "shared products' public key", pl.layers.Scores().Ring().RLWE(), &keys.SharedMul); err != nil {
		return keys, err
	}
	return keys, nil
}

// recvKey receives one key message and hands it to set, which decodes and
// checks it; a bad key aborts the session with the reason.
func (ss *serverSession) recvKey(ctx context.Context, t wire.Type, what string, set func([]byte) error) error {
	p, err := ss.conn.Recv(ctx, t)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if err := set(p); err != nil {
		err = fmt.Errorf("%s: %w", what, err)
		ss.abort(ctx, err.Error())
		return err
	}
	return nil
}

// serverSide is the server's side of the encoder.
type serverSide struct {
	ss         *serverSession
	pl         sessionPlan
	rules      []prunestep.LayerRule
	party      *layers.Server
	step       *prunestep.Server
	rep        serverReport
	layers     []LayerReport // the counts
	start      time.Time
	stepTime   time.Duration
	layerTotal float64
}

func (ss *serverSession) newSide(pl sessionPlan) *serverSide {
	return &serverSide{ss: ss, pl: pl, rules: ss.rules(pl.req), party: ss.party, step: ss.step,
		rep: serverReport{layers: make([]serverLayer, pl.cfg.NumLayers())}, layers: make([]LayerReport, pl.cfg.NumLayers())}
}

func (sd *serverSide) attention(ctx context.Context, l int, rows layers.Rows, x share.Vector) (share.Vector, share.Vector, error) {
	return sd.party.Attention(ctx, sd.ss.conn, sd.ss.s.weights.attn[l], rows, x)
}

func (sd *serverSide) prune(ctx context.Context, l int, y, scores share.Vector) (share.Vector, prunestep.Counts, error) {
	t := time.Now()
	defer func() { sd.stepTime += time.Since(t) }()
	r := sd.rules[l]
	out, c, err := sd.step.PruneShares(ctx, sd.ss.conn, prunestep.Rows{Layer: l, X: y, Cols: sd.pl.cfg.HiddenSize(), Scores: scores}, r.Theta, r.Beta)
	return out.X, c, err
}

func (sd *serverSide) ffn(ctx context.Context, l int, degs []approx.Degree, h share.Vector) (share.Vector, error) {
	return sd.party.FFN(ctx, sd.ss.conn, sd.ss.s.weights.ffn[l], degs, h)
}

func (sd *serverSide) head(ctx context.Context, cls share.Vector) (share.Vector, error) {
	return sd.party.Head(ctx, sd.ss.conn, sd.ss.s.weights.head, cls)
}

func (sd *serverSide) layerStart(int) { sd.start, sd.stepTime = time.Now(), 0 }

func (sd *serverSide) layerEnd(l int, c prunestep.Counts, pruned bool) {
	secs := time.Since(sd.start).Seconds()
	sd.rep.layers[l] = serverLayer{seconds: secs, step: sd.stepTime.Seconds()}
	sd.layers[l] = LayerReport{In: c.In, Kept: c.Kept, High: c.High, Pruned: pruned}
	sd.layerTotal += secs
	sd.ss.s.logf("session: layer %d: %d rows in, %d kept (%d high), %.1f s (pruning step %.1f s)", l, c.In, c.Kept, c.High, secs, sd.stepTime.Seconds())
}

// ServeLocal serves on a fresh loopback TCP port in a goroutine, for tools
// and tests that run both parties in one process: it returns the address
// and a stop function that ends the serving (as ctx's end does) and waits
// for it.
func (s *Server) ServeLocal(ctx context.Context) (addr string, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("cannot ServeLocal: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	served := make(chan struct{})
	go func() {
		defer close(served)
		if err := s.Serve(ctx, ln); err != nil {
			s.logf("serve: %v", err)
		}
	}()
	return ln.Addr().String(), func() { cancel(); <-served }, nil
}
