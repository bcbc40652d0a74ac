package gc

import (
	"crypto/elliptic"
	"errors"
	"fmt"
	"math/big"

	"github.com/markkurossi/mpc/ot"
)

// The base OT is the library's Chou-Orlandi OT on P-256, driven through its
// pure helpers (ot.GenerateCOSenderSetup, ot.BuildCOChoices,
// ot.EncryptCOCiphertexts, ot.DecryptCOCiphertexts) so that we choose the
// message layout: the sender's first message A rides in its hello, points
// and ciphertexts have fixed sizes (no peer-chosen lengths), and the
// receiver can do other work while the sender encrypts. The library's own
// ot.CO type would spend a flight on a curve-name message and read
// length-prefixed points.

const (
	pointSize    = 64 // affine X || Y, 32 bytes each
	coCipherSize = 2 * labelSize
)

// curve returns the base OT's curve (P-256; immutable).
func curve() elliptic.Curve { return elliptic.P256() }

func putPoint(dst []byte, x, y *big.Int) {
	x.FillBytes(dst[:32])
	y.FillBytes(dst[32:pointSize])
}

// getPoint decodes a point; the helpers reject points not on the curve
// (including the all-zero encoding).
func getPoint(src []byte) ot.ECPoint {
	return ot.ECPoint{X: new(big.Int).SetBytes(src[:32]), Y: new(big.Int).SetBytes(src[32:pointSize])}
}

// coSender is the sending side of a Chou-Orlandi OT whose first message A
// (from setup) already went out in the hello. It implements ot.OT for the
// library's IKNP (as the extension receiver's base OT) and is called
// directly for ChouOrlandi.
type coSender struct {
	pt    *party
	setup ot.COSenderSetup
}

// InitSender and InitReceiver do nothing: ot.COT calls its base's Init
// method of the COT's own role (InitSender on the IKNP sender, which is the
// base receiver), and our first message already went out in the hello.
func (s *coSender) InitSender(ot.IO) error { return nil }

func (s *coSender) InitReceiver(ot.IO) error { return nil }

func (s *coSender) Receive([]bool, []ot.Label) error {
	return errors.New("gc: coSender cannot receive")
}

// Send reads the receiver's points B_i and answers with both labels of each
// wire encrypted under H(aB_i) and H(a(B_i - A)).
func (s *coSender) Send(wires []ot.Wire) error {
	buf := make([]byte, len(wires)*pointSize)
	if err := recvFull(s.pt.pc, buf); err != nil {
		return fmt.Errorf("cannot read OT points: %w", err)
	}
	points := make([]ot.ECPoint, len(wires))
	for i := range points {
		points[i] = getPoint(buf[i*pointSize:])
	}
	cts, err := ot.EncryptCOCiphertexts(curve(), s.setup, points, wires)
	if err != nil {
		return fmt.Errorf("%w: OT points: %w", ErrMalformed, err)
	}
	out := make([]byte, len(cts)*coCipherSize)
	for i, ct := range cts {
		copy(out[i*coCipherSize:], ct.Zero[:])
		copy(out[i*coCipherSize+labelSize:], ct.One[:])
	}
	if err := sendRaw(s.pt.pc, out); err != nil {
		return err
	}
	return s.pt.flush()
}

// coReceiver is the receiving side of a Chou-Orlandi OT whose sender's A
// came in the peer's hello. overlap, if set, runs once after our points are
// sent, while the sender computes its answer.
type coReceiver struct {
	pt      *party
	a       ot.ECPoint
	overlap func() error
}

func (r *coReceiver) InitSender(ot.IO) error { return nil }

func (r *coReceiver) InitReceiver(ot.IO) error { return nil }

func (r *coReceiver) Send([]ot.Wire) error { return errors.New("gc: coReceiver cannot send") }

// Receive sends B_i = b_i G + flags_i A and decrypts the chosen labels.
func (r *coReceiver) Receive(flags []bool, result []ot.Label) error {
	bundle, points, err := ot.BuildCOChoices(r.pt.rand, curve(), r.a.X, r.a.Y, flags)
	if err != nil {
		return fmt.Errorf("%w: OT point A: %w", ErrMalformed, err)
	}
	buf := make([]byte, len(points)*pointSize)
	for i, pt := range points {
		putPoint(buf[i*pointSize:], pt.X, pt.Y)
	}
	if err := sendRaw(r.pt.pc, buf); err != nil {
		return err
	}
	if err := r.pt.flush(); err != nil {
		return err
	}
	if f := r.overlap; f != nil {
		r.overlap = nil
		if err := f(); err != nil {
			return err
		}
	}
	in := make([]byte, len(flags)*coCipherSize)
	if err := recvFull(r.pt.pc, in); err != nil {
		return fmt.Errorf("cannot read OT ciphertexts: %w", err)
	}
	cts := make([]ot.LabelCiphertext, len(flags))
	for i := range cts {
		copy(cts[i].Zero[:], in[i*coCipherSize:])
		copy(cts[i].One[:], in[i*coCipherSize+labelSize:])
	}
	labels, err := ot.DecryptCOCiphertexts(curve(), bundle, cts)
	if err != nil {
		return err
	}
	if len(labels) != len(result) {
		return fmt.Errorf("gc: OT returned %d labels for %d choices", len(labels), len(result))
	}
	copy(result, labels)
	return nil
}

// libcall runs f, which calls into the library on data from the peer, and
// turns a panic into ErrMalformed: the library's IKNP sender indexes its
// buffers with peer-supplied chunk sizes and panics on a malformed chunk. It
// does not panic on I/O errors (those come back as errors).
func libcall(f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: library panicked: %v", ErrMalformed, r)
		}
	}()
	return f()
}
