package sharedmul

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
	"github.com/cipherprune/cipherprune/mpcbridge/matmul"
	"github.com/cipherprune/cipherprune/mpcbridge/share"
)

// Server is the side without the secret key. It holds the client's public
// key (for the re-randomization), runs one product at a time and counts the
// outputs it masks against the session's bound: use one Server per session.
type Server struct {
	p       Parameters
	enc     *rlwe.Encryptor
	workers int
	rnd     io.Reader
	mu      sync.Mutex
	used    int64
	// skipRerandomize is for the leakage test only: a server that sends
	// the product without the fresh encryption of zero.
	skipRerandomize bool
}

// NewServer returns the server side for the client's public key pk, on
// workers goroutines. rnd keys the mask streams; nil means crypto/rand.
// The encryptions of zero draw from Lattigo's own source (crypto/rand).
func NewServer(p Parameters, pk *rlwe.PublicKey, workers int, rnd io.Reader) (*Server, error) {
	if pk == nil {
		return nil, errors.New("cannot NewServer: nil public key")
	}
	if pk.Value[0].Q.N() != p.ring.N() || pk.LevelQ() != p.ring.Limbs()-1 {
		return nil, fmt.Errorf("cannot NewServer: public key of degree %d at level %d, ring %v", pk.Value[0].Q.N(), pk.LevelQ(), p.ring)
	}
	if rnd == nil {
		rnd = rand.Reader
	}
	return &Server{p: p, enc: rlwe.NewEncryptor(p.ring.RLWE(), pk), workers: max(1, workers), rnd: rnd}, nil
}

// Params returns the protocol parameters.
func (s *Server) Params() Parameters { return s.p }

// Masked returns the outputs masked so far in this session.
func (s *Server) Masked() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.used
}

func (s *Server) take(n int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	limit := int64(1) << s.p.lit.LogMaxValues
	if int64(n) > limit-s.used {
		return fmt.Errorf("%d more outputs would exceed the session's %d masked outputs (%d used): start a new session", n, limit, s.used)
	}
	s.used += int64(n)
	return nil
}

// Mul runs the server's side of Z = X·Y on lay: it receives the client's
// encrypted blocks of both operands (MsgInput), adds the encodings of its
// own shares x (Rows x In) and y (In x Out), row-major integer shares at
// scale 2^F, multiplies, and sends every output sanitized (MsgOutput). It
// returns its share of round(2^F·Z), Rows x Out row-major.
func (s *Server) Mul(ctx context.Context, conn Conn, lay polymat.Layout, x, y share.Vector) (share.Vector, error) {
	out, err := s.mul(ctx, conn, lay, x, y)
	if err != nil {
		return nil, fmt.Errorf("cannot Mul (server): %w", err)
	}
	return out, nil
}

func (s *Server) mul(ctx context.Context, conn Conn, lay polymat.Layout, x, y share.Vector) (share.Vector, error) {
	p, rp := s.p, s.p.ring
	if err := checkOperands(p, lay, x, y); err != nil {
		return nil, err
	}
	g := p.lit.GuardBits
	xr, err := residues(rp, lay.Rows, lay.In, x, g)
	if err != nil {
		return nil, err
	}
	yr, err := residues(rp, lay.In, lay.Out, y, g)
	if err != nil {
		return nil, err
	}
	if err := s.take(lay.TotalTargets()); err != nil {
		return nil, err
	}
	rq := rp.RingQ()
	// Receive every block: c0 + Enc(own share), c1 from the seed; NTT
	// domain.
	cts := make([][2]ring.Poly, operands(lay))
	pt := rq.NewPoly()
	for k := range cts {
		b, err := conn.Recv(ctx, MsgInput)
		if err != nil {
			return nil, err
		}
		c0, c1 := rq.NewPoly(), rq.NewPoly()
		seed, err := decodeInput(rp, lay, k, b, c0)
		if err != nil {
			return nil, err
		}
		if err := polymat.ExpandC1(rp, seed, c1); err != nil {
			return nil, err
		}
		encodeOperand(lay, xr, yr, k, pt)
		rq.NTT(pt, pt)
		rq.Add(c0, pt, c0)
		cts[k] = [2]ring.Poly{c0, c1}
	}
	beta := p.MaskBits(lay)
	shift := uint(p.Shift())
	result := make(share.Vector, lay.TotalTargets())
	msgs := make([][]byte, lay.Outputs())
	type scratch struct {
		enc  *rlwe.Encryptor
		zero *rlwe.Ciphertext
		ms   *matmul.MaskSampler
		tmp  ring.Poly
	}
	sc := make([]*scratch, s.workers)
	var rndMu sync.Mutex
	err = polymat.Parallel(ctx, s.workers, lay.Outputs(), func(w, o int) error {
		if sc[w] == nil {
			rndMu.Lock()
			ms, err := matmul.NewMaskSampler(s.rnd, beta)
			rndMu.Unlock()
			if err != nil {
				return err
			}
			sc[w] = &scratch{enc: s.enc.ShallowCopy(), zero: polymat.NewCiphertext(rp), ms: ms, tmp: rq.NewPoly()}
		}
		w0 := sc[w]
		i, j := o/lay.ColBlocks(), o%lay.ColBlocks()
		// The third part, Σ c1_A·c1_B, depends on the client's seeds
		// alone: the client computes it (package documentation).
		d0, d1 := rq.NewPoly(), rq.NewPoly()
		for a := 0; a < lay.InnerBlocks(); a++ {
			A := cts[lay.InputIndex(i, a)]
			B := cts[lay.Inputs()+lay.WeightIndex(a, j)]
			rq.MulCoeffsBarrettThenAdd(A[0], B[0], d0)
			rq.MulCoeffsBarrettThenAdd(A[0], B[1], d1)
			rq.MulCoeffsBarrettThenAdd(A[1], B[0], d1)
		}
		// (a) A fresh public-key encryption of zero for this output
		// alone: c1 becomes a fresh RLWE sample under the server's u.
		if !s.skipRerandomize {
			if err := w0.enc.EncryptZero(w0.zero); err != nil {
				return err
			}
			rq.Add(d0, w0.zero.Value[0], d0)
			rq.Add(d1, w0.zero.Value[1], d1)
		}
		rq.INTT(d0, d0)
		rq.INTT(d1, d1)
		// (b) The masks on the targets; this party's share is -M.
		targets := lay.AppendTargets(nil, o)
		entries := lay.AppendTargetEntries(nil, o)
		masks := make([]share.Int128, len(targets))
		w0.ms.Sample(masks)
		for l, q := range rp.Moduli() {
			limb := d0.Coeffs[l]
			for k, t := range targets {
				limb[t] = (limb[t] + matmul.Residue(masks[k], q)) % q
			}
		}
		for k, e := range entries {
			result[e] = matmul.ShiftRound(masks[k].Neg(), shift)
		}
		// (c) c0 at the targets only, c1 whole.
		msgs[o] = encodeOutput(rp, lay, o, targets, d0, d1)
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, m := range msgs {
		if err := conn.Send(ctx, MsgOutput, m); err != nil {
			return nil, err
		}
	}
	return result, nil
}
