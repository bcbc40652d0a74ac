package gc

import (
	"crypto/elliptic"
	"math/big"

	"github.com/markkurossi/mpc/ot"

	"github.com/cipherprune/cipherprune/mpcbridge/internal/baseot"
)

// The base OT is the library's Chou-Orlandi OT on P-256, driven through
// mpcbridge/internal/baseot so that this package fixes the message layout:
// the sender's first message A rides in its hello, and points and
// ciphertexts have fixed sizes (no peer-chosen lengths).

const pointSize = baseot.PointSize

// curve returns the base OT's curve (P-256; immutable).
func curve() elliptic.Curve { return baseot.Curve() }

func putPoint(dst []byte, x, y *big.Int) { baseot.PutPoint(dst, x, y) }

func getPoint(src []byte) ot.ECPoint { return baseot.GetPoint(src) }

// partyStream is a party's connection as a baseot.Stream.
type partyStream struct{ pt *party }

func (s partyStream) ReadFull(b []byte) error { return recvFull(s.pt.pc, b) }
func (s partyStream) Write(b []byte) error    { return sendRaw(s.pt.pc, b) }
func (s partyStream) Flush() error            { return s.pt.flush() }

// newCOSender returns the sending side of the base OTs whose first message
// (from setup) already went out in the hello; Send ends its flight. It
// implements ot.OT for the library's IKNP (as the extension receiver's base
// OT) and is called directly for ChouOrlandi.
func newCOSender(pt *party, setup ot.COSenderSetup) *baseot.Sender {
	return &baseot.Sender{S: partyStream{pt}, Setup: setup, Flush: true, Malformed: ErrMalformed}
}

// newCOReceiver returns the receiving side of the base OTs whose sender's A
// came in the peer's hello; overlap, if set, runs once after the points are
// sent, while the sender computes its answer.
func newCOReceiver(pt *party, a ot.ECPoint, overlap func() error) *baseot.Receiver {
	return &baseot.Receiver{S: partyStream{pt}, Rand: pt.rand, A: a, Overlap: overlap, Malformed: ErrMalformed}
}

// libcall runs f, which calls into the library on data from the peer, and
// turns a panic into ErrMalformed (baseot.Call).
func libcall(f func() error) error { return baseot.Call(ErrMalformed, f) }
