package matmul

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/tuneinsight/lattigo/v5/ring"

	"github.com/cipherprune/cipherprune/ckks/polymat"
	"github.com/cipherprune/cipherprune/mpcbridge/wire"
)

// Message types of this package, in the block 0x0600-0x06ff.
const (
	// MsgInput (client -> server) carries seeded encryptions of input
	// blocks, in InputIndex order.
	MsgInput wire.Type = 0x0601
	// MsgOutput (server -> client) carries re-randomized, masked and
	// compressed output blocks, column block by column block (sequence
	// number j·RowBlocks + i).
	MsgOutput wire.Type = 0x0602
)

func init() {
	wire.RegisterType(MsgInput, "matmul.Input")
	wire.RegisterType(MsgOutput, "matmul.Output")
}

// Conn is the connection between the parties: *wire.Conn implements it.
type Conn interface {
	Send(ctx context.Context, t wire.Type, payload []byte) error
	Recv(ctx context.Context, t wire.Type) ([]byte, error)
}

const (
	msgVersion = 1
	// headerSize: version, log2 N, parameter fingerprint, Rows, In, Out,
	// D0, D1, D2, first index, count.
	headerSize = 1 + 1 + 4 + 6*4 + 4 + 4
)

// header is the common head of both messages: what the ciphertexts are
// for and which of them the message carries.
type header struct {
	lay          polymat.Layout
	first, count int
}

func (p Parameters) appendHeader(dst []byte, lay polymat.Layout, first, count int) []byte {
	dst = append(dst, msgVersion, byte(p.ring.LogN()))
	dst = binary.LittleEndian.AppendUint32(dst, p.fingerprint)
	for _, v := range []int{lay.Rows, lay.In, lay.Out, lay.D0, lay.D1, lay.D2, first, count} {
		dst = binary.LittleEndian.AppendUint32(dst, uint32(v))
	}
	return dst
}

// readHeader checks the head of a message against the layout both
// parties agreed on and against the next index expected, and returns the
// count and the body. total is the number of ciphertexts of the whole
// transfer.
func (p Parameters) readHeader(payload []byte, lay polymat.Layout, next, total int) (int, []byte, error) {
	if len(payload) < headerSize {
		return 0, nil, fmt.Errorf("message of %d bytes is shorter than its %d-byte header", len(payload), headerSize)
	}
	if v := payload[0]; v != msgVersion {
		return 0, nil, fmt.Errorf("message version %d, want %d", v, msgVersion)
	}
	if logN := int(payload[1]); logN != p.ring.LogN() {
		return 0, nil, fmt.Errorf("message for ring degree 2^%d, want 2^%d", logN, p.ring.LogN())
	}
	if fp := binary.LittleEndian.Uint32(payload[2:]); fp != p.fingerprint {
		return 0, nil, fmt.Errorf("message for other parameters (fingerprint %08x, want %08x)", fp, p.fingerprint)
	}
	var f [8]uint32
	for i := range f {
		f[i] = binary.LittleEndian.Uint32(payload[6+4*i:])
	}
	want := [6]int{lay.Rows, lay.In, lay.Out, lay.D0, lay.D1, lay.D2}
	names := [6]string{"rows", "inner dimension", "columns", "D0", "D1", "D2"}
	for i, w := range want {
		if int64(f[i]) != int64(w) {
			return 0, nil, fmt.Errorf("message for %s %d, want %d", names[i], f[i], w)
		}
	}
	first, count := int64(f[6]), int64(f[7])
	switch {
	case first != int64(next):
		return 0, nil, fmt.Errorf("message starts at ciphertext %d, want %d", first, next)
	case count < 1 || count > int64(p.chunk):
		return 0, nil, fmt.Errorf("message holds %d ciphertexts, not in [1, %d]", count, p.chunk)
	case first+count > int64(total):
		return 0, nil, fmt.Errorf("message holds ciphertexts %d to %d of %d", first, first+count-1, total)
	}
	return int(count), payload[headerSize:], nil
}

// inputCt is one input block as it travels: the seed of c1 and c0 (NTT
// domain).
type inputCt struct {
	seed [polymat.SeedSize]byte
	c0   ring.Poly
}

func (p Parameters) inputCtBytes() int { return polymat.SeedSize + p.ring.PolyBytes() }

// encodeInput encodes the input ciphertexts [first, first+len(cts)).
func (p Parameters) encodeInput(lay polymat.Layout, first int, cts []inputCt) []byte {
	buf := make([]byte, 0, headerSize+len(cts)*p.inputCtBytes())
	buf = p.appendHeader(buf, lay, first, len(cts))
	widths := p.ring.Widths()
	for i := range cts {
		buf = append(buf, cts[i].seed[:]...)
		w := bitWriter{buf: buf}
		for l, limb := range cts[i].c0.Coeffs {
			for _, v := range limb {
				w.write(v, uint(widths[l]))
			}
		}
		buf = w.flush()
	}
	return buf
}

// decodeInput decodes and checks one input message; next is the index of
// the first ciphertext expected.
func (p Parameters) decodeInput(payload []byte, lay polymat.Layout, next int) ([]inputCt, error) {
	count, body, err := p.readHeader(payload, lay, next, lay.Inputs())
	if err != nil {
		return nil, err
	}
	size := p.inputCtBytes()
	if len(body) != count*size {
		return nil, fmt.Errorf("message body of %d bytes, want %d for %d ciphertexts", len(body), count*size, count)
	}
	moduli, widths := p.ring.Moduli(), p.ring.Widths()
	cts := make([]inputCt, count)
	for i := range cts {
		ct := &cts[i]
		src := body[i*size : (i+1)*size]
		copy(ct.seed[:], src)
		ct.c0 = p.ring.RingQ().NewPoly()
		r := bitReader{buf: src[polymat.SeedSize:]}
		for l, limb := range ct.c0.Coeffs {
			for j := range limb {
				v := r.read(uint(widths[l]))
				if v >= moduli[l] {
					return nil, fmt.Errorf("ciphertext %d: coefficient %d of limb %d is %d, not below the modulus %d", next+i, j, l, v, moduli[l])
				}
				limb[j] = v
			}
		}
		if err := r.end(); err != nil {
			return nil, fmt.Errorf("ciphertext %d: %w", next+i, err)
		}
	}
	return cts, nil
}

// outputSeq returns the output index of sequence number seq (column block
// by column block).
func outputSeq(lay polymat.Layout, seq int) int {
	j, i := seq/lay.RowBlocks(), seq%lay.RowBlocks()
	return lay.OutputIndex(i, j)
}

// outputCtBytes returns the encoded size of output o: its targets of c0
// and all of c1, OutWidth bits each, padded to a byte.
func (p Parameters) outputCtBytes(lay polymat.Layout, o int) int {
	return ((lay.Targets(o)+p.ring.N())*p.outWidth + 7) / 8
}

// outputCt is one output block as it travels, compressed: c0 at the
// targets (in Layout.AppendTargets order) and c1 (coefficient domain).
type outputCt struct {
	c0 []u128
	c1 []u128
}

// appendOutput appends the encoding of ct.
func (p Parameters) appendOutput(dst []byte, ct *outputCt) []byte {
	w := bitWriter{buf: dst}
	for _, vals := range [2][]u128{ct.c0, ct.c1} {
		for _, v := range vals {
			w.write128(v, uint(p.outWidth))
		}
	}
	return w.flush()
}

// decodeOutput decodes and checks one output message; next is the
// sequence number expected first. top is the largest valid value.
func (p Parameters) decodeOutput(payload []byte, lay polymat.Layout, next int, top u128) ([]outputCt, error) {
	count, body, err := p.readHeader(payload, lay, next, lay.Outputs())
	if err != nil {
		return nil, err
	}
	size := 0
	for s := next; s < next+count; s++ {
		size += p.outputCtBytes(lay, outputSeq(lay, s))
	}
	if len(body) != size {
		return nil, fmt.Errorf("message body of %d bytes, want %d for %d ciphertexts", len(body), size, count)
	}
	cts := make([]outputCt, count)
	n := p.ring.N()
	for i := range cts {
		o := outputSeq(lay, next+i)
		sz := p.outputCtBytes(lay, o)
		r := bitReader{buf: body[:sz]}
		body = body[sz:]
		ct := &cts[i]
		ct.c0 = make([]u128, lay.Targets(o))
		ct.c1 = make([]u128, n)
		for _, vals := range [2][]u128{ct.c0, ct.c1} {
			for j := range vals {
				v := r.read128(uint(p.outWidth))
				if top.less(v) {
					return nil, fmt.Errorf("ciphertext %d: coefficient %d out of range", next+i, j)
				}
				vals[j] = v
			}
		}
		if err := r.end(); err != nil {
			return nil, fmt.Errorf("ciphertext %d: %w", next+i, err)
		}
	}
	return cts, nil
}

// bitWriter appends values of up to 64 bits, least significant first.
type bitWriter struct {
	buf []byte
	acc uint64
	n   uint
}

// write appends the low b bits of v (b <= 64, v < 2^b).
func (w *bitWriter) write(v uint64, b uint) {
	w.acc |= v << w.n // a shift by 64 or more gives 0
	if w.n+b < 64 {
		w.n += b
		return
	}
	w.buf = binary.LittleEndian.AppendUint64(w.buf, w.acc)
	used := 64 - w.n // bits of v already written
	w.n = w.n + b - 64
	if used < 64 {
		w.acc = v >> used
	} else {
		w.acc = 0
	}
}

func (w *bitWriter) write128(v u128, b uint) {
	if b <= 64 {
		w.write(v.lo, b)
		return
	}
	w.write(v.lo, 64)
	w.write(v.hi, b-64)
}

// flush writes the pending bits, padded with zeros to a byte, and returns
// the buffer.
func (w *bitWriter) flush() []byte {
	for ; w.n > 0; w.n -= min(w.n, 8) {
		w.buf = append(w.buf, byte(w.acc))
		w.acc >>= 8
	}
	w.acc = 0
	return w.buf
}

// bitReader reads what bitWriter wrote. Reading past the end yields zero
// bits and is reported by end.
type bitReader struct {
	buf  []byte
	pos  uint // bits consumed
	over bool
}

func (r *bitReader) read(b uint) uint64 {
	if i := int(r.pos >> 3); i+9 <= len(r.buf) {
		off := r.pos & 7
		v := binary.LittleEndian.Uint64(r.buf[i:]) >> off
		if off+b > 64 {
			v |= uint64(r.buf[i+8]) << (64 - off)
		}
		r.pos += b
		if b < 64 {
			v &= 1<<b - 1
		}
		return v
	}
	var v uint64
	var got uint
	for got < b {
		byteIdx := r.pos >> 3
		if int(byteIdx) >= len(r.buf) {
			r.over = true
			return v
		}
		off := r.pos & 7
		take := min(8-off, b-got)
		bitsv := uint64(r.buf[byteIdx]>>off) & (1<<take - 1)
		v |= bitsv << got
		got += take
		r.pos += take
	}
	return v
}

func (r *bitReader) read128(b uint) u128 {
	if b <= 64 {
		return u128{0, r.read(b)}
	}
	lo := r.read(64)
	return u128{r.read(b - 64), lo}
}

var errPadding = errors.New("non-zero padding bits")

// end checks that exactly the buffer was read and that its padding bits
// are zero (one encoding per message).
func (r *bitReader) end() error {
	if r.over {
		return errors.New("truncated")
	}
	if int((r.pos+7)>>3) != len(r.buf) {
		return fmt.Errorf("%d trailing bytes", len(r.buf)-int((r.pos+7)>>3))
	}
	if off := r.pos & 7; off != 0 && r.buf[len(r.buf)-1]>>off != 0 {
		return errPadding
	}
	return nil
}
