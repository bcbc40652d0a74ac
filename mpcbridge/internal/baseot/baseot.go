// Package baseot adapts the Chou-Orlandi base OT of
// github.com/markkurossi/mpc to the bridge's protocols (mpcbridge/gc and
// mpcbridge/shuffle), which both run the library's IKNP extension on top.
//
// The library's ot.CO type spends a flight on a curve-name message and reads
// length-prefixed points. These adapters instead drive its pure helpers
// (ot.GenerateCOSenderSetup, ot.BuildCOChoices, ot.EncryptCOCiphertexts,
// ot.DecryptCOCiphertexts) so that the calling protocol fixes the message
// layout: the sender's first message A rides in the protocol's own hello,
// and points and ciphertexts have fixed sizes, so no length is chosen by the
// peer. Each adapter implements ot.OT for one direction only.
package baseot

import (
	"crypto/elliptic"
	"errors"
	"fmt"
	"io"
	"math/big"

	"github.com/markkurossi/mpc/ot"
)

const (
	// PointSize is the size of an encoded P-256 point: affine X || Y.
	PointSize = 64
	// LabelSize is the size of a wire label.
	LabelSize = 16
	// CipherSize is the size of one OT's pair of encrypted labels.
	CipherSize = 2 * LabelSize
)

// Curve returns the base OT's curve (P-256; immutable).
func Curve() elliptic.Curve { return elliptic.P256() }

// PutPoint encodes (x, y) into dst[:PointSize].
func PutPoint(dst []byte, x, y *big.Int) {
	x.FillBytes(dst[:32])
	y.FillBytes(dst[32:PointSize])
}

// GetPoint decodes src[:PointSize]; the library's helpers reject points not
// on the curve (the all-zero encoding included).
func GetPoint(src []byte) ot.ECPoint {
	return ot.ECPoint{X: new(big.Int).SetBytes(src[:32]), Y: new(big.Int).SetBytes(src[32:PointSize])}
}

// Stream is the byte stream an adapter reads and writes: the calling
// protocol's buffered connection.
type Stream interface {
	// ReadFull fills b or fails.
	ReadFull(b []byte) error
	// Write buffers b for sending.
	Write(b []byte) error
	// Flush sends what is buffered.
	Flush() error
}

// Sender is the sending side of the base OTs, whose first message A (from
// Setup) already went out in the caller's hello.
type Sender struct {
	S     Stream
	Setup ot.COSenderSetup
	// Flush makes Send end its flight; leave it false when the caller's
	// next message (the IKNP matrix) goes out in the same flight.
	Flush bool
	// Malformed is the caller's error for bad peer data.
	Malformed error
}

// InitSender does nothing: the first message already went out.
func (s *Sender) InitSender(ot.IO) error { return nil }

// InitReceiver does nothing (the sender never receives).
func (s *Sender) InitReceiver(ot.IO) error { return nil }

// Receive fails: a Sender only sends.
func (s *Sender) Receive([]bool, []ot.Label) error {
	return errors.New("baseot: a Sender cannot receive")
}

// Send reads the receiver's points B_i and answers with both labels of each
// wire encrypted under H(aB_i) and H(a(B_i - A)).
func (s *Sender) Send(wires []ot.Wire) error {
	buf := make([]byte, len(wires)*PointSize)
	if err := s.S.ReadFull(buf); err != nil {
		return fmt.Errorf("cannot read OT points: %w", err)
	}
	points := make([]ot.ECPoint, len(wires))
	for i := range points {
		points[i] = GetPoint(buf[i*PointSize:])
	}
	cts, err := ot.EncryptCOCiphertexts(Curve(), s.Setup, points, wires)
	if err != nil {
		return fmt.Errorf("%w: OT points: %w", s.Malformed, err)
	}
	out := make([]byte, len(cts)*CipherSize)
	for i, ct := range cts {
		copy(out[i*CipherSize:], ct.Zero[:])
		copy(out[i*CipherSize+LabelSize:], ct.One[:])
	}
	if err := s.S.Write(out); err != nil {
		return fmt.Errorf("cannot send OT ciphertexts: %w", err)
	}
	if s.Flush {
		if err := s.S.Flush(); err != nil {
			return fmt.Errorf("cannot send OT ciphertexts: %w", err)
		}
	}
	return nil
}

// Receiver is the receiving side of the base OTs, whose sender's A came in
// the peer's hello.
type Receiver struct {
	S    Stream
	Rand io.Reader
	A    ot.ECPoint
	// Overlap, if set, runs once after the points are sent, while the
	// sender computes its answer.
	Overlap func() error
	// Malformed is the caller's error for bad peer data.
	Malformed error
}

// InitSender does nothing (the receiver never sends labels).
func (r *Receiver) InitSender(ot.IO) error { return nil }

// InitReceiver does nothing: the sender's A already came in.
func (r *Receiver) InitReceiver(ot.IO) error { return nil }

// Send fails: a Receiver only receives.
func (r *Receiver) Send([]ot.Wire) error { return errors.New("baseot: a Receiver cannot send") }

// Receive sends B_i = b_i G + flags_i A, flushes (ending the flight), and
// decrypts the chosen labels from the sender's answer.
func (r *Receiver) Receive(flags []bool, result []ot.Label) error {
	bundle, points, err := ot.BuildCOChoices(r.Rand, Curve(), r.A.X, r.A.Y, flags)
	if err != nil {
		return fmt.Errorf("%w: OT point A: %w", r.Malformed, err)
	}
	buf := make([]byte, len(points)*PointSize)
	for i, pt := range points {
		PutPoint(buf[i*PointSize:], pt.X, pt.Y)
	}
	if err := r.S.Write(buf); err != nil {
		return fmt.Errorf("cannot send OT points: %w", err)
	}
	if err := r.S.Flush(); err != nil {
		return fmt.Errorf("cannot send OT points: %w", err)
	}
	if f := r.Overlap; f != nil {
		r.Overlap = nil
		if err := f(); err != nil {
			return err
		}
	}
	in := make([]byte, len(flags)*CipherSize)
	if err := r.S.ReadFull(in); err != nil {
		return fmt.Errorf("cannot read OT ciphertexts: %w", err)
	}
	cts := make([]ot.LabelCiphertext, len(flags))
	for i := range cts {
		copy(cts[i].Zero[:], in[i*CipherSize:])
		copy(cts[i].One[:], in[i*CipherSize+LabelSize:])
	}
	labels, err := ot.DecryptCOCiphertexts(Curve(), bundle, cts)
	if err != nil {
		return err
	}
	if len(labels) != len(result) {
		return fmt.Errorf("baseot: OT returned %d labels for %d choices", len(labels), len(result))
	}
	copy(result, labels)
	return nil
}

// Call runs f, which calls into the library on data from the peer, and
// turns a panic into malformed: the library's IKNP sender indexes its
// buffers with peer-supplied chunk sizes and panics on a malformed chunk (it
// does not panic on I/O errors, which come back as errors).
func Call(malformed error, f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: OT library panicked: %v", malformed, r)
		}
	}()
	return f()
}
