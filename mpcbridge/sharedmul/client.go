package sharedmul

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"math/big"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"
	"github.com/tuneinsight/lattigo/v5/ring"

	"github.com/cipherprune/cipherprune/ckks/polymat"
	"github.com/cipherprune/cipherprune/mpcbridge/matmul"
	"github.com/cipherprune/cipherprune/mpcbridge/share"
)

// Client is the key owner's side. It encrypts only under its secret key
// (seeded) and decrypts only what the server masked. It runs one product
// at a time.
type Client struct {
	p       Parameters
	enc     *polymat.Encryptor
	s, s2   ring.Poly // s and s², NTT domain, Montgomery form
	workers int
	rnd     io.Reader
	crt     crt
	c1s     []ring.Poly // this product's c1 of every operand block (NTT)
}

// NewClient returns the client side for the secret key sk (of the ring of
// p) on workers goroutines. rnd draws the seeds; nil means crypto/rand.
func NewClient(p Parameters, sk *rlwe.SecretKey, workers int, rnd io.Reader) (*Client, error) {
	enc, err := polymat.NewEncryptor(p.ring, sk)
	if err != nil {
		return nil, fmt.Errorf("cannot NewClient: %w", err)
	}
	if rnd == nil {
		rnd = rand.Reader
	}
	rq := p.ring.RingQ()
	c := &Client{p: p, enc: enc, s: *sk.Value.Q.CopyNew(), s2: rq.NewPoly(), workers: max(1, workers), rnd: rnd, crt: newCRT(p.ring)}
	rq.MulCoeffsMontgomery(c.s, c.s, c.s2)
	return c, nil
}

// Params returns the protocol parameters.
func (c *Client) Params() Parameters { return c.p }

// Mul runs the client's side of the lay.Count products Z_h = X_h·Y_h in
// one round trip: it encrypts its shares x (Rows x Count·In, the X_h side
// by side) and y (the Count Y_h, In x Out each, one after the other),
// row-major integer shares of round(2^F·X) and round(2^F·Y), block by
// block (MsgInput), receives the sanitized outputs (MsgOutput) and returns
// its share of round(2^F·[Z_1 | ... | Z_Count]), Rows x Count·Out
// row-major.
func (c *Client) Mul(ctx context.Context, conn Conn, lay Layout, x, y share.Vector) (share.Vector, error) {
	if err := c.send(ctx, conn, lay, x, y); err != nil {
		return nil, fmt.Errorf("cannot Mul (client): %w", err)
	}
	out, err := c.receive(ctx, conn, lay)
	if err != nil {
		return nil, fmt.Errorf("cannot Mul (client): %w", err)
	}
	return out, nil
}

// send encrypts and sends the operand blocks, each as soon as it and
// those before it are ready.
func (c *Client) send(ctx context.Context, conn Conn, lay Layout, x, y share.Vector) error {
	rp := c.p.ring
	xr, yr, err := operandResidues(c.p, lay, x, y)
	if err != nil {
		return err
	}
	seeds := make([]byte, lay.Operands()*polymat.SeedSize)
	if _, err := io.ReadFull(c.rnd, seeds); err != nil {
		return fmt.Errorf("cannot draw seeds: %w", err)
	}
	c.c1s = make([]ring.Poly, lay.Operands())
	encs := make([]*polymat.Encryptor, c.workers)
	return produceSend(ctx, c.workers, lay.Operands(), func(w, k int) ([]byte, error) {
		if encs[w] == nil {
			encs[w] = c.enc.ShallowCopy()
		}
		rq := rp.RingQ()
		pt, c0 := rq.NewPoly(), rq.NewPoly()
		lay.encodeOperand(xr, yr, k, pt)
		seed := seeds[k*polymat.SeedSize : (k+1)*polymat.SeedSize]
		if err := encs[w].EncryptSeeded(pt, seed, c0); err != nil {
			return nil, err
		}
		// Its own c1, for the c2 = Σ c1_A·c1_B of the outputs.
		c.c1s[k] = rq.NewPoly()
		if err := polymat.ExpandC1(rp, seed, c.c1s[k]); err != nil {
			return nil, err
		}
		return encodeInput(rp, lay, k, seed, c0), nil
	}, func(ctx context.Context, b []byte) error {
		return conn.Send(ctx, MsgInput, b)
	})
}

// receive decrypts the outputs as they arrive.
func (c *Client) receive(ctx context.Context, conn Conn, lay Layout) (share.Vector, error) {
	out := make(share.Vector, lay.TotalTargets())
	err := recvProcess(ctx, c.workers, lay.Outputs(), func(ctx context.Context) ([]byte, error) {
		return conn.Recv(ctx, MsgOutput)
	}, func(_, o int, b []byte) error {
		return c.decrypt(lay, o, b, out)
	})
	return out, err
}

// decrypt decodes output o, computes p = c0 + c1·s + c2·s² at its targets,
// centred modulo Q, checks |p| < 2^(β+2) and writes round(p/2^(F+2G)) to
// the target entries of out.
func (c *Client) decrypt(lay Layout, o int, msg []byte, out share.Vector) error {
	rp := c.p.ring
	rq := rp.RingQ()
	c1, c2 := rq.NewPoly(), rq.NewPoly()
	c0, err := c.p.decodeOutput(lay, o, msg, c1)
	if err != nil {
		return err
	}
	rq.NTT(c1, c1)
	i, j := o/lay.ColBlocks(), o%lay.ColBlocks()
	lo, hi := lay.InnerRange(j)
	for a := lo; a < hi; a++ {
		rq.MulCoeffsBarrettThenAdd(c.c1s[lay.InputIndex(i, a)], c.c1s[lay.Inputs()+lay.WeightIndex(a, j)], c2)
	}
	rq.MulCoeffsMontgomery(c1, c.s, c1)
	rq.MulCoeffsMontgomeryThenAdd(c2, c.s2, c1)
	rq.INTT(c1, c1)
	targets := lay.AppendTargets(nil, o)
	entries := lay.AppendTargetEntries(nil, o)
	limit := new(big.Int).Lsh(big.NewInt(1), uint(c.p.MaskBits(lay)+2))
	res := make([]uint64, rp.Limbs())
	v := new(big.Int)
	shift := uint(c.p.Shift())
	for k, t := range targets {
		for l, q := range rp.Moduli() {
			res[l] = (c0[l][k] + c1.Coeffs[l][t]) % q
		}
		c.crt.centred(res, v)
		if v.CmpAbs(limit) >= 0 {
			return fmt.Errorf("output %d target %d decrypts to %d bits, over the %d the masks allow (wrong key or parameters?)", o, k, v.BitLen(), limit.BitLen()-1)
		}
		x, ok := share.Int128FromBig(v)
		if !ok {
			return errors.New("decrypted value out of 128 bits")
		}
		out[entries[k]] = matmul.ShiftRound(x, shift)
	}
	return nil
}

// crt reconstructs integers modulo Q from their residues.
type crt struct {
	q, half *big.Int
	basis   []*big.Int // (Q/q_l)·((Q/q_l)^-1 mod q_l)
}

func newCRT(rp polymat.Parameters) crt {
	q := rp.Q()
	c := crt{q: q, half: new(big.Int).Rsh(q, 1)}
	for _, ql := range rp.Moduli() {
		b := new(big.Int).SetUint64(ql)
		hat := new(big.Int).Quo(q, b)
		inv := new(big.Int).ModInverse(new(big.Int).Mod(hat, b), b)
		c.basis = append(c.basis, hat.Mul(hat, inv))
	}
	return c
}

// centred writes into v the representative in (-Q/2, Q/2] of the integer
// with residues res.
func (c crt) centred(res []uint64, v *big.Int) {
	v.SetInt64(0)
	t := new(big.Int)
	for l, r := range res {
		v.Add(v, t.Mul(c.basis[l], t.SetUint64(r)))
	}
	v.Mod(v, c.q)
	if v.Cmp(c.half) > 0 {
		v.Sub(v, c.q)
	}
}
