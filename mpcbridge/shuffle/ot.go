package shuffle

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/elliptic"
	"encoding/binary"
	"math/big"

	"github.com/markkurossi/mpc/ot"

	"github.com/cipherprune/cipherprune/mpcbridge/internal/baseot"
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
// The adapters are shared with mpcbridge/gc (mpcbridge/internal/baseot).

const (
	labelSize    = 16
	coCipherSize = 2 * labelSize
)

// curve returns the base OT's curve (P-256; immutable).
func curve() elliptic.Curve { return baseot.Curve() }

func putPoint(dst []byte, x, y *big.Int) { baseot.PutPoint(dst, x, y) }

func getPoint(src []byte) ot.ECPoint { return baseot.GetPoint(src) }

// otStream is the package's stream as a baseot.Stream.
type otStream struct{ s *stream }

func (o otStream) ReadFull(b []byte) error { return o.s.readFull(b) }

func (o otStream) Write(b []byte) error {
	_, err := o.s.w.Write(b)
	return err
}

func (o otStream) Flush() error { return o.s.Flush() }

// newCOSender returns the sending side of the base OTs (P), whose first
// message went out in its hello. It implements ot.OT for the library's IKNP
// receiver, which calls only Send; Send does not flush, since the IKNP
// matrix follows in the same flight.
func newCOSender(s *stream, setup ot.COSenderSetup) *baseot.Sender {
	return &baseot.Sender{S: otStream{s}, Setup: setup, Malformed: ErrMalformed}
}

// newCOReceiver returns the receiving side of the base OTs (Q), whose
// sender's A came in the peer's hello. It implements ot.OT for the
// library's IKNP sender, which calls only Receive.
func newCOReceiver(s *stream, rand csprng, a ot.ECPoint) *baseot.Receiver {
	return &baseot.Receiver{S: otStream{s}, Rand: rand, A: a, Malformed: ErrMalformed}
}

// libcall runs f, which calls into the library on data from the peer, and
// turns a panic into ErrMalformed (the library's IKNP sender indexes its
// buffers with peer-supplied chunk sizes; stream.ReceiveData bounds them,
// and this is the second line of defence).
func libcall(f func() error) error { return baseot.Call(ErrMalformed, f) }

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
