package matmul

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"
	"github.com/tuneinsight/lattigo/v5/ring"

	"github.com/cipherprune/cipherprune/ckks/polymat"
	"github.com/cipherprune/cipherprune/mpcbridge/share"
)

// Client is the key owner's side. It encrypts only under its secret key
// (seeded) and decrypts only what the server masked. It runs one product
// at a time.
type Client struct {
	mu      sync.Mutex
	p       Parameters
	ri      *ringInfo
	sk      *rlwe.SecretKey
	encs    []*polymat.Encryptor
	workers int
	rnd     io.Reader
}

// NewClient returns the client side for the secret key sk (of the ring of
// p), working on workers goroutines. rnd draws the seeds of the seeded
// ciphertexts; nil means crypto/rand. The encryption noise always comes
// from Lattigo's own source.
func NewClient(p Parameters, sk *rlwe.SecretKey, workers int, rnd io.Reader) (*Client, error) {
	enc, err := polymat.NewEncryptor(p.ring, sk)
	if err != nil {
		return nil, fmt.Errorf("cannot NewClient: %w", err)
	}
	if rnd == nil {
		rnd = rand.Reader
	}
	c := &Client{p: p, ri: newRingInfo(p), sk: sk, workers: max(1, workers), rnd: &lockedReader{r: rnd}}
	c.encs = []*polymat.Encryptor{enc}
	for len(c.encs) < c.workers {
		c.encs = append(c.encs, enc.ShallowCopy())
	}
	return c, nil
}

// Params returns the protocol parameters.
func (c *Client) Params() Parameters { return c.p }

// MatMul runs the client's side of one product on the layout both parties
// agreed on: it encrypts its input x (Rows x In, row-major: its integer
// share of round(2^F·X), or round(2^F·X) itself when the server adds no
// share) block by block, sends it (MsgInput), receives the masked outputs
// (MsgOutput) and returns its share of round(2^F·Y), Rows x Out row-major.
func (c *Client) MatMul(ctx context.Context, conn Conn, lay polymat.Layout, x share.Vector) (share.Vector, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if lay.N() != c.p.ring.N() {
		return nil, fmt.Errorf("cannot MatMul: layout for N = %d, ring %v", lay.N(), c.p.ring)
	}
	if len(x) != lay.Rows*lay.In {
		return nil, fmt.Errorf("cannot MatMul: input of %d values, want %d", len(x), lay.Rows*lay.In)
	}
	if err := c.sendInputs(ctx, conn, lay, x); err != nil {
		return nil, fmt.Errorf("cannot MatMul: %w", err)
	}
	out, err := c.receiveOutputs(ctx, conn, lay)
	if err != nil {
		return nil, fmt.Errorf("cannot MatMul: %w", err)
	}
	return out, nil
}

// sendInputs encrypts the input blocks, a message of Chunk ciphertexts at
// a time.
func (c *Client) sendInputs(ctx context.Context, conn Conn, lay polymat.Layout, x share.Vector) error {
	xr := scaledResidues(c.p, lay.Rows, lay.In, x)
	ringQ := c.p.ring.RingQ()
	total := lay.Inputs()
	cts := make([]inputCt, min(total, c.p.chunk))
	bufs := make([]ring.Poly, c.workers)
	for k := range bufs {
		bufs[k] = ringQ.NewPoly()
	}
	for first := 0; first < total; first += c.p.chunk {
		count := min(c.p.chunk, total-first)
		err := forEach(ctx, c.workers, count, func(worker, k int) error {
			idx := first + k
			m := bufs[worker]
			lay.EncodeInput(xr, idx/lay.InnerBlocks(), idx%lay.InnerBlocks(), m)
			ct := &cts[k]
			if _, err := io.ReadFull(c.rnd, ct.seed[:]); err != nil {
				return fmt.Errorf("cannot draw a seed: %w", err)
			}
			if ct.c0.N() == 0 {
				ct.c0 = ringQ.NewPoly()
			}
			return c.encs[worker].EncryptSeeded(m, ct.seed[:], ct.c0)
		})
		if err != nil {
			return err
		}
		if err := conn.Send(ctx, MsgInput, c.p.encodeInput(lay, first, cts[:count])); err != nil {
			return fmt.Errorf("send: %w", err)
		}
	}
	return nil
}

// receiveOutputs decrypts the masked outputs into the client's shares.
func (c *Client) receiveOutputs(ctx context.Context, conn Conn, lay polymat.Layout) (share.Vector, error) {
	shares := make(share.Vector, lay.Rows*lay.Out)
	ops := make([]*opener, c.workers)
	for k := range ops {
		ops[k] = c.newOpener()
	}
	total := lay.Outputs()
	for next := 0; next < total; {
		payload, err := conn.Recv(ctx, MsgOutput)
		if err != nil {
			return nil, fmt.Errorf("receive: %w", err)
		}
		cts, err := c.p.decodeOutput(payload, lay, next, c.ri.top)
		if err != nil {
			return nil, fmt.Errorf("bad output message: %w", err)
		}
		err = forEach(ctx, c.workers, len(cts), func(worker, k int) error {
			seq := next + k
			if err := ops[worker].open(lay, outputSeq(lay, seq), &cts[k], shares); err != nil {
				return fmt.Errorf("output %d: %w", seq, err)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		next += len(cts)
	}
	return shares, nil
}

// opener is one worker's state for decrypting outputs.
type opener struct {
	c       *Client
	c1      ring.Poly
	c0      [][]uint64 // residues of c0 at the targets, by limb
	res     []uint64
	targets []int
	entries []int
	p       []share.Int128
}

func (c *Client) newOpener() *opener {
	return &opener{c: c, c1: c.p.ring.RingQ().NewPoly(), res: make([]uint64, c.p.ring.Limbs()), c0: make([][]uint64, c.p.ring.Limbs())}
}

var errRange = errors.New("masked value out of range (wrong key or parameters?)")

// open decrypts output o at its targets and writes the client's shares
// round(p / 2^(G+Fw)).
func (op *opener) open(lay polymat.Layout, o int, ct *outputCt, shares share.Vector) error {
	p, err := op.openRaw(lay, o, ct)
	if err != nil {
		return err
	}
	shift := uint(op.c.p.Shift())
	for i, v := range p {
		shares[op.entries[i]] = shiftRound(v, shift)
	}
	return nil
}

// openRaw decrypts output o at its targets, in Layout.AppendTargets
// order: p = c0 + c1·s modulo Q, centred, checked |p| < 2^(β+2). It sets
// op.entries to the targets' indices in Y. The slice is reused.
func (op *opener) openRaw(lay polymat.Layout, o int, ct *outputCt) ([]share.Int128, error) {
	c := op.c
	ringQ := c.p.ring.RingQ()
	for j, y := range ct.c1 {
		c.ri.expand(y, op.c1.Coeffs, j)
	}
	ringQ.NTT(op.c1, op.c1)
	ringQ.MulCoeffsMontgomery(op.c1, c.sk.Value.Q, op.c1)
	ringQ.INTT(op.c1, op.c1)
	t := len(ct.c0)
	for l := range op.c0 {
		if cap(op.c0[l]) < t {
			op.c0[l] = make([]uint64, t)
		}
		op.c0[l] = op.c0[l][:t]
	}
	for i, y := range ct.c0 {
		c.ri.expand(y, op.c0, i)
	}
	op.targets = lay.AppendTargets(op.targets[:0], o)
	op.entries = lay.AppendTargetEntries(op.entries[:0], o)
	if len(op.targets) != t {
		return nil, fmt.Errorf("%d values of c0 for %d targets", t, len(op.targets))
	}
	if cap(op.p) < t {
		op.p = make([]share.Int128, t)
	}
	p := op.p[:t]
	limit := c.p.maskBits + 2
	for i, e := range op.targets {
		for l, q := range c.ri.moduli {
			v := op.c0[l][i] + op.c1.Coeffs[l][e]
			if v >= q {
				v -= q
			}
			op.res[l] = v
		}
		p[i] = c.ri.centred(c.ri.reconstruct(op.res))
		if p[i].BitLen() > limit {
			return nil, errRange
		}
	}
	return p, nil
}
