package shuffle

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/elliptic"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"

	"github.com/markkurossi/mpc/ot"
)

// The random OTs are the library's ot.ROT: IKNP correlated OT extension
// (semi-honest, 128 base OTs), whose outputs it hashes with its
// multi-instance tweakable correlation-robust hash (MITCCRH, a fresh AES key
// per OT index derived from a seed the IKNP sender sends). The permuter P is
// the ROT receiver (choice bits = switch bits), the assistant Q the ROT
// sender (it gets both keys). The base OTs are the library's Chou-Orlandi OT
// on P-256, driven through its pure helpers (ot.GenerateCOSenderSetup,
// ot.BuildCOChoices, ot.EncryptCOCiphertexts, ot.DecryptCOCiphertexts) as
// in mpcbridge/gc, so that this package fixes the message layout: the base
// sender's point A rides in P's hello, and points and ciphertexts have
// fixed sizes. In IKNP the extension receiver (P) is the base-OT sender.
//
// This file copies the small Chou-Orlandi adapters of mpcbridge/gc/ot.go
// (which are unexported there), over this package's stream.

const (
	labelSize    = 16
	coCipherSize = 2 * labelSize
)

// curve returns the base OT's curve (P-256; immutable).
func curve() elliptic.Curve { return elliptic.P256() }

func putPoint(dst []byte, x, y *big.Int) {
	x.FillBytes(dst[:32])
	y.FillBytes(dst[32:pointSize])
}

// getPoint decodes a point; the library's helpers reject points not on the
// curve (including the all-zero encoding).
func getPoint(src []byte) ot.ECPoint {
	return ot.ECPoint{X: new(big.Int).SetBytes(src[:32]), Y: new(big.Int).SetBytes(src[32:pointSize])}
}

// coSender is the sending side of the base OTs (P), whose first message A
// went out in its hello. It implements ot.OT for the library's IKNP
// receiver, which calls only Send.
type coSender struct {
	s     *stream
	setup ot.COSenderSetup
}

// InitSender and InitReceiver do nothing: the first message already went
// out in the hello.
func (c *coSender) InitSender(ot.IO) error   { return nil }
func (c *coSender) InitReceiver(ot.IO) error { return nil }

func (c *coSender) Receive([]bool, []ot.Label) error {
	return errors.New("shuffle: coSender cannot receive")
}

// Send reads the receiver's points B_i and buffers both labels of each wire
// encrypted under H(aB_i) and H(a(B_i - A)). It does not flush: the IKNP
// matrix follows in the same flight.
func (c *coSender) Send(wires []ot.Wire) error {
	buf := make([]byte, len(wires)*pointSize)
	if err := c.s.readFull(buf); err != nil {
		return fmt.Errorf("cannot read OT points: %w", err)
	}
	points := make([]ot.ECPoint, len(wires))
	for i := range points {
		points[i] = getPoint(buf[i*pointSize:])
	}
	cts, err := ot.EncryptCOCiphertexts(curve(), c.setup, points, wires)
	if err != nil {
		return fmt.Errorf("%w: OT points: %w", ErrMalformed, err)
	}
	out := make([]byte, len(cts)*coCipherSize)
	for i, ct := range cts {
		copy(out[i*coCipherSize:], ct.Zero[:])
		copy(out[i*coCipherSize+labelSize:], ct.One[:])
	}
	if _, err := c.s.w.Write(out); err != nil {
		return fmt.Errorf("cannot send OT ciphertexts: %w", err)
	}
	return nil
}

// coReceiver is the receiving side of the base OTs (Q), whose sender's A
// came in the peer's hello. It implements ot.OT for the library's IKNP
// sender, which calls only Receive.
type coReceiver struct {
	s    *stream
	rand csprng
	a    ot.ECPoint
}

func (c *coReceiver) InitSender(ot.IO) error   { return nil }
func (c *coReceiver) InitReceiver(ot.IO) error { return nil }

func (c *coReceiver) Send([]ot.Wire) error { return errors.New("shuffle: coReceiver cannot send") }

// Receive sends B_i = b_i G + flags_i A, flushes (ending the flight), and
// decrypts the chosen labels from the sender's answer.
func (c *coReceiver) Receive(flags []bool, result []ot.Label) error {
	bundle, points, err := ot.BuildCOChoices(c.rand, curve(), c.a.X, c.a.Y, flags)
	if err != nil {
		return fmt.Errorf("%w: OT point A: %w", ErrMalformed, err)
	}
	buf := make([]byte, len(points)*pointSize)
	for i, pt := range points {
		putPoint(buf[i*pointSize:], pt.X, pt.Y)
	}
	if _, err := c.s.w.Write(buf); err != nil {
		return fmt.Errorf("cannot send OT points: %w", err)
	}
	if err := c.s.Flush(); err != nil {
		return fmt.Errorf("cannot send OT points: %w", err)
	}
	in := make([]byte, len(flags)*coCipherSize)
	if err := c.s.readFull(in); err != nil {
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
		return fmt.Errorf("shuffle: OT returned %d labels for %d choices", len(labels), len(result))
	}
	copy(result, labels)
	return nil
}

// libcall runs f, which calls into the library on data from the peer, and
// turns a panic into ErrMalformed (the library's IKNP sender indexes its
// buffers with peer-supplied chunk sizes; stream.ReceiveData bounds them,
// and this is the second line of defence).
func libcall(f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: OT library panicked: %v", ErrMalformed, r)
		}
	}()
	return f()
}

// PRG purposes, the second part of every AES-CTR nonce.
const (
	purposeSwitch = 1 // K = PRG(k), the expansion of a switch's OT key
	purposeMask   = 2 // the assistant's input masks r_in, from its seed
)

// expander turns 128-bit keys into vectors of words with AES-128-CTR:
// keystream bytes under key k and the nonce (index, purpose), read
// little-endian. One per goroutine (it keeps scratch buffers).
type expander struct {
	zero, ks []byte
}

func newExpander(width int) *expander {
	return &expander{zero: make([]byte, 8*width), ks: make([]byte, 8*width)}
}

// expand writes PRG(key; index, purpose) into dst (len(dst) <= width).
func (e *expander) expand(dst []uint64, key ot.Label, index uint64, purpose uint32) {
	var kb ot.LabelData
	block, err := aes.NewCipher(key.Bytes(&kb))
	if err != nil {
		panic("shuffle: " + err.Error()) // a 16-byte key is always valid
	}
	var iv [aes.BlockSize]byte
	binary.BigEndian.PutUint64(iv[0:8], index)
	binary.BigEndian.PutUint32(iv[8:12], purpose)
	ks := e.ks[:8*len(dst)]
	cipher.NewCTR(block, iv[:]).XORKeyStream(ks, e.zero[:len(ks)])
	getWords(dst, ks)
}
