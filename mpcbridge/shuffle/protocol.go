package shuffle

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/markkurossi/mpc/ot"
)

// Limits on the sizes of one call. Both parties check their own arguments
// against them before the hellos, and the sizes in the peer's hello before
// anything else; every allocation is sized by the caller's own (checked)
// arguments.
const (
	// MaxRows is the largest number of rows n.
	MaxRows = 4096
	// MaxWidth is the largest number of columns.
	MaxWidth = 1 << 16
	// DefaultMaxWords is the default of Config.MaxWords.
	DefaultMaxWords = 1 << 25
)

// Config holds a party's local limits and the ring of its shares; the zero
// Config uses the defaults and Ring64. The parties' limits need not be
// equal: a party whose limit a call exceeds refuses it in its hello, and its
// peer fails with ErrPeerAborted. Their rings must be (ErrMismatch
// otherwise).
type Config struct {
	// Ring is the modulus of the shares (Ring64 by default). With Ring128
	// every pair of words of a row is one value, low word first.
	Ring Ring

	// MaxWords bounds the 64-bit words one permute-and-share sends: the
	// masked input (n·width) plus the switch corrections (switches·width),
	// which is also about what each party allocates. Zero means
	// DefaultMaxWords (256 MiB of traffic); it can only lower the bound
	// given by MaxRows and MaxWidth.
	MaxWords int
}

func (c Config) maxWords() int {
	if c.MaxWords <= 0 {
		return DefaultMaxWords
	}
	return c.MaxWords
}

// words returns the 64-bit words one permute-and-share of n rows of the
// given width sends (the assistant sends them all).
func words(n, width int) int {
	return (n + numSwitches(paddedSize(n))) * width
}

// check validates the sizes of a call.
func (c Config) check(n, width int) error {
	if err := c.Ring.checkWidth(width); err != nil {
		return err
	}
	switch {
	case n > MaxRows:
		return fmt.Errorf("%d rows exceed %d", n, MaxRows)
	case width > MaxWidth:
		return fmt.Errorf("width %d exceeds %d", width, MaxWidth)
	case words(n, width) > c.maxWords():
		return fmt.Errorf("%d rows of width %d need %d words, over the limit of %d", n, width, words(n, width), c.maxWords())
	}
	return nil
}

// Role says which party permutes first in Shuffle.
type Role uint8

const (
	// First permutes first (π_1), then assists (the server, with π_S, in
	// docs/design.md, "The pruning protocol").
	First Role = iota
	// Second assists first, then permutes (π_2; the client, with π_C).
	Second
)

// String returns the role's name.
func (r Role) String() string {
	switch r {
	case First:
		return "First"
	case Second:
		return "Second"
	}
	return fmt.Sprintf("Role(%d)", uint8(r))
}

// Permute is Config{}.Permute.
func Permute(ctx context.Context, conn io.ReadWriter, perm []int, share [][]uint64, rnd io.Reader) ([][]uint64, error) {
	return Config{}.Permute(ctx, conn, perm, share, rnd)
}

// Assist is Config{}.Assist.
func Assist(ctx context.Context, conn io.ReadWriter, share [][]uint64, rnd io.Reader) ([][]uint64, error) {
	return Config{}.Assist(ctx, conn, share, rnd)
}

// Shuffle is Config{}.Shuffle.
func Shuffle(ctx context.Context, conn io.ReadWriter, r Role, share [][]uint64, rnd io.Reader) ([][]uint64, error) {
	return Config{}.Shuffle(ctx, conn, r, share, rnd)
}

// Permute runs the permuter's side P of one permute-and-share over conn. P
// holds the permutation perm of n = len(perm) rows and its share A_P (n rows
// of equal width); the peer runs Assist with its share A_Q of the same size.
// Permute returns P's new share B_P, and the peer's call returns B_Q, with
//
//	B_P + B_Q = ApplyPermutation(perm, A_P + A_Q)  (mod 2^64, word by word)
//
// (with Config.Ring = Ring128, modulo 2^128, pair of words by pair),
//
// that is, row i of the input becomes row perm[i] of the output. Both new
// shares are fresh: the pair is uniformly random subject to that sum, and
// the peer learns nothing about perm or A_P. rnd is the random source for
// the OTs (crypto/rand when nil; it must be a cryptographically secure
// source).
//
// Permute reads exactly the protocol's bytes (the peer may send its next
// message right behind) and never closes conn. If ctx is done while a call
// is blocked on conn and conn has a SetDeadline method (net.Conn does), an
// expired deadline is set to interrupt the I/O, the call returns an error
// wrapping ctx's, and the deadline is then cleared; without SetDeadline,
// blocked I/O returns only when the caller closes conn. conn must allow one
// Write concurrent with a Read (the hellos are sent while the peer's is
// read), as net.Conn does. After any error other than ErrMismatch and
// ErrPeerAborted the stream is out of step and should be closed.
func (c Config) Permute(ctx context.Context, conn io.ReadWriter, perm []int, share [][]uint64, rnd io.Reader) ([][]uint64, error) {
	var out [][]uint64
	err := run(ctx, conn, "Permute", rnd, func(pt *party) error {
		var err error
		out, err = pt.permute(c, perm, share)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Assist runs the assistant's side Q of one permute-and-share over conn: Q
// holds its share A_Q (n rows of equal width) and the peer runs Permute with
// a permutation of n rows and its share of the same size. Assist returns
// Q's new share B_Q (see Permute); Q learns nothing about the permutation.
// rnd, conn and ctx are as for Permute.
func (c Config) Assist(ctx context.Context, conn io.ReadWriter, share [][]uint64, rnd io.Reader) ([][]uint64, error) {
	var out [][]uint64
	err := run(ctx, conn, "Assist", rnd, func(pt *party) error {
		var err error
		out, err = pt.assist(c, share)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Shuffle runs the two-party shuffle of docs/design.md, "The pruning protocol" over conn: the
// parties hold additive shares (mod 2^64, or 2^128 with Ring128) of n rows, and afterwards fresh
// shares of the same rows in the order σ = π_2 ∘ π_1 (row i moves to
// position π_2(π_1(i))), where the First party draws π_1 and the Second
// party π_2, each uniformly with RandomPermutation from its rnd. It is one
// permute-and-share by First (Permute with π_1; Second assists), then one
// by Second on the resulting shares. Each party's permutation stays local,
// so σ is uniformly random and unknown to both (each knows only its own
// factor). The peer must call Shuffle with the other Role and a share of the
// same size. rnd, conn and ctx are as for Permute (rnd also draws the
// permutation); errors name the step that failed, and after ErrMismatch or
// ErrPeerAborted the stream is still in step.
func (c Config) Shuffle(ctx context.Context, conn io.ReadWriter, r Role, share [][]uint64, rnd io.Reader) ([][]uint64, error) {
	if r != First && r != Second {
		return nil, fmt.Errorf("cannot Shuffle: invalid role %v", r)
	}
	perm, err := RandomPermutation(len(share), rnd)
	if err != nil {
		return nil, fmt.Errorf("cannot Shuffle: %w", err)
	}
	return c.ShuffleWith(ctx, conn, r, perm, share, rnd)
}

// ShuffleWith is Shuffle with the caller's own factor perm of σ (a
// permutation of len(share) rows, in ApplyPermutation's convention) instead
// of one drawn from rnd. σ is hidden from each party only if the other's
// factor is uniformly random and secret: draw perm with RandomPermutation
// from a cryptographically secure source. It exists so that a caller can
// keep its factor, for instance to check in a test that each party's view
// is uniform once its own factor is undone. Shuffle(ctx, conn, r, share,
// rnd) is ShuffleWith with perm = RandomPermutation(len(share), rnd), drawn
// before any other use of rnd.
func (c Config) ShuffleWith(ctx context.Context, conn io.ReadWriter, r Role, perm []int, share [][]uint64, rnd io.Reader) ([][]uint64, error) {
	if r != First && r != Second {
		return nil, fmt.Errorf("cannot Shuffle: invalid role %v", r)
	}
	var err error
	steps := []func([][]uint64) ([][]uint64, error){
		func(s [][]uint64) ([][]uint64, error) { return c.Permute(ctx, conn, perm, s, rnd) },
		func(s [][]uint64) ([][]uint64, error) { return c.Assist(ctx, conn, s, rnd) },
	}
	if r == Second {
		steps[0], steps[1] = steps[1], steps[0]
	}
	for i, step := range steps {
		if share, err = step(share); err != nil {
			return nil, fmt.Errorf("cannot Shuffle: step %d of 2: %w", i+1, err)
		}
	}
	return share, nil
}

// party is one side of one call.
type party struct {
	ctx  context.Context
	conn io.ReadWriter
	s    *stream
	rand csprng
}

// run wraps body with the connection plumbing shared by both roles:
// cancellation through deadlines and error wrapping.
func run(ctx context.Context, conn io.ReadWriter, op string, rnd io.Reader, body func(*party) error) error {
	if conn == nil {
		return fmt.Errorf("cannot %s: nil connection", op)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("cannot %s: %w", op, err)
	}
	pt := &party{ctx: ctx, conn: conn, s: newStream(conn), rand: newRand(rnd)}
	stop := watch(ctx, conn)
	err := body(pt)
	stop()
	if err == nil {
		return nil
	}
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		err = fmt.Errorf("%w: %w", context.Cause(ctx), err)
	}
	if errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		err = fmt.Errorf("%w (peer closed the connection: %w)", err, io.ErrUnexpectedEOF)
	}
	return fmt.Errorf("cannot %s: %w", op, err)
}

// emptyRows returns n rows of width 0.
func emptyRows(n int) [][]uint64 { return make([][]uint64, n) }

// rowsOf returns flat (n·width words) as n rows that share it.
func rowsOf(flat []uint64, n, width int) [][]uint64 {
	rows := make([][]uint64, n)
	for i := range rows {
		rows[i] = flat[i*width : (i+1)*width : (i+1)*width]
	}
	return rows
}

// permute is P's side.
//
// P keeps, for every slot of the network, m = v + r: the value v that Q's
// share puts on that wire plus Q's mask r. The padding slots carry v = 0
// and r = 0, so they are not sent.
func (pt *party) permute(cfg Config, perm []int, share [][]uint64) ([][]uint64, error) {
	n := len(perm)
	width, argErr := checkShare(share, n)
	if argErr == nil {
		argErr = checkPerm(perm)
	}
	if argErr == nil {
		argErr = cfg.check(n, width)
	}
	size := paddedSize(n)
	needOT := argErr == nil && n > 0 && width > 0 && numSwitches(size) > 0
	me := hello{role: rolePermuter, ring: cfg.Ring, n: clamp32(n), width: clamp32(width)}
	var setup ot.COSenderSetup
	if needOT {
		var err error
		if setup, err = ot.GenerateCOSenderSetup(pt.rand, curve()); err != nil {
			return nil, fmt.Errorf("cannot set up OT: %w", err)
		}
		putPoint(me.point[:], setup.Ax, setup.Ay)
	}
	if argErr != nil {
		me.status, me.ring = statusAbort, Ring64 // an invalid ring must not make the hello malformed
	}
	peer, err := exchange(pt.conn, me)
	if err != nil {
		return nil, err
	}
	if argErr != nil {
		return nil, argErr
	}
	if err := agree(me, peer); err != nil {
		return nil, err
	}
	if n == 0 || width == 0 {
		return emptyRows(n), nil
	}

	// Flight 2 (Q→P): m_in = A_Q + r_in.
	m := make([]uint64, size*width)
	if err := pt.s.readWords(m[:n*width]); err != nil {
		return nil, fmt.Errorf("cannot read masked input: %w", err)
	}
	if needOT {
		if err := pt.ctx.Err(); err != nil {
			return nil, err
		}
		nw := newNetwork(size)
		bits := route(sourceOf(perm, size))
		var flags []bool
		for _, layer := range bits {
			flags = append(flags, layer...)
		}
		// Base OTs (read Q's points, send ciphertexts), then the IKNP
		// matrix (flight 3), then Q's hash seed (flight 4).
		rot := ot.NewROT(newCOSender(pt.s, setup), pt.rand, false, false)
		if err := libcall(func() error { return rot.InitReceiver(pt.s) }); err != nil {
			return nil, fmt.Errorf("cannot run base OT: %w", err)
		}
		keys := make([]ot.Label, len(flags))
		if err := libcall(func() error { return rot.Receive(flags, keys) }); err != nil {
			return nil, fmt.Errorf("cannot run OT extension: %w", err)
		}
		if err := pt.ctx.Err(); err != nil {
			return nil, err
		}
		// Flight 4, continued: the corrections, layer by layer.
		if err := evalPermuter(cfg.Ring, nw, bits, keys, m, width, pt.s.readWords); err != nil {
			return nil, err
		}
	}
	// B_P = π(A_P) + m_out.
	for i, j := range perm {
		row := m[j*width : (j+1)*width]
		cfg.Ring.add(row, row, share[i])
	}
	return rowsOf(m[:n*width], n, width), nil
}

// evalPermuter runs P's side of the switches on the slots m (size·width
// words), reading each layer's corrections with read. For the switch with
// slots (a, b), bit s, key K_s (expanded from keys[t]) and correction e:
//
//	c = m_a + K_0        if s = 0
//	c = m_b + K_1 + e    if s = 1
//	d = m_a + m_b - c
//
// It is the function that decodes the corrections message, so any bytes
// are acceptable; only a short read fails.
func evalPermuter(ring Ring, nw *network, bits [][]bool, keys []ot.Label, m []uint64, width int, read func([]uint64) error) error {
	ex := newExpander(width)
	k := make([]uint64, width)
	var corr []uint64
	t := 0
	for l, layer := range nw.layers {
		if cap(corr) < len(layer)*width {
			corr = make([]uint64, len(layer)*width)
		}
		corr = corr[:len(layer)*width]
		if err := read(corr); err != nil {
			return fmt.Errorf("cannot read corrections of layer %d: %w", l, err)
		}
		for i, sw := range layer {
			ex.expand(k, keys[t], uint64(t), purposeSwitch)
			ma, mb := m[sw.a*width:(sw.a+1)*width], m[sw.b*width:(sw.b+1)*width]
			e := corr[i*width : (i+1)*width]
			var sel uint64
			if bits[l][i] {
				sel = ^uint64(0)
			}
			ring.permuterSwitch(ma, mb, k, e, sel)
			t++
		}
	}
	return nil
}

// assist is Q's side. Q keeps, for every slot, its mask r; P's view of the
// slot is m = v + r.
func (pt *party) assist(cfg Config, share [][]uint64) ([][]uint64, error) {
	n := len(share)
	width, argErr := checkShare(share, -1)
	if argErr == nil {
		argErr = cfg.check(n, width)
	}
	me := hello{role: roleAssistant, ring: cfg.Ring, n: clamp32(n), width: clamp32(width)}
	if argErr != nil {
		me.status, me.ring = statusAbort, Ring64 // an invalid ring must not make the hello malformed
	}
	peer, err := exchange(pt.conn, me)
	if err != nil {
		return nil, err
	}
	if argErr != nil {
		return nil, argErr
	}
	if err := agree(me, peer); err != nil {
		return nil, err
	}
	if n == 0 || width == 0 {
		return emptyRows(n), nil
	}
	size := paddedSize(n)
	needOT := numSwitches(size) > 0

	// Flight 2: m_in = A_Q + r_in, with r_in uniform (the padding slots
	// carry v = 0 and r = 0 and are not sent).
	r := make([]uint64, size*width)
	if err := fillMasks(r[:n*width], pt.rand); err != nil {
		return nil, fmt.Errorf("cannot draw masks: %w", err)
	}
	mIn := make([]uint64, width)
	for i, row := range share {
		cfg.Ring.add(mIn, row, r[i*width:(i+1)*width])
		if err := pt.s.writeWords(mIn); err != nil {
			return nil, fmt.Errorf("cannot send masked input: %w", err)
		}
	}
	if needOT {
		// Base OTs: our points close flight 2; P's ciphertexts and IKNP
		// matrix are flight 3; our hash seed opens flight 4.
		rot := ot.NewROT(newCOReceiver(pt.s, pt.rand, getPoint(peer.point[:])), pt.rand, false, false)
		if err := libcall(func() error { return rot.InitSender(pt.s) }); err != nil {
			return nil, fmt.Errorf("cannot run base OT: %w", err)
		}
		if err := pt.ctx.Err(); err != nil {
			return nil, err
		}
		keys := make([]ot.Wire, numSwitches(size))
		if err := libcall(func() error { return rot.Send(keys) }); err != nil {
			return nil, fmt.Errorf("cannot run OT extension: %w", err)
		}
		if err := pt.ctx.Err(); err != nil {
			return nil, err
		}
		if err := evalAssistant(cfg.Ring, newNetwork(size), keys, r, width, pt.s.writeWords); err != nil {
			return nil, fmt.Errorf("cannot send corrections: %w", err)
		}
	}
	if err := pt.s.Flush(); err != nil {
		return nil, fmt.Errorf("cannot send: %w", err)
	}
	// B_Q = -r_out.
	out := r[:n*width]
	cfg.Ring.neg(out)
	return rowsOf(out, n, width), nil
}

// evalAssistant runs Q's side of the switches on the masks r, writing each
// layer's corrections with write. For the switch with slots (a, b) and keys
// K_0, K_1:
//
//	e   = r_a + K_0 - r_b - K_1
//	r_c = r_a + K_0,  r_d = r_b - K_0
//
// Q's masks do not depend on the switch bits.
func evalAssistant(ring Ring, nw *network, keys []ot.Wire, r []uint64, width int, write func([]uint64) error) error {
	ex := newExpander(width)
	k0, k1 := make([]uint64, width), make([]uint64, width)
	var corr []uint64
	t := 0
	for _, layer := range nw.layers {
		if cap(corr) < len(layer)*width {
			corr = make([]uint64, len(layer)*width)
		}
		corr = corr[:len(layer)*width]
		for i, sw := range layer {
			ex.expand(k0, keys[t].L0, uint64(t), purposeSwitch)
			ex.expand(k1, keys[t].L1, uint64(t), purposeSwitch)
			ra, rb := r[sw.a*width:(sw.a+1)*width], r[sw.b*width:(sw.b+1)*width]
			ring.assistantSwitch(ra, rb, k0, k1, corr[i*width:(i+1)*width])
			t++
		}
		if err := write(corr); err != nil {
			return err
		}
	}
	return nil
}

// fillMasks fills dst with uniform words: AES-128-CTR under a fresh key
// from rnd.
func fillMasks(dst []uint64, rnd io.Reader) error {
	var key [16]byte
	if _, err := io.ReadFull(rnd, key[:]); err != nil {
		return err
	}
	block, err := aes.NewCipher(key[:])
	if err != nil {
		return err
	}
	var iv [aes.BlockSize]byte
	binary.BigEndian.PutUint32(iv[8:12], purposeMask)
	ctr := cipher.NewCTR(block, iv[:])
	buf := make([]byte, min(8*len(dst), ioBlock))
	for len(dst) > 0 {
		k := min(len(dst), len(buf)/8)
		b := buf[:8*k]
		clear(b)
		ctr.XORKeyStream(b, b)
		getWords(dst[:k], b)
		dst = dst[k:]
	}
	return nil
}
