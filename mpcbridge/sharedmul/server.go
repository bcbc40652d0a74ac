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

// Mul runs the server's side of the lay.Count products Z_h = X_h·Y_h in
// one round trip: it receives the client's encrypted blocks of both
// operands (MsgInput), adds the encodings of its own shares x (Rows x
// Count·In, the X_h side by side) and y (the Count Y_h, In x Out each, one
// after the other), row-major integer shares at scale 2^F, multiplies, and
// sends every output sanitized (MsgOutput). It returns its share of
// round(2^F·[Z_1 | ... | Z_Count]), Rows x Count·Out row-major.
func (s *Server) Mul(ctx context.Context, conn Conn, lay Layout, x, y share.Vector) (share.Vector, error) {
	out, err := s.mul(ctx, conn, lay, x, y)
	if err != nil {
		return nil, fmt.Errorf("cannot Mul (server): %w", err)
	}
	return out, nil
}

func (s *Server) mul(ctx context.Context, conn Conn, lay Layout, x, y share.Vector) (share.Vector, error) {
	xr, yr, err := operandResidues(s.p, lay, x, y)
	if err != nil {
		return nil, err
	}
	if err := s.take(lay.TotalTargets()); err != nil {
		return nil, err
	}
	cts, err := s.receive(ctx, conn, lay, xr, yr)
	if err != nil {
		return nil, err
	}
	result := make(share.Vector, lay.TotalTargets())
	sc := make([]*scratch, s.workers)
	var rndMu sync.Mutex
	err = produceSend(ctx, s.workers, lay.Outputs(), func(w, o int) ([]byte, error) {
		if sc[w] == nil {
			rndMu.Lock()
			ms, err := matmul.NewMaskSampler(s.rnd, s.p.MaskBits(lay))
			rndMu.Unlock()
			if err != nil {
				return nil, err
			}
			sc[w] = &scratch{enc: s.enc.ShallowCopy(), zero: polymat.NewCiphertext(s.p.ring)}
			sc[w].ms = ms
		}
		return s.output(sc[w], lay, cts, o, result)
	}, func(ctx context.Context, b []byte) error {
		return conn.Send(ctx, MsgOutput, b)
	})
	if err != nil {
		return nil, err
	}
	return result, nil
}

// receive returns every operand block combined with the server's share:
// c0 + Enc(own share), c1 from the seed, NTT domain; the blocks are
// decoded and combined as they arrive.
func (s *Server) receive(ctx context.Context, conn Conn, lay Layout, xr, yr polymat.ResidueMatrix) ([][2]ring.Poly, error) {
	rp := s.p.ring
	cts := make([][2]ring.Poly, lay.Operands())
	err := recvProcess(ctx, s.workers, lay.Operands(), func(ctx context.Context) ([]byte, error) {
		return conn.Recv(ctx, MsgInput)
	}, func(_, k int, b []byte) error {
		rq := rp.RingQ()
		c0, c1, pt := rq.NewPoly(), rq.NewPoly(), rq.NewPoly()
		seed, err := decodeInput(rp, lay, k, b, c0)
		if err != nil {
			return err
		}
		if err := polymat.ExpandC1(rp, seed, c1); err != nil {
			return err
		}
		lay.encodeOperand(xr, yr, k, pt)
		rq.NTT(pt, pt)
		rq.Add(c0, pt, c0)
		cts[k] = [2]ring.Poly{c0, c1}
		return nil
	})
	return cts, err
}

// scratch is one worker's state for the outputs.
type scratch struct {
	enc  *rlwe.Encryptor
	zero *rlwe.Ciphertext
	ms   *matmul.MaskSampler
}

// output computes output o, sanitizes it, writes this party's share of
// its targets into result and returns its message.
func (s *Server) output(w0 *scratch, lay Layout, cts [][2]ring.Poly, o int, result share.Vector) ([]byte, error) {
	rq := s.p.ring.RingQ()
	i, j := o/lay.ColBlocks(), o%lay.ColBlocks()
	// The third part, Σ c1_A·c1_B, depends on the client's seeds alone:
	// the client computes it (package documentation).
	d0, d1 := rq.NewPoly(), rq.NewPoly()
	lo, hi := lay.InnerRange(j)
	for a := lo; a < hi; a++ {
		A := cts[lay.InputIndex(i, a)]
		B := cts[lay.Inputs()+lay.WeightIndex(a, j)]
		rq.MulCoeffsBarrettThenAdd(A[0], B[0], d0)
		rq.MulCoeffsBarrettThenAdd(A[0], B[1], d1)
		rq.MulCoeffsBarrettThenAdd(A[1], B[0], d1)
	}
	// (a) A fresh public-key encryption of zero for this output alone: c1
	// becomes a fresh RLWE sample under the server's u.
	if !s.skipRerandomize {
		if err := w0.enc.EncryptZero(w0.zero); err != nil {
			return nil, err
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
	for l, q := range s.p.ring.Moduli() {
		limb := d0.Coeffs[l]
		for k, t := range targets {
			limb[t] = (limb[t] + matmul.Residue(masks[k], q)) % q
		}
	}
	shift := uint(s.p.Shift())
	for k, e := range entries {
		result[e] = matmul.ShiftRound(masks[k].Neg(), shift)
	}
	// (c) c0 at the targets only, c1 whole, both rounded.
	return s.p.encodeOutput(lay, o, targets, d0, d1), nil
}
