package engine

import (
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"time"

	"github.com/cipherprune/cipherprune/ckks"
	"github.com/cipherprune/cipherprune/cuda"
	"github.com/cipherprune/cipherprune/kernels"
	"github.com/cipherprune/cipherprune/mpcbridge/prunestep"
	"github.com/cipherprune/cipherprune/mpcbridge/wire"
)

// ServerConfig configures a Server. The zero value serves one session at a
// time on the default secure preset.
type ServerConfig struct {
	// Preset is the CKKS preset's name (empty: ckks.DefaultPreset).
	Preset string
	// AllowInsecure admits an InsecureTest... preset (tests only).
	AllowInsecure bool
	// Workers is the number of evaluator goroutines of a session
	// (0: GOMAXPROCS).
	Workers int
	// MaxSessions bounds the sessions served at once (0: 1). A session
	// holds its client's evaluation keys (about 35 MB per Galois key at
	// N = 2^14), so this bounds the memory. A client that arrives when
	// every slot is taken is told so in the handshake's place and
	// disconnected.
	MaxSessions int
	// SessionTimeout bounds one whole session, from the end of the
	// handshake to the report (0: DefaultSessionTimeout).
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
	// LinearLevel, when positive, caps the level the matmuls run at
	// (ckks.WithLinearLevel): cheaper matmuls for more refreshes.
	LinearLevel int
	// Backend selects where the key switches and rescales run
	// (ckks.WithBackend): "cpu" or "" for Lattigo's evaluator, "gpu" for
	// the CUDA kernels (a binary built with -tags cuda on a host with a
	// usable GPU; otherwise Logf says why and the server uses "cpu"),
	// "kernels" for the kernels' pure-Go reference through the same seam.
	Backend string
	// AllowOpenLogits lets a client open the logits (ClientConfig.OpenLogits)
	// instead of the label alone. Off by default: opened logits carry the
	// last ciphertext's noise, which depends on the weights, at about 2^-9
	// statistical distance per logit (mpcbridge/README.md section 7), so a
	// server protecting its model refuses such sessions.
	AllowOpenLogits bool
	// Logf, if not nil, receives one line per session event.
	Logf func(format string, args ...any)
	// Rand is the random source of the bridge's masks (nil: crypto/rand;
	// only tests should set it).
	Rand io.Reader
}

// Server serves private inferences of one model: it holds the model's
// weights and thresholds, and runs the server's side of the session
// protocol (see the package documentation) for each client. It is safe for
// concurrent use.
type Server struct {
	model   *Model
	cfg     ServerConfig
	preset  ckks.Preset
	params  ckks.Parameters
	step    prunestep.Parameters
	keep    prunestep.Parameters // step with KeepBlock
	wireCfg wire.Config
	sem     chan struct{} // a slot per session
	conns   chan struct{} // a slot per connection Serve holds open

	mu      sync.Mutex
	encoded map[int]*encodedModel // by block size
	backend kernels.Backend       // nil: Lattigo's evaluator
}

// encodedModel is the model's layers prepared for one block size.
type encodedModel struct {
	once   sync.Once
	layers []*ckks.EncodedLayer
	head   *ckks.EncodedHead
	err    error
}

// NewServer returns a server for model m.
func NewServer(m *Model, cfg ServerConfig) (*Server, error) {
	if m == nil || m.Model == nil || m.Approx == nil {
		return nil, errors.New("cannot NewServer: incomplete model (use LoadModel)")
	}
	if cfg.Preset == "" {
		cfg.Preset = ckks.DefaultPreset
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
		return nil, fmt.Errorf("cannot NewServer: MaxConns %d is less than MaxSessions %d", cfg.MaxConns, cfg.MaxSessions)
	}
	if cfg.Rand == nil {
		cfg.Rand = crand.Reader
	}
	su, err := newSetup(cfg.Preset, cfg.AllowInsecure, m.Client)
	if err != nil {
		return nil, fmt.Errorf("cannot NewServer: %w", err)
	}
	if m.Thresholds != nil && m.Thresholds.NumLayers() != m.Config().NumLayers() {
		return nil, fmt.Errorf("cannot NewServer: thresholds for %d layers, model has %d", m.Thresholds.NumLayers(), m.Config().NumLayers())
	}
	be, err := openBackend(cfg.Backend, su.params, cfg.Logf)
	if err != nil {
		return nil, fmt.Errorf("cannot NewServer: %w", err)
	}
	return &Server{
		model:   m,
		cfg:     cfg,
		preset:  su.preset,
		params:  su.params,
		step:    su.step,
		keep:    su.keep,
		wireCfg: wire.Config{Role: wire.RoleServer, Version: ProtocolVersion, Params: su.session, IdleTimeout: cfg.IdleTimeout},
		sem:     make(chan struct{}, cfg.MaxSessions),
		conns:   make(chan struct{}, cfg.MaxConns),
		encoded: map[int]*encodedModel{},
		backend: be,
	}, nil
}

// openBackend opens the kernels backend named by ServerConfig.Backend (nil
// for Lattigo's evaluator).
func openBackend(name string, params ckks.Parameters, logf func(string, ...any)) (kernels.Backend, error) {
	switch name {
	case "", "cpu":
		return nil, nil
	case "gpu", "kernels":
	default:
		return nil, fmt.Errorf("unknown backend %q (want cpu, gpu or kernels)", name)
	}
	kp, err := ckks.KernelParams(params)
	if err != nil {
		return nil, err
	}
	if name == "kernels" {
		return kernels.NewCPU(kp, kernels.CPUOptions{})
	}
	be, err := cuda.Open(kp)
	if err != nil {
		if logf != nil {
			logf("backend gpu: no usable GPU (%v); using the CPU (Lattigo)", err)
		}
		return nil, nil
	}
	return be, nil
}

// newEvaluator returns a session's evaluator for the keys evk.
func (s *Server) newEvaluator(evk ckks.EvaluationKeySet, reserve int) (*ckks.Evaluator, error) {
	opts := []ckks.EvaluatorOption{ckks.WithReserve(reserve), ckks.WithLinearLevel(s.cfg.LinearLevel)}
	if s.backend != nil {
		opts = append(opts, ckks.WithBackend(s.backend))
	}
	return ckks.NewEvaluator(s.params, evk, s.model.Approx.Registry(), s.cfg.Workers, opts...)
}

// Params returns the CKKS parameters of the server's preset.
func (s *Server) Params() ckks.Parameters { return s.params }

func (s *Server) logf(format string, args ...any) {
	if s.cfg.Logf != nil {
		s.cfg.Logf(format, args...)
	}
}

// encodedFor returns the model's layers encoded for block size block,
// encoding them on first use (shared by the sessions).
func (s *Server) encodedFor(block int) (*encodedModel, error) {
	s.mu.Lock()
	em, ok := s.encoded[block]
	if !ok {
		em = &encodedModel{}
		s.encoded[block] = em
	}
	s.mu.Unlock()
	em.once.Do(func() {
		m := s.model
		slots := s.params.MaxSlots()
		reg := m.Approx.Registry()
		attCfg := ckks.AttentionConfig{Heads: m.Config().NumHeads(), ExpShift: m.Approx.SoftmaxShift()}
		for l := range m.Server.Layers {
			el, err := ckks.NewEncodedLayer(&m.Server.Layers[l], attCfg, block, slots, reg)
			if err != nil {
				em.err = fmt.Errorf("layer %d: %w", l, err)
				return
			}
			em.layers = append(em.layers, el)
		}
		em.head, em.err = ckks.NewEncodedHead(m.Server, block, slots, reg)
	})
	return em, em.err
}

// serverSession is one session's state on the server.
type serverSession struct {
	s    *Server
	conn *wire.Conn
}

func (ss *serverSession) abort(ctx context.Context, reason string) {
	_ = ss.conn.Abort(context.WithoutCancel(ctx), reason)
}

// run is the server's side of the session protocol.
func (ss *serverSession) run(ctx context.Context) error {
	s, conn := ss.s, ss.conn
	cfg := s.model.Config()
	params := s.params

	// 1. The request and the plan.
	p, err := conn.Recv(ctx, MsgSession)
	if err != nil {
		return fmt.Errorf("session request: %w", err)
	}
	req, err := decodeSessionRequest(p)
	if err != nil {
		ss.abort(ctx, err.Error())
		return err
	}
	n := req.length
	if maxN := min(cfg.MaxPositions(), s.step.MaxRows()); n > maxN {
		err := fmt.Errorf("padded length %d exceeds the model's limit of %d tokens", n, maxN)
		ss.abort(ctx, err.Error())
		return err
	}
	block, err := ckks.BlockFor(params.MaxSlots(), n, cfg.HeadDim(), cfg.NumHeads())
	if err != nil {
		ss.abort(ctx, "no packing for this length")
		return err
	}
	galEls, err := ckks.GaloisElements(params, ckks.ShapeOf(cfg, block))
	if err != nil {
		ss.abort(ctx, "no rotation plan for this length")
		return err
	}
	if k := cfg.NumLabels(); req.labelOnly && k != 2 {
		err := fmt.Errorf("label-only opening needs a two-label model, this one has %d labels", k)
		ss.abort(ctx, err.Error())
		return err
	}
	if !req.labelOnly && !s.cfg.AllowOpenLogits {
		err := errors.New("this server opens the label only, not the logits (it does not allow OpenLogits)")
		ss.abort(ctx, err.Error())
		return err
	}
	if s.model.Thresholds == nil {
		req.prune = false
	}
	if !req.prune {
		req.reduce = false
	}
	acc := sessionAccept{request: req, block: block, galEls: galEls}
	if err := conn.Send(ctx, MsgAccept, acc.marshal()); err != nil {
		return fmt.Errorf("accept: %w", err)
	}
	s.logf("session: n=%d block=%d prune=%v reduce=%v keep_block=%v label_only=%v hide_length=%d, waiting for %d Galois keys", n, block, req.prune, req.reduce, req.keepBlock, req.labelOnly, req.hideLength, len(galEls))

	// 2. Keys.
	t0 := time.Now()
	keys, err := ckks.NewKeyReceiver(params, galEls)
	if err != nil {
		return err
	}
	if err := ss.recvKey(ctx, MsgPublicKey, "public key", keys.SetPublicKey); err != nil {
		return err
	}
	if err := ss.recvKey(ctx, MsgRelinKey, "relinearization key", keys.SetRelinKey); err != nil {
		return err
	}
	for i := range galEls {
		if err := ss.recvKey(ctx, MsgGaloisKey, fmt.Sprintf("Galois key %d", i), keys.AddGaloisKey); err != nil {
			return err
		}
	}
	evk, err := keys.EvaluationKeys()
	if err != nil {
		return err
	}
	s.logf("session: keys received in %.1f s", time.Since(t0).Seconds())

	// 3. The input.
	lay, err := ckks.NewLayout(params.MaxSlots(), n, cfg.HiddenSize(), block)
	if err != nil {
		return err
	}
	lay = lay.WithHeadDim(cfg.HeadDim())
	p, err = conn.Recv(ctx, MsgInput)
	if err != nil {
		return fmt.Errorf("input: %w", err)
	}
	x, err := ckks.DecodeCtMatrix(params, lay, params.MaxLevel(), p)
	if err != nil {
		ss.abort(ctx, "input: "+err.Error())
		return fmt.Errorf("input: %w", err)
	}
	p, err = conn.Recv(ctx, MsgMasks)
	if err != nil {
		return fmt.Errorf("attention masks: %w", err)
	}
	masks, err := ckks.DecodeAttentionMasks(params, lay, params.MaxLevel(), p)
	if err != nil {
		ss.abort(ctx, "attention masks: "+err.Error())
		return fmt.Errorf("attention masks: %w", err)
	}

	// 4. The encoder, the head and the output.
	em, err := s.encodedFor(block)
	if err != nil {
		ss.abort(ctx, "server failed to prepare the model")
		return err
	}
	stepParams, err := sessionStep(s.step, s.keep, req.keepBlock, req.hideLength)
	if err != nil {
		ss.abort(ctx, "server failed to start the bridge")
		return err
	}
	step, err := prunestep.NewServer(params, keys.PublicKey(), stepParams, s.cfg.Rand)
	if err != nil {
		ss.abort(ctx, "server failed to start the bridge")
		return err
	}
	ev, err := s.newEvaluator(evk, step.MinLevel())
	if err != nil {
		ss.abort(ctx, "server failed to start the evaluator")
		return err
	}
	rules := Rules(s.model.Thresholds, cfg.NumLayers(), Reductions{Prune: req.prune, Reduce: req.reduce})
	br, err := prunestep.NewBridge(step, conn, rules, masks)
	if err != nil {
		ss.abort(ctx, "server failed to start the bridge")
		return err
	}
	tb := &timedBridge{Bridge: br}
	rep := serverReport{layers: make([]serverLayer, cfg.NumLayers())}
	h := x
	var degs ckks.DegreeSet
	cur := masks
	for l := range em.layers {
		if err := br.Progress(ctx, l, stageLayer); err != nil {
			return err
		}
		tb.reset()
		t := time.Now()
		fail := func(err error) error {
			ss.abort(ctx, fmt.Sprintf("server failed in layer %d", l))
			return fmt.Errorf("layer %d: %w", l, err)
		}
		att, err := ev.AttentionBlock(ctx, h, em.layers[l], cur, degs, tb, nil)
		if err != nil {
			return fail(err)
		}
		att.Layer = l
		res, err := tb.AfterAttention(ctx, att)
		if err != nil {
			return fail(fmt.Errorf("bridge: %w", err))
		}
		var keySeconds float64
		if nb := res.Hidden.Layout.Block; nb != block {
			// The kept rows were re-packed into a smaller block: its
			// layers, and the keys of its rotations, which the client sends
			// now (both sides know the block from the public kept count).
			tk := time.Now()
			if ev, err = ss.switchBlock(ctx, keys, nb, step.MinLevel()); err != nil {
				return err
			}
			keySeconds = time.Since(tk).Seconds()
			if em, err = s.encodedFor(nb); err != nil {
				return fail(err)
			}
			block = nb
		}
		if h, err = ev.FeedForwardBlock(ctx, res.Hidden, em.layers[l], res.Degrees, tb, nil); err != nil {
			return fail(err)
		}
		cur, degs = res.Masks, res.Degrees
		rep.layers[l] = serverLayer{seconds: time.Since(t).Seconds(), bridge: tb.elapsed.Seconds(), refreshes: tb.refreshes}
		s.logf("session: layer %d: %d rows, block %d, %.1f s (bridge %.1f s, %d refreshes, keys %.1f s)", l, h.Layout.Rows, block, rep.layers[l].seconds, rep.layers[l].bridge, tb.refreshes, keySeconds)
	}
	if err := br.Progress(ctx, cfg.NumLayers(), stageHead); err != nil {
		return err
	}
	t := time.Now()
	logits, err := ev.Head(ctx, h, em.head, tb, nil)
	if err != nil {
		ss.abort(ctx, "server failed in the head")
		return fmt.Errorf("head: %w", err)
	}
	if err := br.Done(ctx); err != nil {
		return err
	}
	slotsOut := make([]int, cfg.NumLabels())
	for k := range slotsOut {
		slotsOut[k] = k * block
	}
	if req.labelOnly {
		if err := step.RevealLabel(ctx, conn, logits, slotsOut); err != nil {
			return fmt.Errorf("label: %w", err)
		}
	} else if err := step.Reveal(ctx, conn, logits, slotsOut); err != nil {
		return fmt.Errorf("logits: %w", err)
	}
	rep.head = time.Since(t).Seconds()
	if err := conn.Send(ctx, MsgReport, rep.marshal()); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	st := conn.Stats()
	s.logf("session: done, %d bytes sent, %d received, %d rounds", st.BytesSent, st.BytesReceived, st.Rounds)
	return nil
}

// switchBlock receives the Galois keys of block's plan that the server does
// not hold (the client sends them right after the pruning step), keeps only
// the plan's keys, and returns an evaluator with them.
func (ss *serverSession) switchBlock(ctx context.Context, keys *ckks.KeyReceiver, block, reserve int) (*ckks.Evaluator, error) {
	s := ss.s
	plan, err := ckks.GaloisElements(s.params, ckks.ShapeOf(s.model.Config(), block))
	if err != nil {
		ss.abort(ctx, "no rotation plan for the compacted block")
		return nil, err
	}
	missing := keys.Extend(plan)
	for i := range missing {
		if err := ss.recvKey(ctx, MsgGaloisKey, fmt.Sprintf("Galois key %d for block %d", i, block), keys.AddGaloisKey); err != nil {
			return nil, err
		}
	}
	evk, err := keys.EvaluationKeysFor(plan, true)
	if err != nil {
		ss.abort(ctx, "server failed to switch keys")
		return nil, err
	}
	ev, err := s.newEvaluator(evk, reserve)
	if err != nil {
		ss.abort(ctx, "server failed to start the evaluator")
		return nil, err
	}
	s.logf("session: block %d: %d more Galois keys received", block, len(missing))
	return ev, nil
}

// Progress stages the server announces (prunestep.Bridge.Progress).
const (
	stageLayer = 0 // an encoder layer starts
	stageHead  = 1 // the pooler and classifier start
)

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

// timedBridge measures the time a layer spends in the bridge.
type timedBridge struct {
	*prunestep.Bridge
	elapsed   time.Duration
	refreshes int
}

func (b *timedBridge) reset() { b.elapsed, b.refreshes = 0, 0 }

func (b *timedBridge) Refresh(ctx context.Context, cts []*ckks.Ciphertext) ([]*ckks.Ciphertext, error) {
	t := time.Now()
	defer func() { b.elapsed += time.Since(t) }()
	b.refreshes++
	return b.Bridge.Refresh(ctx, cts)
}

func (b *timedBridge) RefreshTo(ctx context.Context, cts []*ckks.Ciphertext, level int) ([]*ckks.Ciphertext, error) {
	t := time.Now()
	defer func() { b.elapsed += time.Since(t) }()
	b.refreshes++
	return b.Bridge.RefreshTo(ctx, cts, level)
}

func (b *timedBridge) AfterAttention(ctx context.Context, out *ckks.AttentionOutput) (*ckks.BridgeResult, error) {
	t := time.Now()
	defer func() { b.elapsed += time.Since(t) }()
	return b.Bridge.AfterAttention(ctx, out)
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
