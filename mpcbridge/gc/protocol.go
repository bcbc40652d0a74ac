package gc

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/markkurossi/mpc/circuit"
	"github.com/markkurossi/mpc/ot"
	"github.com/markkurossi/mpc/p2p"
)

const (
	labelSize = 16 // one wire label
	keySize   = 32 // the garbling AES key
	helloSize = 4 + 4 + 4 + sha256.Size + pointSize
	version   = 1
)

var helloMagic = [4]byte{'C', 'P', 'g', 'c'}

type role uint8

const (
	roleGarbler role = iota
	roleEvaluator
)

func (r role) String() string {
	if r == roleGarbler {
		return "garbler"
	}
	return "evaluator"
}

const (
	statusOK    = 0
	statusAbort = 1
)

// hello is the first message of each party, sent by both at once. It has a
// fixed size, so each side reads exactly the peer's hello and a refused
// handshake leaves the stream in step. point carries the Chou-Orlandi
// sender's A: the evaluator's under IKNP, the garbler's under ChouOrlandi.
type hello struct {
	role   role
	status uint8
	m      uint32
	hash   [sha256.Size]byte
	point  [pointSize]byte
}

func (h *hello) marshal() []byte {
	b := make([]byte, helloSize)
	copy(b, helloMagic[:])
	b[4], b[5], b[6] = version, byte(h.role), h.status
	binary.BigEndian.PutUint32(b[8:], h.m)
	copy(b[12:], h.hash[:])
	copy(b[12+sha256.Size:], h.point[:])
	return b
}

// parseHello decodes a hello: exactly helloSize bytes, with the magic, our
// version, a known role and status, and the reserved byte 7 zero (so that
// a hello has one encoding).
func parseHello(b []byte) (hello, error) {
	var h hello
	if len(b) != helloSize {
		return h, fmt.Errorf("%w: hello of %d bytes, want %d", ErrMalformed, len(b), helloSize)
	}
	if [4]byte(b[:4]) != helloMagic || b[4] != version || b[5] > byte(roleEvaluator) || b[6] > statusAbort {
		return h, fmt.Errorf("%w: not a version %d hello", ErrMalformed, version)
	}
	if b[7] != 0 {
		return h, fmt.Errorf("%w: hello's reserved byte is %#x, not 0", ErrMalformed, b[7])
	}
	h.role, h.status = role(b[5]), b[6]
	h.m = binary.BigEndian.Uint32(b[8:])
	copy(h.hash[:], b[12:])
	copy(h.point[:], b[12+sha256.Size:])
	return h, nil
}

// agree checks the peer's hello against ours.
func agree(me, peer hello) error {
	switch {
	case peer.status == statusAbort:
		return ErrPeerAborted
	case peer.role == me.role:
		return fmt.Errorf("%w: both parties are %ss", ErrMismatch, me.role)
	case peer.hash != me.hash:
		return fmt.Errorf("%w: Params differ", ErrMismatch)
	case peer.m != me.m:
		return fmt.Errorf("%w: peer has %d scores, we have %d", ErrMismatch, peer.m, me.m)
	}
	return nil
}

// party is one side of one call.
type party struct {
	ctx  context.Context
	conn io.ReadWriter
	raw  *rawConn
	pc   *p2p.Conn
	rand csprng
	// inStep is set when the call fails after a complete hello exchange
	// and nothing else: the stream is then still usable.
	inStep bool
}

// run wraps body with the connection plumbing shared by both roles: the
// library's buffered p2p.Conn (whose writer goroutine is stopped before run
// returns), context cancellation through deadlines, and error wrapping.
func run(ctx context.Context, conn io.ReadWriter, op string, body func(*party) error) error {
	if conn == nil {
		return fmt.Errorf("cannot %s: nil connection", op)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("cannot %s: %w", op, err)
	}
	raw := &rawConn{rw: conn}
	pt := &party{ctx: ctx, conn: conn, raw: raw, pc: p2p.NewConn(raw), rand: newRand()}
	stop := watch(ctx, conn)
	err := body(pt)
	d, isD := conn.(deadliner)
	interrupted := false
	if err != nil {
		// Drop unsent bytes: p2p.Conn.Close returns early, leaving its
		// writer goroutine running, if its final flush fails.
		pt.pc.WritePos = 0
		if !pt.inStep && isD {
			// The stream is out of step; do not wait for a peer that may
			// never read what the writer goroutine is still writing.
			_ = d.SetDeadline(time.Unix(1, 0))
			interrupted = true
		}
	}
	// Close flushes, waits for the writer goroutine to finish and exit,
	// and does not close conn (rawConn hides it).
	if cerr := pt.pc.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if werr := raw.err(); err == nil && werr != nil {
		err = fmt.Errorf("cannot write: %w", werr)
	}
	stop()
	if err == nil {
		return nil
	}
	if interrupted {
		_ = d.SetDeadline(time.Time{})
	}
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		err = fmt.Errorf("%w: %w", context.Cause(ctx), err)
	}
	if errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		err = fmt.Errorf("%w (peer closed the connection: %w)", err, io.ErrUnexpectedEOF)
	}
	return fmt.Errorf("cannot %s: %w", op, err)
}

// flush sends the buffered bytes and reports a write error seen so far.
func (pt *party) flush() error {
	if err := pt.pc.Flush(); err != nil {
		return err
	}
	return pt.raw.err()
}

// exchange sends our hello and reads exactly the peer's.
func (pt *party) exchange(me hello) (hello, error) {
	if err := sendRaw(pt.pc, me.marshal()); err != nil {
		return hello{}, fmt.Errorf("cannot send hello: %w", err)
	}
	if err := pt.flush(); err != nil {
		return hello{}, fmt.Errorf("cannot send hello: %w", err)
	}
	// Read straight from conn (nothing is buffered yet) so that a call that
	// ends after the hellos never reads past them.
	var b [helloSize]byte
	if _, err := io.ReadFull(pt.conn, b[:]); err != nil {
		return hello{}, fmt.Errorf("cannot read hello: %w", err)
	}
	return parseHello(b[:])
}

// checkArgs validates the local arguments; its error is reported after the
// hellos, in which the party announces that it aborts.
func checkArgs(p Params, m int) error {
	if !p.valid() {
		return errors.New("invalid Params (use NewParams)")
	}
	if m > p.MaxScores() {
		return fmt.Errorf("%d scores exceed the largest bucket %d", m, p.MaxScores())
	}
	return nil
}

func newHello(r role, p Params, m int, argErr error) hello {
	h := hello{role: r, m: uint32(min(m, math.MaxUint32)), hash: p.hash}
	if argErr != nil {
		h.status = statusAbort
	}
	return h
}

// Garble runs the garbler's side (the server, holding the thresholds θ and
// β) of one comparison step over conn, with Params p, its shares v_j and its
// thresholds, and returns keep_j = [s_j > θ] and high_j = [s_j > β] for
// s_j = (c_j + v_j) mod 2^K, all read as K-bit two's-complement integers.
// Shares and thresholds are used modulo 2^K. The peer must call Evaluate
// with equal Params and as many shares (0 to p.MaxScores()); the bits are
// returned in the order of the shares, so the caller must have put the
// scores in an order unknown to both parties. It uses the circuit cached in
// c, compiling it on first use; c may be nil. With p.EvaluatorOnly() the
// bits go to the evaluator alone: Garble returns nil bit vectors (and, for
// m > 0, reads nothing after the garbled circuit).
//
// conn must allow a Read concurrent with a Write (net.Conn does: the
// library writes from its own goroutine). Garble never reads past the
// protocol's last byte and leaves no goroutine behind. If ctx is done while
// Garble is blocked on conn, and conn has a SetDeadline method, an expired
// deadline is set on it to interrupt the I/O and Garble returns ctx's error;
// without SetDeadline, blocked I/O returns only when the caller closes conn.
// After any error other than ErrMismatch and ErrPeerAborted, the stream is
// out of step and should be closed.
func (c *Cache) Garble(ctx context.Context, conn io.ReadWriter, p Params, shares []uint64, theta, beta uint64) (keep, high []bool, err error) {
	err = run(ctx, conn, "Garble", func(pt *party) error {
		var err error
		keep, high, err = pt.garble(c, p, shares, nil, theta, beta)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	return keep, high, nil
}

// Evaluate runs the evaluator's side (the client) of one comparison step
// over conn, with Params p and its shares c_j, and returns the same keep and
// high bits as the garbler's Garble. It uses the circuit cached in c,
// compiling it on first use; c may be nil. See Garble for the requirements
// on conn and for cancellation.
func (c *Cache) Evaluate(ctx context.Context, conn io.ReadWriter, p Params, shares []uint64) (keep, high []bool, err error) {
	err = run(ctx, conn, "Evaluate", func(pt *party) error {
		var err error
		keep, high, err = pt.evaluate(c, p, shares, nil)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	return keep, high, nil
}

// Garble is (*Cache)(nil).Garble: it compiles the circuit on every call.
func Garble(ctx context.Context, conn io.ReadWriter, p Params, shares []uint64, theta, beta uint64) (keep, high []bool, err error) {
	return (*Cache)(nil).Garble(ctx, conn, p, shares, theta, beta)
}

// Evaluate is (*Cache)(nil).Evaluate: it compiles the circuit on every call.
func Evaluate(ctx context.Context, conn io.ReadWriter, p Params, shares []uint64) (keep, high []bool, err error) {
	return (*Cache)(nil).Evaluate(ctx, conn, p, shares)
}

// bitsOf appends the K low bits of x, least significant first.
func bitsOf(dst []bool, x uint64, k int) []bool {
	for i := 0; i < k; i++ {
		dst = append(dst, x>>uint(i)&1 == 1)
	}
	return dst
}

// opened is what both roles know after the hellos: the base-OT setup (when
// this side sends the base OTs), the peer's hello, the bucket and circuit.
type opened struct {
	setup  ot.COSenderSetup
	peer   hello
	bucket int
	cc     *compiled
	empty  []bool // the (non-nil, empty) result of a call with no scores
}

// open exchanges hellos for a call with m scores and checks that both sides
// agree; sendsBaseOT says whether this side's hello carries the base-OT
// sender's point. For m == 0 it returns empty results and no circuit. ties
// are the top-K circuit's tie shares (nil for the comparison circuit).
func (pt *party) open(cache *Cache, p Params, m int, ties []uint64, r role, sendsBaseOT bool) (opened, error) {
	var st opened
	argErr := checkArgs(p, m)
	if argErr == nil {
		argErr = checkTies(p, m, ties)
	}
	me := newHello(r, p, m, argErr)
	if argErr == nil && m > 0 && sendsBaseOT {
		var err error
		if st.setup, err = ot.GenerateCOSenderSetup(pt.rand, curve()); err != nil {
			return st, fmt.Errorf("cannot set up OT: %w", err)
		}
		putPoint(me.point[:], st.setup.Ax, st.setup.Ay)
	}
	peer, err := pt.exchange(me)
	if err != nil {
		return st, err
	}
	st.peer = peer
	pt.inStep = true
	if argErr != nil {
		return st, argErr
	}
	if err := agree(me, peer); err != nil {
		return st, err
	}
	if m == 0 {
		st.empty = []bool{}
		return st, nil
	}
	pt.inStep = false
	st.bucket, _ = p.Bucket(m)
	if st.cc, err = cache.forParams(p, st.bucket); err != nil {
		return st, err
	}
	return st, nil
}

func (pt *party) garble(cache *Cache, p Params, shares, ties []uint64, theta, beta uint64) (keep, high []bool, err error) {
	m := len(shares)
	st, err := pt.open(cache, p, m, ties, roleGarbler, p.ot == ChouOrlandi)
	if err != nil || m == 0 {
		return st.empty, st.empty, err
	}
	setup, peer, bucket, cc := st.setup, st.peer, st.bucket, st.cc

	// Our input bits (local arithmetic on our own inputs: see garblerBits).
	in := cc.garblerBits(p, shares, ties, theta, beta)

	var key [keySize]byte
	var garbled *circuit.Garbled
	defer func() {
		if garbled != nil {
			garbled.Release()
		}
	}()
	garble := func() error {
		if _, err := pt.rand.Read(key[:]); err != nil {
			return err
		}
		var err error
		garbled, err = cc.circ.Garble(pt.rand, key[:])
		return err
	}
	evalWires := func() []ot.Wire { return garbled.Wires[cc.nG : cc.nG+cc.nE : cc.nG+cc.nE] }

	switch p.ot {
	case IKNP:
		// We are the IKNP sender, hence the base OTs' receiver; we garble
		// while the evaluator answers our base-OT points.
		base := newCOReceiver(pt, getPoint(peer.point[:]), garble)
		cot := ot.NewCOT(base, pt.rand, false, false)
		if err := libcall(func() error { return cot.InitSender(pt.pc) }); err != nil {
			return nil, nil, fmt.Errorf("cannot run base OT: %w", err)
		}
		if garbled == nil {
			if err := garble(); err != nil {
				return nil, nil, fmt.Errorf("cannot garble: %w", err)
			}
		}
		if err := pt.ctx.Err(); err != nil {
			return nil, nil, err
		}
		if err := libcall(func() error { return cot.Send(evalWires()) }); err != nil {
			return nil, nil, fmt.Errorf("cannot run OT extension: %w", err)
		}
	case ChouOrlandi:
		if err := garble(); err != nil {
			return nil, nil, fmt.Errorf("cannot garble: %w", err)
		}
		s := newCOSender(pt, setup)
		if err := libcall(func() error { return s.Send(evalWires()) }); err != nil {
			return nil, nil, fmt.Errorf("cannot run OT: %w", err)
		}
	}

	// The garbled circuit: key, our input labels, tables, output decoding.
	nOut := 2 * bucket
	msg := make([]byte, keySize+cc.nG*labelSize+cc.nAND*2*labelSize+(nOut+7)/8)
	off := copy(msg, key[:])
	for i, bit := range in {
		putLabel(msg[off:], circuit.LabelForBit(garbled.Wires[i], bit))
		off += labelSize
	}
	for _, rows := range garbled.Gates {
		for _, l := range rows {
			putLabel(msg[off:], l)
			off += labelSize
		}
	}
	if off != keySize+cc.nG*labelSize+cc.nAND*2*labelSize {
		panic("gc: garbled table size differs from the circuit's AND count")
	}
	for i := 0; i < nOut; i++ {
		if garbled.Wires[cc.outWire(i)].L0.S() {
			msg[off+i/8] |= 1 << uint(i%8)
		}
	}
	if err := sendRaw(pt.pc, msg); err != nil {
		return nil, nil, fmt.Errorf("cannot send garbled circuit: %w", err)
	}
	if err := pt.flush(); err != nil {
		return nil, nil, fmt.Errorf("cannot send garbled circuit: %w", err)
	}
	if p.evalOnly {
		return nil, nil, nil
	}

	// The evaluator's output labels, read exactly from conn: the evaluator
	// may send its next messages right behind them.
	if pt.pc.ReadStart != pt.pc.ReadEnd {
		return nil, nil, fmt.Errorf("%w: unexpected data before the output labels", ErrMalformed)
	}
	out := make([]byte, nOut*labelSize)
	if _, err := io.ReadFull(pt.conn, out); err != nil {
		return nil, nil, fmt.Errorf("cannot read output labels: %w", err)
	}
	bits := make([]bool, nOut)
	for i := range bits {
		w := garbled.Wires[cc.outWire(i)]
		switch l := getLabel(out[i*labelSize:]); {
		case l.Equal(w.L0):
		case l.Equal(w.L1):
			bits[i] = true
		default:
			return nil, nil, fmt.Errorf("%w: output label %d is neither label of its wire", ErrMalformed, i)
		}
	}
	return bits[:m:m], bits[bucket : bucket+m : bucket+m], nil
}

func (pt *party) evaluate(cache *Cache, p Params, shares, ties []uint64) (keep, high []bool, err error) {
	m := len(shares)
	st, err := pt.open(cache, p, m, ties, roleEvaluator, p.ot == IKNP)
	if err != nil || m == 0 {
		return st.empty, st.empty, err
	}
	setup, peer, bucket, cc := st.setup, st.peer, st.bucket, st.cc

	flags := cc.evaluatorBits(p, shares, ties)
	wires := make([]ot.Label, cc.circ.NumWires)
	ours := wires[cc.nG : cc.nG+cc.nE : cc.nG+cc.nE]
	switch p.ot {
	case IKNP:
		// We are the IKNP receiver, hence the base OTs' sender (A went out
		// in our hello).
		cot := ot.NewCOT(newCOSender(pt, setup), pt.rand, false, false)
		if err := libcall(func() error { return cot.InitReceiver(pt.pc) }); err != nil {
			return nil, nil, fmt.Errorf("cannot run base OT: %w", err)
		}
		if err := pt.ctx.Err(); err != nil {
			return nil, nil, err
		}
		if err := libcall(func() error { return cot.Receive(flags, ours) }); err != nil {
			return nil, nil, fmt.Errorf("cannot run OT extension: %w", err)
		}
	case ChouOrlandi:
		r := newCOReceiver(pt, getPoint(peer.point[:]), nil)
		if err := libcall(func() error { return r.Receive(flags, ours) }); err != nil {
			return nil, nil, fmt.Errorf("cannot run OT: %w", err)
		}
	}

	nOut := 2 * bucket
	msg := make([]byte, keySize+cc.nG*labelSize+cc.nAND*2*labelSize+(nOut+7)/8)
	if err := recvFull(pt.pc, msg); err != nil {
		return nil, nil, fmt.Errorf("cannot read garbled circuit: %w", err)
	}
	key, off := msg[:keySize], keySize
	for i := 0; i < cc.nG; i++ {
		wires[i] = getLabel(msg[off:])
		off += labelSize
	}
	slab := make([]ot.Label, 2*cc.nAND)
	for i := range slab {
		slab[i] = getLabel(msg[off:])
		off += labelSize
	}
	tables := make([][]ot.Label, cc.circ.NumGates)
	for i, g := range cc.circ.Gates {
		if g.Op == circuit.AND {
			tables[i], slab = slab[:2:2], slab[2:]
		}
	}
	if err := pt.ctx.Err(); err != nil {
		return nil, nil, err
	}
	if err := libcall(func() error { return cc.circ.Eval(key, wires, tables) }); err != nil {
		return nil, nil, fmt.Errorf("cannot evaluate: %w", err)
	}
	out := make([]byte, nOut*labelSize)
	bits := make([]bool, nOut)
	for i := range bits {
		l := wires[cc.outWire(i)]
		putLabel(out[i*labelSize:], l)
		bits[i] = l.S() != (msg[off+i/8]>>uint(i%8)&1 == 1)
	}
	if p.evalOnly {
		return bits[:m:m], bits[bucket : bucket+m : bucket+m], nil
	}
	if err := sendRaw(pt.pc, out); err != nil {
		return nil, nil, fmt.Errorf("cannot send output labels: %w", err)
	}
	if err := pt.flush(); err != nil {
		return nil, nil, fmt.Errorf("cannot send output labels: %w", err)
	}
	return bits[:m:m], bits[bucket : bucket+m : bucket+m], nil
}
